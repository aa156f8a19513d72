"""The `evaluate:` section: evaluations beyond held-out bits per byte."""

from __future__ import annotations

from pydantic import Field

from langadapt.paths import (
    InputFolder,
)
from langadapt.schema import Section


class EvaluateConfig(Section):
    """Evaluations beyond held-out bpb, run on the base and every adapted model."""

    sib200: InputFolder | None = Field(default=None, description="SIB-200 folder (<lang>/{train,test}.tsv): a topic "
                                "probe trained and tested on the target language")
    probe_limit: int | None = Field(default=None, ge=10, description="at most this many probe training sentences")
