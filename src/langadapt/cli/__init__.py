"""`langadapt` command line: parses arguments, calls the pipeline, prints results.

User errors (`LangadaptError`) print as one paragraph; `--debug` shows the traceback. The commands
live by what they act on: the pipeline's (`pipeline.py`), model folders' (`models.py`) and the
public data sets' (`data.py`).
"""

from __future__ import annotations

import logging

import typer
from rich.logging import RichHandler

from langadapt.cli import data, models, pipeline
from langadapt.cli.common import console, state

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Adapt language models to under-served languages: curate, tokenize, train, evaluate, report.")


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    state["debug"] = debug
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])
    logging.getLogger("langadapt").setLevel(logging.INFO)  # our progress; libraries (gensim, ...) only warn


for name, command in {"demo": pipeline.demo, "run": pipeline.run, "train": pipeline.train_job,
                      "curate": pipeline.curate, "vocab": pipeline.vocab, "config": pipeline.config,
                      "report": pipeline.report, "languages": pipeline.languages, "export": models.export_,
                      "eval": models.eval_, "translate": models.translate_file}.items():
    app.command(name)(command)

data_app = typer.Typer(no_args_is_help=True, help="The public data sets the examples read: list them, install them.")
data_app.command("list")(data.data_list)
data_app.command("get")(data.data_get)
app.add_typer(data_app, name="data")
