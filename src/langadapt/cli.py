"""`langadapt` command line: parses arguments, calls the pipeline, prints results.

User errors (`LangadaptError`) print as one paragraph; `--debug` shows the traceback.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markdown import Markdown

from langadapt.config import ExperimentConfig, parse_config
from langadapt.errors import LangadaptError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Adapt language models to under-served languages: curate, tokenize, train, evaluate, report.")
console = Console()
state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    state["debug"] = debug
    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])


def _guarded(action):
    try:
        return action()
    except LangadaptError as err:
        if state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {err.message}", highlight=False)
        raise typer.Exit(code=2) from None


def _run_all(configs: list[ExperimentConfig], dry_run: bool = False, overwrite: bool = False) -> None:
    """Check every run first, then compute the new ones and print each report."""
    from langadapt.pipeline import run_experiment
    from langadapt.report import report_run
    from langadapt.runs import run_state

    plan = [(cfg, run_state(cfg, overwrite)) for cfg in configs]
    for cfg, state in plan:
        action = "reuse (already finished)" if state == "finished" else "compute"
        console.print(f"{Path(cfg.output_dir) / cfg.name}: {action}", highlight=False)
    if dry_run:
        return
    for cfg, state in plan:
        started = time.perf_counter()
        folder = Path(cfg.output_dir) / cfg.name if state == "finished" else run_experiment(cfg)
        console.print(Markdown(report_run(folder)))
        console.print(f"Run folder: [bold]{folder}[/] ({time.perf_counter() - started:.0f} s)")


DRY_RUN = typer.Option(False, "--dry-run", help="Print what would be computed and what reused; compute nothing.")
OVERWRITE = typer.Option(False, "--overwrite", help="Recompute runs whose folder already exists.")


@app.command()
def demo(
    output_dir: Path = typer.Option(Path("runs"), help="Where the run folder `demo/` is written."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Adapt a small multilingual model to Upper Sorbian on the built-in sample corpus (CPU, minutes)."""
    _guarded(lambda: _run_all([parse_config({"name": "demo", "output_dir": str(output_dir)}, "demo")],
                              overwrite=overwrite))


@app.command()
def run(
    config: Path = typer.Argument(..., help="Experiment YAML, e.g. examples/quickstart.yaml."),
    dry_run: bool = DRY_RUN,
    overwrite: bool = OVERWRITE,
) -> None:
    """Run the experiment a YAML file describes: one run, or every run of its `sweep:`."""
    from langadapt.sweep import load_runs

    _guarded(lambda: _run_all(load_runs(config), dry_run, overwrite))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished run folder (holds results.parquet).")) -> None:
    """Rebuild and print a run's report from its results table."""
    from langadapt.report import report_run

    def action():
        if not (run_dir / "results.parquet").is_file():
            raise LangadaptError(f"{run_dir} has no results.parquet",
                                 fix="pass a finished run folder, such as runs/demo.")
        console.print(Markdown(report_run(run_dir)))

    _guarded(action)


@app.command()
def languages() -> None:
    """List the languages of the built-in sample corpus (normalised codes)."""
    from langadapt.corpus.sources import sample_locales

    _guarded(lambda: console.print(", ".join(sample_locales())))


@app.command()
def config(path: Path = typer.Argument(None, help="Experiment YAML to validate; omit for the defaults.")) -> None:
    """Validate a config and print each run it declares with every default filled in."""
    import yaml

    from langadapt.sweep import load_runs

    configs = _guarded(lambda: load_runs(path) if path else [ExperimentConfig()])
    for cfg in configs:
        console.print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                      highlight=False)


@app.command()
def curate(
    config: Path = typer.Argument(..., help="Curation YAML, e.g. examples/curate.yaml."),
    on_error: str = typer.Option(None, "--on-error", help="skip|fail: malformed input lines, for every input."),
) -> None:
    """Curate raw text FineWeb2-style on datatrove: language ID, per-language filters, dedup, rehydration."""
    from langadapt.config import load_curation_config

    def action():
        try:
            from langadapt.corpus.curation import curate as run_curation
        except ImportError as err:
            raise LangadaptError(f"`langadapt curate` needs the optional extra 'curate' ({err.name} is missing)",
                                 fix="run `pip install 'langadapt[curate]'`.") from err
        out = run_curation(load_curation_config(config, on_error))
        table = out / "removal_table.md"
        if table.is_file():
            console.print(Markdown(table.read_text(encoding="utf-8")))
        console.print(f"Curated corpus: [bold]{out}[/]")

    _guarded(action)
