"""The three kinds of YAML langadapt reads, and the one function that tells them apart.

    kind: experiment   # `langadapt run`: curate → vocab → pretrain → adapt → evaluate → report
    kind: train        # `langadapt train` (or `run`): one model trained on text (`data:`) or a labelled `task:`
    kind: curate       # `langadapt curate`: raw text through language ID, filters and dedup

`kind:` is optional. Without it the top-level sections say which kind a file is: each kind has
sections no other kind has (a training job `data`, `task`, `train`, `method`, `init_from`, ...;
a curation `inputs`, `lid`, `filters`, ...; an experiment `corpus`, `vocab`, `pretrain`, `adapt`,
...), so a file naming sections of two kinds is an error, and one naming none is an experiment
(every experiment key has a default). Each config class carries its kind (`cfg.kind`), so code
asks `cfg.kind == "train"` instead of testing classes.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

from langadapt.config import ExperimentConfig
from langadapt.config_file import read_yaml
from langadapt.corpus.config import CurationConfig
from langadapt.errors import LangadaptError
from langadapt.schema import Section
from langadapt.train.config import TrainJobConfig

SCHEMAS: dict[str, type[Section]] = {schema.kind: schema for schema in (ExperimentConfig, TrainJobConfig,
                                                                        CurationConfig)}
WHAT = {"experiment": "an experiment", "train": "a training job", "curate": "a curation"}
COMMANDS = {"experiment": "langadapt run", "train": "langadapt train", "curate": "langadapt curate"}


@cache
def distinctive_sections() -> dict[str, frozenset[str]]:
    """Per kind, the top-level keys that no other kind has (read from the schemas themselves)."""
    keys = {kind: set(schema.model_fields) for kind, schema in SCHEMAS.items()}
    return {kind: frozenset(own - set().union(*(keys[other] for other in keys if other != kind)))
            for kind, own in keys.items()}


def kind_of(data: dict, where: str) -> str:
    """The kind of a YAML's top-level mapping: its `kind:` key, else the sections it has."""
    declared = data.get("kind")
    if declared is not None:
        if declared not in SCHEMAS:
            close = difflib.get_close_matches(str(declared), SCHEMAS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise LangadaptError(f"unknown `kind: {declared}`; {hint}the kinds are {', '.join(SCHEMAS)}",
                                 where=where, fix="write `kind: experiment`, `kind: train` or `kind: curate`, or "
                                                  "remove the key: the sections say which kind a file is.")
        return declared
    found = {kind: sorted(set(data) & keys) for kind, keys in distinctive_sections().items() if set(data) & keys}
    if len(found) > 1:
        mixed = "; ".join(f"{', '.join(f'`{k}`' for k in keys)} ({WHAT[kind]})" for kind, keys in found.items())
        raise LangadaptError(f"the top-level sections belong to different kinds of YAML: {mixed}", where=where,
                             fix="keep the sections of one kind (declare it with `kind:` at the top to be told "
                                 "which keys do not belong).")
    return next(iter(found), "experiment")


def schema_of(data: dict, where: str) -> type[Section]:
    """The config class a YAML's top-level mapping validates against (see `kind_of`)."""
    return SCHEMAS[kind_of(data, where)]


def require_kind(kind: str, accepted: tuple[str, ...], where: str, command: str) -> None:
    """Refuse a YAML of another kind than `command` takes, naming the command that does take it."""
    if kind not in accepted:
        takes = " or ".join(WHAT[k] for k in accepted)
        raise LangadaptError(f"this is {WHAT[kind]} YAML, and `{command}` takes {takes}", where=where,
                             fix=f"run `{COMMANDS[kind]} {where}`; if the file is meant as another kind, "
                                 "declare it with `kind:` to be told which keys do not belong.")


def read_kind(path: Path, accepted: tuple[str, ...], command: str) -> dict:
    """A YAML's mapping, refused (naming the right command) unless it is one of the `accepted` kinds."""
    data = read_yaml(path)
    require_kind(kind_of(data, str(path)), accepted, str(path), command)
    return data
