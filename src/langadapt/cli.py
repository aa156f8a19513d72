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


@app.command("train")
def train_job(config: Path = typer.Argument(..., help="Training YAML, e.g. examples/train-tiny.yaml.")) -> None:
    """Train one model on a data mixture; rerun the same command to resume from its last checkpoint.

    Several processes: `accelerate launch --num_processes 2 -m langadapt.cli train JOB.yaml`.
    """
    from accelerate import PartialState

    from langadapt.config import TrainJobConfig
    from langadapt.train.job import run_train_job

    def action():
        final = run_train_job(load_config(config, schema=TrainJobConfig))
        if PartialState().is_main_process:
            console.print(f"Model: [bold]{final}[/]")

    _guarded(action)


if __name__ == "__main__":
    app()
