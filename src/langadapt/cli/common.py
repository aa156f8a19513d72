"""What every command shares: the console (user text printed literally), and one way to turn a
user error into one paragraph instead of a traceback (`guarded`)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

from langadapt.atomic import WRITE_ERRORS
from langadapt.errors import Interrupted, LangadaptError, fs_error

console = Console(markup=False)  # user text (messages, paths, YAML) is printed literally, `[models]` and all
state = {"debug": False}


def show(label: str, value: object, after: str = "") -> None:
    """`label` then `value` in bold (a path, printed literally), then `after`."""
    console.print(Text.assemble(label, (str(value), "bold"), after), soft_wrap=True)  # a path is never cut


def error(message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def listed(value: str | None) -> list[str]:
    """A comma-separated option as its items (`eng_Latn, swh_Latn` → two codes)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def guarded(action):
    """Run a command's action; what a user can fix prints as one paragraph (no traceback): a
    `LangadaptError`, a file-system refusal (full disk, read-only, permissions) and Ctrl-C."""
    try:
        return action()
    except LangadaptError as err:
        if state["debug"]:
            raise
        error(err.message)
        raise typer.Exit(code=130 if isinstance(err, Interrupted) else 2) from None
    except KeyboardInterrupt:
        if state["debug"]:
            raise
        error("interrupted (Ctrl-C). Finished work is kept: rerun the same command to continue.")
        raise typer.Exit(code=130) from None
    except OSError as err:
        if state["debug"] or err.errno not in WRITE_ERRORS:
            raise
        error(fs_error(err, err.filename or "a file", "writing").message)
        raise typer.Exit(code=2) from None


