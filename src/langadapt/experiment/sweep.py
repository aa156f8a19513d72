"""Sweeps: one YAML declares a grid of runs, each with a readable name from what varies, and
runs that take another run's output as an input.

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
runs `mix=mono` and `mix=code`. Runs land in `<output_dir>/<name>/<run name>/`. Every kind of
YAML sweeps (`langadapt.kinds`); `langadapt run` computes experiments and training jobs.

A study (pretrain once, then fine-tune each pretrained model per seed) names its runs under
`runs:`; the keys beside it are shared by all of them, and each may sweep on its own:

    name: transfer
    model: {arch: gpt2, n_layer: 2}        # shared
    runs:
      lm: {data: {...}, train: {steps: 300}}
      sib:
        init_from: ${runs.lm}/final        # a sibling's run folder: `lm` is computed first
        task: {...}
        sweep: {grid: {seed: [0, 1, 2]}}

A run that names `${runs.X}` gets one run per run of X (crossed with its own sweep), paired on
the swept keys they share: sweep `seed` in both and seed 1 fine-tunes the seed-1 model. Runs are
named `<run>-<swept values>` and carry the values of the runs they read.
"""

from __future__ import annotations

import copy
import itertools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from langadapt.config import parse_config
from langadapt.config_file import read_yaml
from langadapt.errors import LangadaptError
from langadapt.kinds import schema_of
from langadapt.paths import pending
from langadapt.schema import Section

SIBLING = re.compile(r"\$\{runs\.([^}]*)\}")  # ${runs.NAME}: the folder of a sibling run
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


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
    needs: tuple[Path, ...] = ()  # folders of the sibling runs it reads, computed before it
    group: str = ""  # its name under `runs:`, where the config has that section

    @property
    def columns(self) -> dict[str, str]:
        """What tells it apart in the comparison: its name under `runs:`, then its swept values."""
        return {"group": self.group, **self.values} if self.group else self.values

    @property
    def folder(self) -> Path:
        return Path(self.config.output_dir) / self.config.name

    def ready(self) -> Section:
        """The config, validated again once the runs it reads exist (their files were not checked
        before: they were not written yet)."""
        if not self.needs:
            return self.config
        return parse_config(self.config.model_dump(mode="json"), f"sweep run {self.config.name}",
                            type(self.config))


def _named(key: str, values, where: str) -> list[tuple[str, object]]:
    """(label, value) pairs: a mapping names its values, a list is labelled by the values themselves."""
    if isinstance(values, dict) and values:
        return [(_label(label), value) for label, value in values.items()]
    if isinstance(values, list) and values:
        return [(_label(value), value) for value in values]
    raise LangadaptError(f"sweep key `{key}` needs a non-empty list of values, got {values!r}",
                         where=where, fix=f"write `{key}: [value1, value2]`.")


def _grid(data: dict, where: str, schema: type[Section]) -> list[tuple[dict, dict[str, str]]]:
    """The unvalidated run dicts of `data`'s `sweep:` (one without it) with their value labels;
    every key and list is checked first."""
    data = copy.deepcopy(data)
    sweep = data.pop("sweep", None)
    if sweep is None:
        return [(data, {})]
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
    zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*(options[k] for k in zipped), strict=True)]
    runs = []
    for grid_row in itertools.product(*(options[k] for k in grid)):
        for zip_row in zip_rows or [{}]:
            chosen = {**dict(zip(grid, grid_row, strict=True)), **zip_row}
            run = copy.deepcopy(data)
            for key in sorted(chosen, key=lambda k: k.count(".")):  # a whole section before keys inside it
                _set(run, key, chosen[key][1], where)
            runs.append((run, {short[key]: label for key, (label, _) in chosen.items()}))
    return runs


def _siblings(value) -> set[str]:
    """The sibling run names `${runs.NAME}` in a config's strings."""
    if isinstance(value, dict):
        return set().union(*map(_siblings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_siblings, value)) if value else set()
    return set(SIBLING.findall(value)) if isinstance(value, str) else set()


def _substitute(value, folders: dict[str, str]):
    if isinstance(value, dict):
        return {key: _substitute(item, folders) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, folders) for item in value]
    return SIBLING.sub(lambda match: folders[match.group(1)], value) if isinstance(value, str) else value


def _merged(shared: dict, own: dict) -> dict:
    """`own` over `shared`, section by section (a run overrides single keys of a shared section)."""
    out = copy.deepcopy(shared)
    for key, value in own.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def _in_order(runs: dict, where: str) -> list[str]:
    """The names under `runs:`, each after the runs it reads; an unknown name or a cycle is an error."""
    needs = {}
    for name, spec in runs.items():
        if not isinstance(name, str) or not RUN_NAME.match(name) or not isinstance(spec, dict):
            raise LangadaptError(f"`runs.{name}` must be a name (letters, digits, _ and -) mapping to the run's "
                                 "own keys", where=where, fix=f"write `runs: {{{name}: {{train: {{steps: 100}}}}}}`.")
        needs[name] = _siblings(spec)
        unknown = sorted(needs[name] - set(runs))
        if unknown:
            raise LangadaptError(f"`runs.{name}` reads ${{runs.{unknown[0]}}}, but there is no run {unknown[0]!r}",
                                 where=where, fix=f"name one of the runs: {', '.join(runs)}.")
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " → ".join([*visiting[visiting.index(name):], name])
            raise LangadaptError(f"the runs read each other in a cycle: {cycle}", where=where,
                                 fix="a run can read only runs that do not read it back; remove one `${runs.…}`.")
        visiting.append(name)
        for other in sorted(needs[name]):
            visit(other)
        visiting.pop()
        order.append(name)

    for name in runs:
        visit(name)
    return order


