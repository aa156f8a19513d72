"""Where the runs of an experiment execute: in this process, in N local worker processes, or
as a Slurm job array submitted through `submitit`.

Every run has its own folder, seeds and checkpoints, so the choice changes only the wall time,
never a result. A run that reads a sibling's folder (`${runs.X}`, experiment/sweep.py) starts
once that sibling has finished: runs go in waves, each wave the runs whose siblings are done
(on Slurm: each wave waits, `afterok`, for the jobs its runs read). Reused stages (the pretrained
base) are computed once under their cache key's lock: a run that starts meanwhile waits and reuses
them.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from langadapt.errors import LangadaptError
from langadapt.experiment.sweep import SweepRun
from langadapt.provenance import changes, check_same_run, different_run, read_manifest
from langadapt.schema import Section


def run_state(cfg: Section, overwrite: bool = False) -> str:
    """`new`, `finished` (same config already completed: skip it), `resume` (a training job
    stopped half-way: its checkpoints continue it) or `overwrite`.

    A folder that holds something else — another config, or not a run at all — is an error
    raised before any computation, so nothing a user made is replaced by accident.
    """
    final = Path(cfg.output_dir) / cfg.name
    if not final.exists():
        incomplete = final.with_name(final.name + ".incomplete")
        partial = read_manifest(incomplete)  # an experiment stopped half-way
        if partial is None:
            return "new"
        if overwrite:
            return "overwrite"
        what = changes(partial.get("config"), cfg.model_dump(mode="json"))
        if what:  # its finished stages would be thrown away unasked
            raise different_run(incomplete, what)
        return "resume"
    if overwrite:
        return "overwrite"
    # a training job records its config alone, an experiment in its manifest
    record = final / ("config.json" if cfg.kind == "train" else "manifest.json")
    check_same_run(final, record, cfg.model_dump(mode="json"), _inputs_of(cfg))
    return "finished" if (final / "results.parquet").is_file() else "resume"


def _inputs_of(cfg: Section) -> list[Path]:
    """The input files a run of `cfg` reads (imported late: training pulls in torch)."""
    if cfg.kind == "train":
        from langadapt.train.job_data import input_files

        return input_files(cfg)
    from langadapt.experiment.corpus_text import input_files

    return input_files(cfg)


def compute(cfg: Section, state: str) -> Path:
    """Run one experiment or training job to its end; return its folder."""
    from langadapt.experiment.pipeline import run_experiment
    from langadapt.train.job import run_train_job

    folder = Path(cfg.output_dir) / cfg.name
    if cfg.kind == "experiment":
        if state == "overwrite":  # a half-finished run is recomputed, not resumed
            shutil.rmtree(folder.with_name(folder.name + ".incomplete"), ignore_errors=True)
        return run_experiment(cfg)
    run_train_job(cfg, overwrite=state == "overwrite")  # replaces the old folder only once it has finished
    return folder


def compute_run(run: SweepRun, state: str) -> Path:
    """`compute` for a run of a sweep, its config checked again now that the runs it reads exist."""
    return compute(run.ready(), state)


def _compute_in_worker(run: SweepRun, state: str, threads: int) -> Path:
    import torch

    torch.set_num_threads(threads)  # workers share the cores instead of oversubscribing them
    return compute_run(run, state)


def waves(plan: list[tuple[SweepRun, str]]) -> list[list[tuple[SweepRun, str]]]:
    """The runs to compute in order of what they read: each wave holds the runs whose siblings are
    finished already or computed in an earlier wave (a sweep lists every run after those it reads)."""
    wave_of: dict[Path, int] = {}
    for run, _ in plan:
        wave_of[run.folder] = 1 + max((wave_of.get(folder, -1) for folder in run.needs), default=-1)
    grouped: list[list[tuple[SweepRun, str]]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
    for run, state in plan:
        grouped[wave_of[run.folder]].append((run, state))
    return grouped


def run_local(plan: list[tuple[SweepRun, str]], workers: int) -> list[Path]:
    """Compute the runs `workers` at a time in fresh processes, wave after wave; folders in plan order."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    done: dict[Path, Path] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for wave in waves(plan):
            futures = {run.folder: pool.submit(_compute_in_worker, run, state, threads) for run, state in wave}
            done.update({folder: future.result() for folder, future in futures.items()})
    return [done[run.folder] for run, _ in plan]


def submit_slurm(plan: list[tuple[SweepRun, str]], folder: Path, partition: str, time_min: int, cpus: int,
                 mem_gb: float) -> list[str]:
    """Submit the runs as Slurm job arrays, one per wave, each array after the jobs its runs read
    (`afterok`); return the job ids. Rerun `langadapt run` when they are done: finished runs
    are reused and the comparison is written."""
    try:
        import submitit
    except ImportError as err:
        raise LangadaptError("--slurm needs the optional extra 'slurm' (submitit is not installed)",
                             fix="run `pip install 'langadapt[slurm]'`.") from err
    if shutil.which("sbatch") is None:
        raise LangadaptError("--slurm needs Slurm's `sbatch` on the PATH, and it is not there",
                             fix="run this on a Slurm login node, or use --workers N to run locally.")
    ids: dict[Path, str] = {}
    for wave in waves(plan):
        after = sorted({ids[need] for run, _ in wave for need in run.needs if need in ids})
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(partition=partition, time=time_min, cpus_per_task=cpus, mem=f"{mem_gb:g}G",
                                   job_name="langadapt", array_parallelism=len(wave),
                                   additional_parameters={"dependency": f"afterok:{':'.join(after)}"} if after else {})
        with executor.batch():
            jobs = [executor.submit(compute_run, run, state) for run, state in wave]
        ids.update({run.folder: job.job_id for (run, _), job in zip(wave, jobs, strict=True)})
    return [ids[run.folder] for run, _ in plan]
