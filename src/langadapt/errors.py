"""One error type for everything a user can fix: what went wrong, where, and how to fix it."""

from __future__ import annotations


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
