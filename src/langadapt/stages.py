"""The stage cache: a stage's output folder kept under a content hash of everything it depends
on, so later runs with the same inputs copy it instead of computing it again.

A key covers the stage's config sections, the hashes of its input files or upstream outputs,
the seed, the langadapt version and the git commit. Outputs are published atomically (copied
to a temp folder, then renamed), so a killed or concurrent run never leaves half a stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from langadapt import __version__
from langadapt.runs import git_commit


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
