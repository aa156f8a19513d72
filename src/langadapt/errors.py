"""One error type for everything a user can fix: what went wrong, where, and how to fix it."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path


class LangadaptError(Exception):
    """An error caused by input the user controls (config, data, environment).

    The CLI prints it as one paragraph without a traceback; library code raises it
    instead of printing or exiting.
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return " ".join(parts)


_ERRNO = re.compile(r"(?:code:\s*|errno\s*|\[Errno\s*|os error\s*)(\d+)", re.IGNORECASE)
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def os_errno(err: BaseException) -> int | None:
    """The OS error number behind `err`: its own, a wrapped one's, or the one a library quoted in
    its text (safetensors says `IoError(Os { code: 28, ... })`)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno
        if isinstance(seen, OSError) and _SHORT_WRITE.search(str(seen)):  # numpy's `tofile` on a full disk
            return errno.ENOSPC
        found = _ERRNO.search(str(seen))
        if found:
            return int(found.group(1))
        seen = seen.__cause__ or seen.__context__
    return None


def os_cause(err: BaseException) -> str:
    """`err`'s cause in plain words ("No space left on device"), not a library's rendering of it."""
    number = os_errno(err)
    if _SHORT_WRITE.search(str(err)):
        return f"the disk took only part of the data ({err}): it is full, or a file-size limit was reached"
    if number is not None:
        return os.strerror(number)
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def fs_fix(number: int | None, path: Path | str) -> str:
    """What to do about a file-system error number met while writing `path`."""
    if number in FULL:
        return (f"free disk space on the file system holding {path} (or raise the file-size limit, `ulimit -f`), "
                "then rerun the same command: it continues from the last complete state.")
    if number == errno.EROFS:
        return f"{path} is on a read-only file system: choose an `output_dir` on a writable disk."
    if number in (errno.EACCES, errno.EPERM):
        return f"choose an `output_dir` you can write to, or fix the permissions of {path}."
    if number in (errno.ENOENT, errno.ENOTDIR):
        return f"check the path {path}: a folder on the way is missing or is a file."
    return f"check that {path} is on a writable local disk, then rerun the same command."


def fs_error(err: BaseException, path: Path | str, doing: str) -> LangadaptError:
    """A file-system failure while `doing` something to `path`, as one paragraph with the fix."""
    return LangadaptError(f"{doing} {path} failed: {os_cause(err)}", fix=fs_fix(os_errno(err), path))


class Interrupted(LangadaptError):
    """Ctrl-C during a run: where it stopped and how to continue (the CLI exits with 130)."""

    def __init__(self, where_stopped: str):
        super().__init__(f"interrupted (Ctrl-C): {where_stopped}",
                         fix="rerun the same command to continue; pass --overwrite to start again instead.")
