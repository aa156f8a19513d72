"""The pipeline's commands: `demo`, `run` (an experiment, a training job or a study, one run or a
sweep), `train`, `curate`, `vocab`, `config`, `report` and `languages`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markdown import Markdown

from langadapt.cli.common import console, guarded, show
from langadapt.config import ExperimentConfig, demo_config
from langadapt.errors import LangadaptError
from langadapt.paths import FOLDER, MODEL, OUTPUT, check_path

ACTIONS = {"new": "compute", "overwrite": "recompute (--overwrite)", "finished": "reuse (already finished)",
           "resume": "resume from its last checkpoint"}


def run_all(runs: list, dry_run: bool = False, overwrite: bool = False, workers: int = 1,
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
        show("Run folder: ", folder, f" ({time.perf_counter() - started:.0f} s)")
        done.append((folder, run.columns))
    if runs[0].columns:
        summary = Path(runs[0].config.output_dir)
        console.print(Markdown(write_comparison(summary, done)))
        show("Comparison: ", summary / "report" / "index.html")


DRY_RUN = typer.Option(False, "--dry-run", help="Print what would be computed and what reused; compute nothing.")
OVERWRITE = typer.Option(False, "--overwrite", help="Recompute runs whose folder already exists.")


def demo(
    output_dir: Path = typer.Option(Path("runs"), help="Where the run folder (`demo/`, `demo-tiny/`) is written."),
    tiny: bool = typer.Option(False, "--tiny", help="The tiny laboratory instead: pretrain a 1.3M-parameter GPT-2 "
                              "on five languages, then adapt it to Upper Sorbian (needs only the `sample` extra)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Adapt SmolLM2-135M to Upper Sorbian on the built-in sample corpus (CPU, minutes)."""
    from langadapt.experiment.sweep import SweepRun

    guarded(lambda: check_path(output_dir, OUTPUT, "--output-dir"))
    guarded(lambda: run_all([SweepRun(demo_config(output_dir, tiny))], overwrite=overwrite))


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
        run_all(expand_runs(data, str(config)), dry_run, overwrite, workers, cluster)

    guarded(action)


def report(run_dir: Path = typer.Argument(..., help="A finished run folder (holds results.parquet).")) -> None:
    """Rebuild and print a run's report from its results table."""
    from langadapt.report.page import report_run

    def action():
        check_path(run_dir, FOLDER, "RUN_DIR")
        if not (run_dir / "results.parquet").is_file():
            raise LangadaptError(f"{run_dir} has no results.parquet",
                                 fix="pass a finished run folder, such as runs/demo.")
        console.print(Markdown(report_run(run_dir)))

    guarded(action)


def languages() -> None:
    """List the languages of the built-in sample corpus (normalised codes)."""
    from langadapt.corpus.sources import sample_locales

    guarded(lambda: console.print(", ".join(sample_locales())))


def config(path: Path = typer.Argument(None, help="Any langadapt YAML (experiment, training job, curation) to "
                                              "validate; omit for the experiment defaults.")) -> None:
    """Validate a config and print each run it declares with every default filled in."""
    import yaml

    from langadapt.experiment.sweep import load_runs

    configs = guarded(lambda: [run.config for run in load_runs(path)] if path else [ExperimentConfig()])
    for cfg in configs:
        console.print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                      highlight=False)


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
        cfg = load_curation_config(config, on_error, read_kind(config, ("curate",), "langadapt curate"))
        if check_thresholds:
            console.print("Share of held-out clean reference text each stage would remove:")
            console.print(check_table(check(cfg)), markup=False, highlight=False, soft_wrap=True)
            return
        out = run_curation(cfg)
        table = out / "removal_table.md"
        if table.is_file():
            console.print(Markdown(table.read_text(encoding="utf-8")))
        show("Curated corpus: ", out)

    guarded(action)


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
            show("Model: ", final)

    guarded(action)


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
        show("Run folder: ", folder, f" ({time.perf_counter() - started:.0f} s)")

    guarded(action)


