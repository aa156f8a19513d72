"""Atomic writes: a kill leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langadapt.errors import FULL, fs_error, os_errno

WRITE_ERRORS = (*FULL, errno.EROFS, errno.EACCES, errno.EPERM)  # the disk's state, not a bug: said in words

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_with(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temp path beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except Exception as err:
        if os_errno(err) in WRITE_ERRORS:
            raise fs_error(err, path, "writing") from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_folder(path: Path, fill: Callable[[Path], None]) -> Path:
    """Call `fill(tmp)` on a temp folder beside `path`, then put it in place of `path`: a kill or a
    full disk leaves the old folder (or none), never half of the new one beside it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as err:
        raise fs_error(err, path, "writing") from err
    try:
        fill(tmp)
        replace_folder(tmp, path)
    except Exception as err:
        if os_errno(err) in WRITE_ERRORS:  # safetensors words a full disk as `IoError(Os { code: 28, ...`
            raise fs_error(err, path, "writing") from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def replace_folder(new: Path, old: Path) -> None:
    """Put the finished folder `new` where `old` is: `old` steps aside, `new` takes its name, then
    `old` goes; a kill in between leaves one of the two whole (`<old>.previous` at worst)."""
    previous = old.with_name(f"{old.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if old.exists():
        old.rename(previous)
    new.rename(old)
    shutil.rmtree(previous, ignore_errors=True)


def write_text(path: Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: Path, rows: Any) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return write_with(path, write)
