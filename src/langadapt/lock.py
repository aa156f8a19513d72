"""One process per run folder: `hold(folder)` takes an exclusive lock beside it for as long as a
run writes there.

Two processes writing one run folder interleave their logs and checkpoints and leave a folder that
says "completed" about training that never happened, so the second one stops at once with a
message naming the holder's pid. The lock is `fcntl.flock` on `.<name>.lock` beside the folder:
the kernel releases it when its holder dies (even by SIGKILL), so a lock file left by a dead
process is simply taken over; the pid written into it only names the holder in the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from langadapt.errors import LangadaptError, fs_error


def lock_path(folder: Path) -> Path:
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


@contextlib.contextmanager
def hold(folder: Path) -> Iterator[None]:
    """Hold `folder` for this process, or raise naming the process that holds it."""
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
    except OSError as err:
        raise fs_error(err, path.parent, "creating the run folder's parent") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LangadaptError(f"{folder} is in use by another langadapt process (pid {holder}), which holds "
                                 f"{path}", fix=f"wait for process {holder} to finish (or stop it), then rerun; "
                                 "to run both at once, give this one another `name` or `output_dir`.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock; the file stays, so a waiter never locks a removed one
