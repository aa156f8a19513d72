"""Evaluation: bits per byte, transfer, probes, retrieval, translation, and the lm-eval bridge."""

from __future__ import annotations

import importlib
from types import ModuleType

from langadapt.errors import LangadaptError


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or say which langadapt extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise LangadaptError(f"{module} is not installed (it is part of the optional extra '{extra}')",
                             fix=f"pip install 'langadapt[{extra}]'") from None
