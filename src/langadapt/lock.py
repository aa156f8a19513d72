"""Exclusive locks between processes: one process per run folder (`hold`), one computation per
cached stage (`stages.key_lock`), both through `exclusive`.

Two processes writing one run folder interleave their logs and checkpoints and leave a folder that
says "completed" about training that never happened, so the second one stops at once with a
message naming the holder's pid. A lock is `fcntl.flock` on a lock file (`.<name>.lock` beside a
run folder): the kernel releases it when its holder dies (even by SIGKILL), so a lock file left by
a dead process is simply taken over; the pid written into it only names the holder in messages.
A holder removes the file when it is done, so nothing is left beside the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from langadapt.errors import LangadaptError, fs_error


@contextlib.contextmanager
def exclusive(path: Path, busy: Callable[[TextIO], None]) -> Iterator[None]:
    """Hold an exclusive `flock` on `path`. When another process holds it, `busy(handle)` is
    called first (it raises to give up, or returns to wait for the lock).

    The holder removes the file before releasing it, so a waiter that then gets the lock of the
    removed file takes the current one instead (compared by inode)."""
    path = Path(path)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a read-only or virtual file system, say
            raise fs_error(err, path.parent, "creating the folder") from None
        try:
            handle = open(path, "a+", encoding="utf-8")
        except FileNotFoundError:  # the folder went away between the two calls (a holder cleaned up)
            continue
        except OSError as err:
            raise fs_error(err, path, "creating the lock file") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                busy(handle)
            except BaseException:
                handle.close()
                raise
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # its holder removed this file: lock the current one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def lock_path(folder: Path) -> Path:
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


def hold(folder: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the run folder `folder` for this process, or raise naming the process that holds it."""

    def refuse(handle: TextIO) -> None:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        raise LangadaptError(f"{folder} is in use by another langadapt process (pid {holder}), which holds "
                             f"{lock_path(folder)}", fix=f"wait for process {holder} to finish (or stop it), then "
                             "rerun; to run both at once, give this one another `name` or `output_dir`.")

    return exclusive(lock_path(folder), refuse)
