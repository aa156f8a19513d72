"""One config key picks datatrove's executor: local processes, Slurm job arrays, or Ray tasks.

The pipeline is a chain of stages (each waits for the one before); every executor kind takes the
same chain. datatrove marks finished tasks in `logs/<stage>/completions/`, so a rerun after a
kill redoes only the unfinished tasks, and they overwrite their own partial output files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dill
from datatrove.executor import LocalPipelineExecutor, SlurmPipelineExecutor
from datatrove.executor.base import PipelineExecutor

from langadapt.atomic import write_text
from langadapt.corpus.config import CurationExecutor
from langadapt.registry import EXECUTORS


@dataclass
class Stage:
    name: str
    pipeline: list
    tasks: int  # datatrove's dedup stages fix their own task counts (1 for clustering, buckets for MinHash)


def local(stage: Stage, cfg: CurationExecutor, logs: Path, depends):
    # One worker runs the tasks in this process (no pool start-up): the right choice on a laptop.
    return LocalPipelineExecutor(stage.pipeline, tasks=stage.tasks, workers=min(cfg.workers, stage.tasks),
                                 logging_dir=str(logs), depends=depends)


def slurm(stage: Stage, cfg: CurationExecutor, logs: Path, depends):
    return SlurmPipelineExecutor(
        stage.pipeline, tasks=stage.tasks, time=cfg.time, partition=cfg.partition, cpus_per_task=cfg.cpus_per_task,
        mem_per_cpu_gb=cfg.mem_per_cpu_gb, job_name=stage.name, logging_dir=str(logs), depends=depends,
        venv_path=cfg.venv_path, slurm_logs_folder=str(logs / "slurm_logs"),
    )


def ray(stage: Stage, cfg: CurationExecutor, logs: Path, depends):
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(stage.pipeline, tasks=stage.tasks, workers=cfg.workers, logging_dir=str(logs),
                               depends=depends, cpus_per_task=cfg.cpus_per_task, mem_per_cpu_gb=cfg.mem_per_cpu_gb)


def chain(stages: list[Stage], cfg: CurationExecutor, logs: Path) -> list[PipelineExecutor]:
    """The executors of `stages`, in order. On Slurm each depends on the previous (job dependencies;
    running the last submits them all); local and Ray runs start them one after another instead
    (`run_chain`), because datatrove writes every executor's `executor.json` with its whole `depends`
    chain, which grows with the square of the stages (40 of 150 CPU seconds for 10 languages)."""
    executors: list[PipelineExecutor] = []
    for stage in stages:
        depends = executors[-1] if executors and cfg.kind == "slurm" else None
        executors.append(EXECUTORS[cfg.kind](stage, cfg, logs / stage.name, depends))
    return executors


def run_chain(executors: list[PipelineExecutor]) -> None:
    """Run a chain: Slurm submits it from its last executor; otherwise each stage runs in turn (a
    stage whose tasks are all complete returns at once, so a rerun resumes)."""
    if executors and executors[-1].depends is not None:
        executors[-1].run()
        return
    for executor in executors:
        executor.run()


def write_slurm_scripts(last: SlurmPipelineExecutor) -> list[Path]:
    """Write each stage's sbatch script and pickled executor without submitting (`submit: false`).

    The scripts are the ones datatrove would submit (`launch_pickled_pipeline` runs the pickled
    stage); submit them in order, each with `--dependency=afterok:<previous job id>`."""
    executors = []
    while last is not None:
        executors.append(last)
        last = last.depends
    scripts = []
    for stage in reversed(executors):
        stage.depends = None  # datatrove does the same before pickling: the job ids link the stages
        pickled = stage.logging_dir.resolve_paths("executor.pik")
        Path(pickled).parent.mkdir(parents=True, exist_ok=True)
        with open(pickled, "wb") as handle:
            dill.dump(stage, handle)
        script = stage.get_launch_file_contents(stage.get_sbatch_args(stage.tasks),
                                                f"launch_pickled_pipeline {pickled}")
        scripts.append(write_text(Path(stage.logging_dir.resolve_paths("launch_script.slurm")), script))
    return scripts
