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

from langadapt.config import ExperimentConfig, load_config, parse_config
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


def _run_and_print(cfg: ExperimentConfig) -> None:
    from langadapt.pipeline import run_experiment
    from langadapt.report import report_run

    started = time.perf_counter()
    folder = run_experiment(cfg)
    console.print(Markdown(report_run(folder)))
    console.print(f"Run folder: [bold]{folder}[/] ({time.perf_counter() - started:.0f} s)")


@app.command()
def demo(output_dir: Path = typer.Option(Path("runs"), help="Where the run folder `demo/` is written.")) -> None:
    """Adapt a small multilingual model to Upper Sorbian on the built-in sample corpus (CPU, minutes)."""
    _guarded(lambda: _run_and_print(parse_config({"name": "demo", "output_dir": str(output_dir)}, "demo")))


@app.command()
def run(config: Path = typer.Argument(..., help="Experiment YAML, e.g. examples/quickstart.yaml.")) -> None:
    """Run the experiment a YAML file describes."""
    _guarded(lambda: _run_and_print(load_config(config)))


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
    """Validate a config and print it with every default filled in."""
    import yaml

    cfg = _guarded(lambda: load_config(path) if path else ExperimentConfig())
    console.print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True), highlight=False)


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