def _paired(labels: list[dict[str, str]]) -> dict[str, str] | None:
    """The swept values of runs combined, or None where two give one key different values."""
    values: dict[str, str] = {}
    for items in labels:
        for key, label in items.items():
            if values.setdefault(key, label) != label:
                return None
    return values


def _validated(run: dict, values: dict[str, str], needs: tuple[Path, ...], where: str,
               schema: type[Section], group: str = "") -> SweepRun:
    with pending(needs):  # what the sibling runs will write is checked when they have written it
        return SweepRun(parse_config(run, f"{where} (sweep run {run['name']})", schema), values, needs, group)


def _place(run: dict, name: str, study: str, output_dir: str, schema: type[Section]) -> dict:
    run["name"], run["output_dir"] = name, f"{output_dir}/{study}"
    if schema.kind == "experiment":  # experiments beside each other share their reusable stages
        run.setdefault("stage_cache", f"{output_dir}/.stages")
    return run


def _unique(runs: list[SweepRun], where: str) -> list[SweepRun]:
    names = [r.config.name for r in runs]
    if len(set(names)) != len(names):
        raise LangadaptError("two sweep runs got the same name", where=where,
                             fix="the swept values must differ; remove repeated values from the lists.")
    return runs


def expand_runs(data: dict, where: str = "<config>") -> list[SweepRun]:
    """Turn a config with an optional `sweep:` or `runs:` section into validated runs, each after
    the runs it reads.

    Without either this is one run. Every key, list and run config is checked before any
    computation starts.
    """
    data = copy.deepcopy(data)
    if "runs" in data:
        return _study(data, where)
    if found := _siblings(data):
        raise LangadaptError(f"the config reads ${{runs.{sorted(found)[0]}}}, but it has no `runs:` section",
                             where=where, fix="name the runs under `runs:` (docs/experiments.md), or give a path.")
    schema = schema_of(data, where)
    grid = _grid(data, where, schema)
    if len(grid) == 1 and not grid[0][1]:
        return [SweepRun(parse_config(grid[0][0], where, schema))]
    experiment, output_dir = data.get("name", "experiment"), data.get("output_dir", "runs")
    runs = [_validated(_place(run, "-".join(f"{k}={v}" for k, v in values.items()), experiment, output_dir, schema),
                       values, (), where, schema) for run, values in grid]
    return _unique(runs, where)


def _study(data: dict, where: str) -> list[SweepRun]:
    """The runs of a `runs:` section: each named run over the shared keys, swept, one per run of
    each sibling it reads (paired on the swept keys they share)."""
    named = data.pop("runs")
    if not isinstance(named, dict) or not named:
        raise LangadaptError("`runs` must map run names to their own keys", where=where,
                             fix="write `runs: {lm: {data: ...}, finetune: {init_from: ${runs.lm}/final}}`.")
    if "sweep" in data:
        raise LangadaptError("with `runs:`, a top-level `sweep:` is ambiguous", where=where,
                             fix="move it into the runs it varies (`runs.NAME.sweep`).")
    if "name" not in data:
        raise LangadaptError("a config with `runs:` needs a top-level `name` (the study's folder)", where=where,
                             fix="add `name: my-study`.")
    study, output_dir = data.pop("name"), data.pop("output_dir", "runs")
    done: dict[str, list[SweepRun]] = {}
    for name in _in_order(named, where):
        spec = _merged(data, named[name])
        schema = schema_of(spec, f"{where} (runs.{name})")
        reads = sorted(_siblings(spec))
        made = 0
        for run, own in _grid(spec, f"{where} (runs.{name})", schema):
            for combo in itertools.product(*(done[other] for other in reads)):
                values = _paired([*(sibling.values for sibling in combo), own])
                if values is None:
                    continue
                folders = {other: str(sibling.folder) for other, sibling in zip(reads, combo, strict=True)}
                label = "-".join(f"{k}={v}" for k, v in values.items())
                placed = _place(_substitute(run, folders), f"{name}-{label}" if label else name, study,
                                output_dir, schema)
                done.setdefault(name, []).append(
                    _validated(placed, values, tuple(s.folder for s in combo), where, schema, name))
                made += 1
        if not made:
            raise LangadaptError(f"`runs.{name}` pairs with no run of {', '.join(reads)}: they sweep a key of the "
                                 "same name without a value in common", where=where,
                                 fix="give the shared key the same values in both, or a different `sweep.labels` "
                                     "name in one.")
    return _unique([run for name in done for run in done[name]], where)


def expand(data: dict, where: str = "<config>") -> list[Section]:
    """The run configs a config declares (see `expand_runs`)."""
    return [run.config for run in expand_runs(data, where)]


def load_runs(path: Path) -> list[SweepRun]:
    """All runs a YAML declares (one unless it has a `sweep:` section)."""
    return expand_runs(read_yaml(path), str(path))
