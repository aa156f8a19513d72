"""Sweeps: one YAML declares a grid of runs, each with a readable name from what varies.

    sweep:
      grid:                     # every combination
        adapt.lr: [0.001, 0.003]
        vocab.train_with: [mean, subword-mean]
      zip:                      # paired values, one run per position
        pretrain.steps: [200, 400]
        adapt.steps: [100, 200]

Keys are dotted paths into the config. Runs land in `<output_dir>/<name>/<run name>/`.
"""

from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path

from pydantic import BaseModel

from langadapt.config import ExperimentConfig, parse_config, read_yaml
from langadapt.errors import LangadaptError


def _check_path(key: str, where: str) -> None:
    model: type[BaseModel] = ExperimentConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if part not in model.model_fields:
            prefix = ".".join(parts[:depth]) or "the top level"
            raise LangadaptError(
                f"sweep key `{key}` does not exist: {prefix} has no key {part!r}", where=where,
                fix=f"use a dotted path to a config key; keys here: {', '.join(model.model_fields)}.",
            )
        annotation = model.model_fields[part].annotation
        if depth < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                raise LangadaptError(f"sweep key `{key}`: {part!r} is a value, not a section", where=where,
                                     fix=f"end the path at `{'.'.join(parts[: depth + 1])}`.")
            model = annotation


def _set(data: dict, key: str, value) -> None:
    *sections, leaf = key.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    data[leaf] = value


def _label(value) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def expand(data: dict, where: str = "<config>") -> list[ExperimentConfig]:
    """Turn a config with an optional `sweep:` section into validated run configs.

    Without a sweep this is one run. Every key, list and run config is checked before any
    computation starts.
    """
    data = copy.deepcopy(data)
    sweep = data.pop("sweep", None)
    if sweep is None:
        return [parse_config(data, where)]
    if not isinstance(sweep, dict) or not set(sweep) <= {"grid", "zip"} or not sweep:
        raise LangadaptError("`sweep` must be a mapping with `grid` and/or `zip`", where=where,
                             fix="write `sweep: {grid: {adapt.lr: [0.001, 0.003]}}`.")
    grid, zipped = sweep.get("grid") or {}, sweep.get("zip") or {}
    for key, values in {**grid, **zipped}.items():
        _check_path(key, where)
        if not isinstance(values, list) or not values:
            raise LangadaptError(f"sweep key `{key}` needs a non-empty list of values, got {values!r}",
                                 where=where, fix=f"write `{key}: [value1, value2]`.")
    both = set(grid) & set(zipped)
    if both:
        raise LangadaptError(f"sweep key(s) {', '.join(sorted(both))} appear in both `grid` and `zip`",
                             where=where, fix="put each key in one of them.")
    lengths = {key: len(values) for key, values in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise LangadaptError(f"`sweep.zip` lists differ in length: {lengths}", where=where,
                             fix="give every zipped key the same number of values.")

    experiment = data.get("name", "experiment")
    output_dir = data.get("output_dir", "runs")
    zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)] or [{}]
    runs = []
    for grid_row in itertools.product(*grid.values()):
        for zip_row in zip_rows:
            values = {**dict(zip(grid, grid_row, strict=True)), **zip_row}
            run = copy.deepcopy(data)
            for key, value in values.items():
                _set(run, key, value)
            run["name"] = "-".join(f"{key.split('.')[-1]}={_label(v)}" for key, v in values.items())
            run["output_dir"] = f"{output_dir}/{experiment}"
            runs.append(parse_config(run, f"{where} (sweep run {run['name']})"))
    names = [cfg.name for cfg in runs]
    if len(set(names)) != len(names):
        raise LangadaptError("two sweep runs got the same name", where=where,
                             fix="the swept values must differ; remove repeated values from the lists.")
    return runs


def load_runs(path: Path) -> list[ExperimentConfig]:
    """All runs an experiment YAML declares (one unless it has a `sweep:` section)."""
    return expand(read_yaml(path), str(path))
