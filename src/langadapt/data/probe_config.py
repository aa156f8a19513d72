"""The `probes:` section of a training job: probe sets injected into pretraining on a schedule
("Train Once, Answer All"), torch-free so config.py can validate a job without the training code."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from langadapt.paths import TextFile


class ProbeSetConfig(BaseModel):
    """One probe set: what it injects (`file`), when (`steps` or `step_range`) and how often (`repeat`).

    File formats, one item per line, fields separated by tabs: canary `prefix<TAB>secret`; fact
    `prompt<TAB>answer<TAB>distractor[<TAB>distractor...]`; heldout: one text per line (a seeded half
    is injected, the other half never is). The injected text joins the fields it uses by a space."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["canary", "fact", "heldout"]
    file: TextFile
    steps: list[int] = Field(default=[], description="the steps that receive inserts (or give `step_range`)")
    step_range: tuple[int, int] | None = Field(default=None, description="[first, last]: every step between")
    repeat: int = Field(default=1, ge=1, description="times each injected sequence is inserted in all, spread "
                        "evenly over the scheduled steps")
    alternatives: int = Field(default=100, ge=1, description="canary: seeded random alternatives it is ranked among")
    seed: int = Field(default=0, description="seeds the canary alternatives and the heldout split")

    @model_validator(mode="after")
    def _one_schedule(self):
        if bool(self.steps) == (self.step_range is not None):
            raise ValueError(f"probe set {self.name!r}: give either `steps` or `step_range`")
        first, last = self.step_range or (min(self.steps), max(self.steps))
        if first < 1 or last < first:
            raise ValueError(f"probe set {self.name!r}: steps start at 1 and a step_range is [first, last]")
        return self

    def scheduled_steps(self) -> list[int]:
        return sorted(set(self.steps)) if self.steps else list(range(self.step_range[0], self.step_range[1] + 1))


def check_probes(probes: list[ProbeSetConfig], steps: int, method: str) -> None:
    """Checks that need the whole job: raise ValueError naming the probe set and the fix."""
    names = [probe.name for probe in probes]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"probe set names must differ; {', '.join(twice)} is used more than once")
    for probe in probes:
        if max(probe.scheduled_steps()) > steps:
            raise ValueError(f"probe set {probe.name!r} injects at step {max(probe.scheduled_steps())}, beyond "
                             f"train.steps {steps}; schedule it within the run or raise train.steps")
    if probes and "+" in method:
        raise ValueError(f"probe sets are injected into one training run; method {method!r} has stages")
