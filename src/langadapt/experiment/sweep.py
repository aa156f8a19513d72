"""Sweeps: one YAML declares a grid of runs, each with a readable name from what varies.

    sweep:
      grid:                     # every combination
        adapt.lr: [0.001, 0.003]
        vocab.train_with: [mean, subword-mean]
      zip:                      # paired values, one run per position
        pretrain.steps: [200, 400]
        adapt.steps: [100, 200]
      labels:                   # optional short names for keys, used in run names and tables
        data.sources.0.max_bytes: own_bytes

Keys are dotted paths into the config; a number picks a list item (`data.sources.0.files`).
A mapping instead of a list names its values: `adapt.mix: {mono: {}, code: {code: 1.0}}` gives
runs `mix=mono` and `mix=code`. Runs land in `<output_dir>/<name>/<run name>/`. An experiment
YAML (`ExperimentConfig`) and a training job YAML (`TrainJobConfig`, it has `data:`) both sweep.
"""

from __future__ import annotations

import copy
import itertools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from langadapt.config import ExperimentConfig, parse_config
from langadapt.config_file import read_yaml
from langadapt.errors import LangadaptError
from langadapt.schema import Section
from langadapt.train.config import TrainJobConfig


def schema_of(data: dict) -> type[Section]:
    """A training job declares `data:` (its sources); anything else is an experiment."""
    return TrainJobConfig if "data" in data else ExperimentConfig


def _section(annotation) -> type[BaseModel] | None:
    """The section class of a key's annotation, looking through `Section | None`."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _check_path(key: str, where: str, schema: type[BaseModel]) -> None:
    model: type[BaseModel] | None = schema
    parts = key.split(".")
    depth = 0
    while depth < len(parts):
        part = parts[depth]
        if model is None:
            raise LangadaptError(f"sweep key `{key}`: {parts[depth - 1]!r} is a value, not a section", where=where,
                                 fix=f"end the path at `{'.'.join(parts[:depth])}`.")
        if part not in model.model_fields:
            prefix = ".".join(parts[:depth]) or "the top level"
            raise LangadaptError(
                f"sweep key `{key}` does not exist: {prefix} has no key {part!r}", where=where,
                fix=f"use a dotted path to a config key; keys here: {', '.join(model.model_fields)}.",
            )
        annotation = model.model_fields[part].annotation
        if typing.get_origin(annotation) is list and depth + 1 < len(parts):
            if not parts[depth + 1].isdigit():
                raise LangadaptError(f"sweep key `{key}`: {part!r} is a list; the next part must be an index",
                                     where=where, fix=f"write e.g. `{'.'.join(parts[: depth + 1])}.0`.")
            annotation = typing.get_args(annotation)[0]
            depth += 1
        model = _section(annotation)
        depth += 1


def _set(data: dict, key: str, value, where: str) -> None:
    *path, leaf = key.split(".")
    node = data
    for part in [*path, leaf]:
        if isinstance(node, list) and int(part) >= len(node):
            raise LangadaptError(f"sweep key `{key}`: the list has only {len(node)} item(s)", where=where,
                                 fix="declare the list item in the config, then sweep its keys.")
        if part is not leaf:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[int(leaf) if isinstance(node, list) else leaf] = value


def _label(value) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@dataclass
class SweepRun:
    config: Section
    values: dict[str, str] = field(default_factory=dict)  # short key name → value label, for tables


def _named(key: str, values, where: str) -> list[tuple[str, object]]:
    """(label, value) pairs: a mapping names its values, a list is labelled by the values themselves."""
    if isinstance(values, dict) and values:
        return [(_label(label), value) for label, value in values.items()]
    if isinstance(values, list) and values:
        return [(_label(value), value) for value in values]
    raise LangadaptError(f"sweep key `{key}` needs a non-empty list of values, got {values!r}",
                         where=where, fix=f"write `{key}: [value1, value2]`.")


def expand_runs(data: dict, where: str = "<config>") -> list[SweepRun]:
    """Turn a config with an optional `sweep:` section into validated runs.

    Without a sweep this is one run. Every key, list and run config is checked before any
    computation starts.
    """
    data = copy.deepcopy(data)
    sweep = data.pop("sweep", None)
    schema = schema_of(data)
    if sweep is None:
        return [SweepRun(parse_config(data, where, schema))]
    if not isinstance(sweep, dict) or not sweep or not set(sweep) <= {"grid", "zip", "labels"}:
        raise LangadaptError("`sweep` must be a mapping with `grid` and/or `zip` (and optional `labels`)",
                             where=where, fix="write `sweep: {grid: {adapt.lr: [0.001, 0.003]}}`.")
    grid, zipped, labels = sweep.get("grid") or {}, sweep.get("zip") or {}, sweep.get("labels") or {}
    if not grid and not zipped:
        raise LangadaptError("`sweep` has neither `grid` nor `zip`", where=where,
                             fix="list the keys to vary under `sweep.grid` or `sweep.zip`.")
    options = {}
    for key, values in {**grid, **zipped}.items():
        _check_path(key, where, schema)
        options[key] = _named(key, values, where)
    for key in labels:
        if key not in options:
            raise LangadaptError(f"`sweep.labels` names `{key}`, which is not swept", where=where,
                                 fix="label only keys listed under `grid` or `zip`.")
    both = set(grid) & set(zipped)
    if both:
        raise LangadaptError(f"sweep key(s) {', '.join(sorted(both))} appear in both `grid` and `zip`",
                             where=where, fix="put each key in one of them.")
    lengths = {key: len(options[key]) for key in zipped}
    if len(set(lengths.values())) > 1:
        raise LangadaptError(f"`sweep.zip` lists differ in length: {lengths}", where=where,
                             fix="give every zipped key the same number of values.")

    leaves = [key.split(".")[-1] for key in options]
    short = {key: labels.get(key) or (key.split(".")[-1] if leaves.count(key.split(".")[-1]) == 1 else key)
             for key in options}  # the last word of a key, or the whole key where two end alike
    experiment = data.get("name", "experiment")
    output_dir = data.get("output_dir", "runs")
    zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*(options[k] for k in zipped), strict=True)]
    runs = []
    for grid_row in itertools.product(*(options[k] for k in grid)):
        for zip_row in zip_rows or [{}]:
            chosen = {**dict(zip(grid, grid_row, strict=True)), **zip_row}
            run = copy.deepcopy(data)
            for key in sorted(chosen, key=lambda k: k.count(".")):  # a whole section before keys inside it
                _set(run, key, chosen[key][1], where)
            values = {short[key]: label for key, (label, _) in chosen.items()}
            run["name"] = "-".join(f"{name}={label}" for name, label in values.items())
            run["output_dir"] = f"{output_dir}/{experiment}"
            if schema is ExperimentConfig:  # experiments beside each other share their reusable stages
                run.setdefault("stage_cache", f"{output_dir}/.stages")
            runs.append(SweepRun(parse_config(run, f"{where} (sweep run {run['name']})", schema), values))
    names = [r.config.name for r in runs]
    if len(set(names)) != len(names):
        raise LangadaptError("two sweep runs got the same name", where=where,
                             fix="the swept values must differ; remove repeated values from the lists.")
    return runs


def expand(data: dict, where: str = "<config>") -> list[Section]:
    """The run configs a config declares (see `expand_runs`)."""
    return [run.config for run in expand_runs(data, where)]


def load_runs(path: Path) -> list[SweepRun]:
    """All runs a YAML declares (one unless it has a `sweep:` section)."""
    return expand_runs(read_yaml(path), str(path))
