"""Stages and the one runner that owns their bookkeeping.

An experiment compiles to a list of `Stage`s (`pipeline.py`); `run_stages` runs them in order in
one run folder. The runner, never a stage, does the bookkeeping:

- **the stage cache**: a stage with `settings` is kept under a content hash of those settings and
  the keys of the stages it reads (which cover their own inputs in turn), the langadapt version
  and the git commit; a later run with the same key copies it instead of computing it;
- **resume**: the manifest records each finished stage, so a rerun of a killed run skips them;
  a `resumable` stage (training) continues inside its half-written folder from its checkpoints,
  any other half-written stage starts again from an empty folder;
- **dry runs**: `plan` says, per stage, what would be reused, resumed or computed.

Outputs are published to the cache atomically (copied to a temp folder, then renamed), so a
killed or concurrent run never leaves half a stage there. A cached stage is computed under an
exclusive lock on its key (`fcntl.flock`, released by the kernel when a holder dies), so two runs
sharing a stage cache compute it once: the second waits, then reuses the first one's output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langadapt import __version__
from langadapt.experiment.run_folder import Run
from langadapt.lock import exclusive
from langadapt.provenance import git_commit

log = logging.getLogger("langadapt")


@dataclass
class Stage:
    """One step of an experiment: `run(inputs, out)` fills its `folder` (inside the run) from its
    inputs, the folders of the stages `inputs` names ({"corpus": "curate"}: the curate stage's
    folder, passed as `inputs["corpus"]`). What a stage reads is thus declared once, and the
    runner derives the order checks and the cache keys from it."""

    name: str
    folder: str
    run: Callable[[dict[str, Path], Path], object]
    inputs: dict[str, str] = field(default_factory=dict)
    settings: dict | None = None  # given: the stage is cached under a key of these and its inputs' keys
    resumable: bool = False

    @property
    def after(self) -> tuple[str, ...]:
        """The stages this one reads, each once."""
        return tuple(dict.fromkeys(self.inputs.values()))


def inputs_of(stages: list[Stage], name: str, folder: Path) -> dict[str, Path]:
    """The input folders stage `name` receives in the run folder `folder`."""
    folders = {stage.name: stage.folder for stage in stages}
    stage = next(stage for stage in stages if stage.name == name)
    missing = [source for source in stage.inputs.values() if source not in folders]
    if missing:
        raise ValueError(f"stage {name!r} reads {', '.join(missing)}, which the stage list does not have")
    return {key: Path(folder) / folders[source] for key, source in stage.inputs.items()}


def stage_key(settings: dict, data: Iterable[bytes] = ()) -> str:
    """A short content hash of `settings` (JSON-able) and the byte strings in `data`."""
    digest = hashlib.sha256(json.dumps({**settings, "langadapt": __version__, "commit": git_commit()},
                                       sort_keys=True, default=str).encode())
    for chunk in data:
        digest.update(chunk + b"\0")
    return digest.hexdigest()[:16]


def cached(cache_dir: Path, stage: str, key: str) -> Path | None:
    """The cached output of `stage` under `key`, if an earlier run published it."""
    folder = Path(cache_dir) / f"{stage}-{key}"
    return folder if folder.is_dir() else None


def publish(cache_dir: Path, stage: str, key: str, output: Path) -> None:
    """Copy a finished stage output into the cache; a concurrent run that got there first wins."""
    folder = Path(cache_dir) / f"{stage}-{key}"
    if folder.is_dir():
        return
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.copytree(output, staging)
    try:
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def key_lock(cache_dir: Path, stage: str, key: str):
    """Hold the exclusive lock of `stage` under `key` in the cache (waiting for another run's).

    The lock file is removed by its holder before release (`lock.exclusive`), so a failed stage
    leaves no trace (nor an empty cache folder)."""

    def wait(_) -> None:
        log.info("%s: another run is computing it; waiting to reuse its output", stage)

    try:
        with exclusive(Path(cache_dir) / f".{stage}-{key}.lock", wait):
            yield
    finally:
        with contextlib.suppress(OSError):  # only when empty: a stage that failed leaves no cache folder
            Path(cache_dir).rmdir()


def stage_keys(stages: list[Stage]) -> dict[str, str | None]:
    """Each stage's cache key; None for a stage that is not cached or reads one that is not."""
    keys: dict[str, str | None] = {}
    for stage in stages:
        upstream = [keys.get(name) for name in stage.after]
        cacheable = stage.settings is not None and all(upstream)
        keys[stage.name] = stage_key(stage.settings, (k.encode() for k in upstream)) if cacheable else None
    return keys


def plan(stages: list[Stage], cache_dir: Path, done: Iterable[str] = ()) -> dict[str, str]:
    """What `run_stages` would do with each stage, computing nothing."""
    keys, done = stage_keys(stages), set(done)
    actions = {}
    for stage in stages:
        reused = cached(cache_dir, stage.name, keys[stage.name]) if keys[stage.name] else None
        actions[stage.name] = ("done (resumed run)" if stage.name in done else
                               f"reuse {reused}" if reused else "compute")
    return actions


def run_stages(stages: list[Stage], run: Run, cache_dir: Path) -> None:
    """Run every stage not yet finished in `run`, reusing cached ones; record each in the manifest."""
    keys = stage_keys(stages)
    # Each stage's input folders; a stage reading one the list lacks fails here, before any work.
    inputs = {stage.name: inputs_of(stages, stage.name, run.dir) for stage in stages}
    finished = run.manifest.setdefault("stages", {})
    for stage in stages:
        if stage.name in finished:
            continue
        key, started = keys[stage.name], time.perf_counter()
        with key_lock(cache_dir, stage.name, key) if key else contextlib.nullcontext():
            _reuse_or_compute(stage, inputs[stage.name], run, cache_dir, key)
        finished[stage.name] = key or "done"
        # Wall seconds per stage (a resumed stage counts only its last part): where a run's time goes.
        run.manifest.setdefault("seconds", {})[stage.name] = round(time.perf_counter() - started, 1)
        run.save_manifest()


def _reuse_or_compute(stage: Stage, inputs: dict[str, Path], run: Run, cache_dir: Path, key: str | None) -> None:
    out = run.dir / stage.folder
    reused = cached(cache_dir, stage.name, key) if key else None
    if reused is not None:
        log.info("%s: reusing %s (same inputs)", stage.name, reused)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(reused, out)
        run.manifest.setdefault("reused", {})[stage.name] = str(reused)
        return
    if not stage.resumable:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    stage.run(inputs, out)
    if key is not None:
        publish(cache_dir, stage.name, key, out)
