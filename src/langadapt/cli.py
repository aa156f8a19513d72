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
from rich.text import Text

from langadapt.atomic import WRITE_ERRORS
from langadapt.config import ExperimentConfig, demo_config
from langadapt.errors import Interrupted, LangadaptError, fs_error
from langadapt.paths import FOLDER, MODEL, OUTPUT, OUTPUT_FILE, TEXT, check_path

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Adapt language models to under-served languages: curate, tokenize, train, evaluate, report.")
console = Console(markup=False)  # user text (messages, paths, YAML) is printed literally, `[models]` and all
state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    state["debug"] = debug
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])
    logging.getLogger("langadapt").setLevel(logging.INFO)  # our progress; libraries (gensim, ...) only warn


def _show(label: str, value: object, after: str = "") -> None:
    """`label` then `value` in bold (a path, printed literally), then `after`."""
    console.print(Text.assemble(label, (str(value), "bold"), after), soft_wrap=True)  # a path is never cut


def _error(message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def _guarded(action):
    """Run a command's action; what a user can fix prints as one paragraph (no traceback): a
    `LangadaptError`, a file-system refusal (full disk, read-only, permissions) and Ctrl-C."""
    try:
        return action()
    except LangadaptError as err:
        if state["debug"]:
            raise
        _error(err.message)
        raise typer.Exit(code=130 if isinstance(err, Interrupted) else 2) from None
    except KeyboardInterrupt:
        if state["debug"]:
            raise
        _error("interrupted (Ctrl-C). Finished work is kept: rerun the same command to continue.")
        raise typer.Exit(code=130) from None
    except OSError as err:
        if state["debug"] or err.errno not in WRITE_ERRORS:
            raise
        _error(fs_error(err, err.filename or "a file", "writing").message)
        raise typer.Exit(code=2) from None


ACTIONS = {"new": "compute", "overwrite": "recompute (--overwrite)", "finished": "reuse (already finished)",
           "resume": "resume from its last checkpoint"}


def _run_all(runs: list, dry_run: bool = False, overwrite: bool = False, workers: int = 1,
             slurm: dict | None = None) -> None:
    """Check every run first, then compute the new ones (here, in worker processes or on Slurm),
    print each report and, for a sweep, the comparison of all its runs."""
    from langadapt.experiment.compare import write_comparison
    from langadapt.experiment.launch import compute_run, run_local, run_state, submit_slurm
    from langadapt.experiment.pipeline import stage_plan
    from langadapt.report.page import report_run

    plan = [(run, run_state(run.config, overwrite)) for run in runs]
    for run, state in plan:
        reads = ", ".join(folder.name for folder in run.needs)
        after = f" (after {reads})" if reads and state != "finished" else ""
        console.print(f"{run.folder}: {ACTIONS[state]}{after}", highlight=False)
        if dry_run and state != "finished" and run.config.kind == "experiment":
            for stage, action in stage_plan(run.config).items():
                console.print(f"  {stage}: {action}", highlight=False)
    todo = [(run, state) for run, state in plan if state != "finished"]
    if dry_run:
        return
    if slurm is not None and todo:
        ids = submit_slurm(todo, Path(runs[0].config.output_dir) / ".slurm", **slurm)
        console.print(f"Submitted {len(ids)} Slurm job(s): {', '.join(ids)}. Rerun this command when they are done "
                      "to collect the comparison.")
        return
    in_workers = workers > 1 and len(todo) > 1
    if in_workers:
        run_local(todo, workers)
    done = []
    for run, state in plan:
        started = time.perf_counter()
        folder = run.folder
        if state != "finished" and not in_workers:
            folder = compute_run(run, state)  # in plan order: a run after the siblings it reads
        if run.config.kind == "experiment":  # an experiment has a report of its own
            console.print(Markdown(report_run(folder)))
        _show("Run folder: ", folder, f" ({time.perf_counter() - started:.0f} s)")
        done.append((folder, run.columns))
    if runs[0].columns:
        summary = Path(runs[0].config.output_dir)
        console.print(Markdown(write_comparison(summary, done)))
        _show("Comparison: ", summary / "report" / "index.html")


DRY_RUN = typer.Option(False, "--dry-run", help="Print what would be computed and what reused; compute nothing.")
OVERWRITE = typer.Option(False, "--overwrite", help="Recompute runs whose folder already exists.")


@app.command()
def demo(
    output_dir: Path = typer.Option(Path("runs"), help="Where the run folder (`demo/`, `demo-tiny/`) is written."),
    tiny: bool = typer.Option(False, "--tiny", help="The tiny laboratory instead: pretrain a 1.3M-parameter GPT-2 "
                              "on five languages, then adapt it to Upper Sorbian (needs only the `sample` extra)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Adapt SmolLM2-135M to Upper Sorbian on the built-in sample corpus (CPU, minutes)."""
    from langadapt.experiment.sweep import SweepRun

    _guarded(lambda: check_path(output_dir, OUTPUT, "--output-dir"))
    _guarded(lambda: _run_all([SweepRun(demo_config(output_dir, tiny))], overwrite=overwrite))


@app.command()
def run(
    config: Path = typer.Argument(..., help="Experiment or training job YAML, e.g. examples/quickstart.yaml."),
    dry_run: bool = DRY_RUN,
    overwrite: bool = OVERWRITE,
    workers: int = typer.Option(1, min=1, help="Runs computed at once, each in its own local process."),
    slurm: str = typer.Option(None, help="Submit the runs as a Slurm job array to this partition (submitit)."),
    slurm_time: int = typer.Option(120, help="Slurm time limit per run, in minutes."),
    slurm_cpus: int = typer.Option(4, help="CPUs per Slurm run."),
    slurm_mem: float = typer.Option(16, help="Memory per Slurm run, in GB."),
) -> None:
    """Run the experiment (or training job) a YAML file describes: one run, or every run of its `sweep:`."""
    from langadapt.experiment.sweep import expand_runs
    from langadapt.kinds import read_kind

    cluster = None if slurm is None else {"partition": slurm, "time_min": slurm_time, "cpus": slurm_cpus,
                                          "mem_gb": slurm_mem}

    def action():
        data = read_kind(config, ("experiment", "train"), "langadapt run")
        _run_all(expand_runs(data, str(config)), dry_run, overwrite, workers, cluster)

    _guarded(action)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished run folder (holds results.parquet).")) -> None:
    """Rebuild and print a run's report from its results table."""
    from langadapt.report.page import report_run

    def action():
        check_path(run_dir, FOLDER, "RUN_DIR")
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
def config(path: Path = typer.Argument(None, help="Any langadapt YAML (experiment, training job, curation) to "
                                              "validate; omit for the experiment defaults.")) -> None:
    """Validate a config and print each run it declares with every default filled in."""
    import yaml

    from langadapt.experiment.sweep import load_runs

    configs = _guarded(lambda: [run.config for run in load_runs(path)] if path else [ExperimentConfig()])
    for cfg in configs:
        console.print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                      highlight=False)


@app.command()
def curate(
    config: Path = typer.Argument(..., help="Curation YAML, e.g. examples/curate.yaml."),
    on_error: str = typer.Option(None, "--on-error", help="skip|fail: malformed input lines, for every input."),
    check_thresholds: bool = typer.Option(False, "--check-thresholds", help="Print, per language and filter, "
                                          "the share of clean reference text it would remove; curate nothing."),
) -> None:
    """Curate raw text FineWeb2-style on datatrove: language ID, per-language filters, dedup, rehydration."""
    from langadapt.config import load_curation_config
    from langadapt.kinds import read_kind

    def action():
        try:
            from langadapt.corpus.check import check_table
            from langadapt.corpus.check import check_thresholds as check
            from langadapt.corpus.curation import curate as run_curation
        except ImportError as err:
            raise LangadaptError(f"`langadapt curate` needs the optional extra 'curate' ({err.name} is missing)",
                                 fix="run `pip install 'langadapt[curate]'`.") from err
        read_kind(config, ("curate",), "langadapt curate")
        cfg = load_curation_config(config, on_error)
        if check_thresholds:
            console.print("Share of held-out clean reference text each stage would remove:")
            console.print(check_table(check(cfg)), markup=False, highlight=False, soft_wrap=True)
            return
        out = run_curation(cfg)
        table = out / "removal_table.md"
        if table.is_file():
            console.print(Markdown(table.read_text(encoding="utf-8")))
        _show("Curated corpus: ", out)

    _guarded(action)


@app.command("train")
def train_job(config: Path = typer.Argument(..., help="Training YAML, e.g. examples/train-tiny.yaml."),
              overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished or different job in "
                                             "the output folder (only once the new one has finished).")) -> None:
    """Train one model on a data mixture; rerun the same command to resume from its last checkpoint.

    Several processes: `accelerate launch --num_processes 2 -m langadapt.cli train JOB.yaml`.
    """
    from langadapt.config import parse_config
    from langadapt.kinds import read_kind
    from langadapt.train.config import TrainJobConfig
    from langadapt.train.job import run_train_job
    from langadapt.train.loop import process_state

    def action():
        data = read_kind(config, ("train",), "langadapt train")
        final = run_train_job(parse_config(data, str(config), TrainJobConfig), overwrite)
        if process_state().is_main_process:
            _show("Model: ", final)

    _guarded(action)


@app.command("export")
def export_(
    model_dir: Path = typer.Argument(..., help="A model folder (a run's final/), a peft adapter/ folder, or a "
                                               "training run folder (its final/)."),
    out: Path = typer.Argument(..., help="Folder to write (hf, merged) or GGUF file (gguf)."),
    to: str = typer.Option("merged", "--to", help="hf: the folder as it is (an adapter stays a peft folder); "
                                                  "merged: adapters folded into a stock transformers folder; "
                                                  "gguf: one GGUF file for llama.cpp / Ollama / LM Studio."),
    quant: str = typer.Option("f16", help="GGUF tensor type: f16, q8_0 or f32 (1-D tensors stay f32)."),
    base: Path = typer.Option(None, help="The base model folder of a peft adapter (default: the one it names)."),
    check: bool = typer.Option(True, help="gguf: reload the file with transformers and compare ids and logits."),
    check_text: Path = typer.Option(None, help="gguf: text to check on, one text a line (default: text spanning "
                                               "the vocabulary and the model's new tokens)."),
) -> None:
    """Export a model as a stock transformers folder (adapters merged) or a GGUF file."""
    from langadapt.corpus.document import read_lines
    from langadapt.model.export import export_model

    def action():
        check_path(model_dir, FOLDER, "MODEL_DIR")
        check_path(out, OUTPUT_FILE if to == "gguf" else OUTPUT, "OUT")
        if base is not None:
            check_path(base, MODEL, "--base")
        texts = None
        if check_text is not None:
            check_path(check_text, TEXT, "--check-text")
            texts = list(read_lines(check_text))
        done = export_model(model_dir, to, out, quant, base, check, texts)
        if done.check is not None:
            console.print(f"Round trip through transformers' GGUF loader: {done.check}", highlight=False)
        console.print(f"Exported ({to}{f', {quant}' if to == 'gguf' else ''}): [bold]{done.path}[/]")

    _guarded(action)


def _listed(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@app.command("eval")
def eval_(
    target: Path = typer.Argument(..., help="A run folder (its train/*/final models) or one model folder."),
    text: list[str] = typer.Option([], help="Held-out text for bpb: a documents JSONL, or LANG=FILE.txt (one text "
                                            "a line). Default for a run folder: its corpus/heldout.jsonl."),
    stride: int = typer.Option(None, help="Sliding-window stride in tokens for long texts (default: context/2)."),
    sib200: Path = typer.Option(None, help="SIB-200 folder (<lang>/{train,test}.tsv) for the topic probe."),
    probe_train: str = typer.Option("", help="Language the SIB-200 probe is trained on."),
    probe_test: str = typer.Option("", help="Comma-separated languages it is tested on (default: the same)."),
    pos: Path = typer.Option(None, help="UD treebank folder (*-ud-{train,test}.conllu) for the POS probe."),
    retrieval: list[str] = typer.Option([], help="LANG=FILE,PIVOT_FILE: line-parallel files for retrieval."),
    translate: list[str] = typer.Option([], help="SRC-TGT=SOURCE_FILE,REFERENCE_FILE (or TGT=...): chrF, chrF++ "
                                                 "and BLEU of the model's translations, written beside the scores."),
    prompt: str = typer.Option(None, help="Translation prompt, {source} replaced by the sentence (default: the "
                                          "model's training template, else '{source} = ')."),
    max_new_tokens: int = typer.Option(64, help="Longest translation generated, in tokens."),
    beams: int = typer.Option(1, help="Beam size for translation (1: greedy)."),
    batch_size: int = typer.Option(16, help="Sentences decoded together when translating (larger on a GPU)."),
    harness: str = typer.Option(None, help="Comma-separated lm-eval tasks; `bpb` = tasks written from the texts."),
    tasks_dir: Path = typer.Option(None, help="Folder of lm-eval task YAMLs (also where `bpb` tasks are written)."),
    limit: int = typer.Option(None, help="At most this many examples per probe / parallel set (quick runs)."),
    out: Path = typer.Option(None, help="Results table to merge into (default: the run's results.parquet)."),
) -> None:
    """Evaluate models (bpb, probes, retrieval, translation, lm-eval) and merge into the results table."""
    import pandas as pd

    from langadapt.evaluate.suite import build_request, evaluate
    from langadapt.report.page import report_run
    from langadapt.report.tables import markdown_table

    def action():
        request = build_request(text, stride, sib200, probe_train, _listed(probe_test), pos, retrieval, translate,
                                prompt, _listed(harness), tasks_dir, limit, max_new_tokens, beams, batch_size)
        check_path(target, FOLDER, "TARGET")
        if out is not None:
            check_path(out, OUTPUT_FILE, "--out")
        path = evaluate(target, request, out)
        if path == target / "results.parquet":  # a run folder: its report is rebuilt with the new rows
            console.print(Markdown(report_run(target)))
        else:
            console.print(Markdown(markdown_table(pd.read_parquet(path)[["run", "language", "metric", "value"]])))
        _show("Results: ", path)

    _guarded(action)


@app.command("translate")
def translate_file(
    model: Path = typer.Argument(..., help="A model folder (its card's template prompts it)."),
    source: Path = typer.Argument(..., help="Text to translate, one sentence a line (.txt, or .tsv with `text`)."),
    to: str = typer.Option(..., "--to", help="Language to translate into, e.g. eng_Latn."),
    from_: str = typer.Option(None, "--from", help="Language of the input (default: the other language the "
                                                  "model was trained on)."),
    out: Path = typer.Option(None, help="Where to write the translations (default: print them)."),
    max_new_tokens: int = typer.Option(64, help="Longest translation generated, in tokens."),
    batch_size: int = typer.Option(16, help="Sentences decoded together."),
    beams: int = typer.Option(1, help="Beam size (1: greedy)."),
) -> None:
    """Translate a file line by line with batched decoding (back-translation makes pairs this way)."""
    from langadapt.atomic import write_text
    from langadapt.corpus.document import read_lines
    from langadapt.evaluate.translation import source_language, translate_with
    from langadapt.languages import normalise

    def action():
        check_path(source, TEXT, "SOURCE")
        if out is not None:
            check_path(out, OUTPUT_FILE, "--out")
        check_path(model, MODEL, "MODEL")
        target = normalise(to)
        origin = normalise(from_) if from_ else source_language(model, target)
        lines = translate_with(model, read_lines(source), origin, target, max_new_tokens, batch_size, beams)
        if out is None:
            console.print("\n".join(lines), markup=False, highlight=False)
        else:
            write_text(out, "".join(line + "\n" for line in lines))
            _show("Translations: ", out)

    _guarded(action)


@app.command()
def vocab(config: Path = typer.Argument(..., help="Experiment YAML; its languages, corpus, curate and vocab sections."),
          base: Path = typer.Option(None, help="A model folder (safetensors + tokenizer.json) to expand and "
                                               "initialise; without it the tokenizers are trained and measured only.")
          ) -> None:
    """Train, measure and expand tokenizers; with --base, initialise the new rows with every initialiser."""
    from langadapt.config import parse_config
    from langadapt.experiment.pipeline import run_vocab
    from langadapt.kinds import read_kind
    from langadapt.report.page import report_run

    def action():
        started = time.perf_counter()
        cfg = parse_config(read_kind(config, ("experiment",), "langadapt vocab"), str(config))
        if base is not None:
            check_path(base, MODEL, "--base")
        folder = run_vocab(cfg, base)
        console.print(Markdown(report_run(folder)))
        _show("Run folder: ", folder, f" ({time.perf_counter() - started:.0f} s)")

    _guarded(action)


data_app = typer.Typer(no_args_is_help=True, help="The public data sets the examples read: list them, install them.")
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list() -> None:
    """Each set `data get` installs: what it holds, its upstream, its licence and default languages."""
    from langadapt.public_data import SETS, data_home

    for item in SETS.values():
        console.print(f"[bold]{item.name}[/]: {item.what}. From {item.upstream}; licence {item.licence}. "
                      f"Default languages: {' '.join(item.defaults) or '(one set)'}.", highlight=False)
    console.print(f"Data home: {data_home()} (LANGADAPT_DATA overrides it).", highlight=False)


@data_app.command("get")
def data_get(
    name: str = typer.Argument(..., help="The set: sib200, ntrex128, tatoeba, ud_maltese or fineweb2."),
    languages: list[str] = typer.Option(None, "--languages", help="Language codes as the set spells them "
                                        "(sib200: swh_Latn; ntrex128: swa; tatoeba: hsb), comma-separated or the "
                                        "flag repeated; default: the languages the examples use."),
    to: Path = typer.Option(None, "--to", help="Data home to install into (default: LANGADAPT_DATA, else "
                                               "~/.cache/langadapt/data)."),
    from_: Path = typer.Option(None, "--from", help="Copy from this local folder (holding NAME/ in the same "
                                                    "layout) instead of downloading: for offline machines."),
    mirror: str = typer.Option(None, "--mirror", help="Download from this URL (a mirror of the upstream files, "
                                                      "file:// included) instead of the upstream."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Fetch again files already installed."),
) -> None:
    """Install a public data set into the data home, where the examples look for it."""
    from langadapt.public_data import data_home, get

    chosen = _listed(",".join(languages)) if languages else None

    def action():
        if from_ is not None:
            check_path(from_, FOLDER, "--from")
        files = get(name, chosen, home=to, source=from_, base_url=mirror, overwrite=overwrite)
        home = to if to is not None else data_home()
        console.print(f"{name}: {len(files)} files in [bold]{Path(home) / name}[/]", highlight=False)

    _guarded(action)


if __name__ == "__main__":
    app()
