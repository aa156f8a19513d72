"""Reading a config file: YAML that refuses a key given twice, `${NAME}` variables from the
environment, and validation errors explained key by key with the fix."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError

from langadapt.errors import LangadaptError
from langadapt.paths import PathProblem
from langadapt.public_data import DATA_ENV, data_home, fetch_hint


def validate(data: dict, source: str, schema: type[BaseModel]) -> BaseModel:
    """`data` as a `schema`, or a LangadaptError that names `source`, each bad key and its fix. A
    top-level YAML's `kind:` must be its schema's own (a class variable of the experiment, training
    job and curation schemas, not a field)."""
    data = dict(data or {})
    kind = schema.kind if "kind" in schema.__class_vars__ else None
    declared = data.pop("kind", kind) if kind is not None else kind
    if declared != kind:
        raise LangadaptError(f"the config declares `kind: {declared}`, but a `{kind}` config is read here",
                             where=source, fix=f"pass it to the command for {declared} YAMLs, or write "
                                               f"`kind: {kind}` if it is one.")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise explain(err, source, schema) from None


def explain(err: ValidationError, source: str, model: type[BaseModel]) -> LangadaptError:
    lines, fixes, fetches, explained = [], [], [], 0
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        cause = problem.get("ctx", {}).get("error")
        if isinstance(cause, PathProblem):  # a path key: its own fix says what to give instead
            lines.append(f"`{key}` = {str(problem.get('input'))!r}: {cause.what}")
            explained += 1
            if cause.fetch:  # data-home files: one `langadapt data get` per set, below
                fetches += cause.fetch
            else:
                fixes.append(cause.fix)
        elif problem["type"] == "extra_forbidden":
            known = _known_keys(model, problem["loc"][:-1])
            close = difflib.get_close_matches(str(problem["loc"][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            lines.append(f"unknown key `{key}`; {hint}known keys here: {', '.join(known)}")
        elif problem["type"] == "missing":
            lines.append(f"`{key}` is required")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"`{key}` = {problem.get('input')!r}: {message}")
    if fetches:
        fixes.insert(0, fetch_hint(fetches))
    if explained < len(lines):
        fixes.append("correct the key(s) above; `examples/quickstart.yaml` shows every key with its default.")
    return LangadaptError("invalid config: " + "; ".join(lines), where=source, fix=" ".join(fixes))


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        if isinstance(part, int):  # an item of a list of sections (`canaries.2`): its section's keys
            continue
        field = model.model_fields.get(str(part))
        sections = [t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)
                    and issubclass(t, BaseModel)] if field is not None else []  # `Section | None` too
        if not sections:
            return []
        model = sections[0]
    return list(model.model_fields)


class DuplicateKey(Exception):
    def __init__(self, key: str, first: int, second: int):
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so an edit above a forgotten duplicate would have no effect)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise DuplicateKey(str(key), seen[key], key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the base loader says so
                continue
        return super().construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def read_yaml(path: Path) -> dict:
    """Read an experiment YAML into a dict; syntax and encoding errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LangadaptError(f"config file not found: {path}", fix="pass the path of an experiment YAML.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # noqa: S506 (a safe loader)
    except DuplicateKey as err:
        raise LangadaptError(f"the key `{err.key}` is given twice in one mapping, on lines {err.first} and "
                             f"{err.second}", where=str(path),
                             fix="keep one of the two (YAML would silently use the last).") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise LangadaptError(f"not valid YAML ({getattr(err, 'problem', err)})", where=where,
                             fix="check indentation and quoting near that line.") from None
    except UnicodeDecodeError:
        raise LangadaptError("the config is not UTF-8 text", where=str(path), fix="save it as UTF-8.") from None
    if not data:
        raise LangadaptError("the config file is empty", where=str(path),
                             fix="write its sections (examples/quickstart.yaml shows every key).")
    if not isinstance(data, dict):
        raise LangadaptError("the config must be a mapping of sections", where=str(path),
                             fix="start from examples/quickstart.yaml.")
    return _expand_variables(data, str(path))


VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_variables(value, where: str):
    """Replace `${NAME}` and `${NAME:-default}` in string values by environment variables, so one
    example YAML serves every machine: `LANGADAPT_DATA=/data langadapt run examples/mixing.yaml`.
    `${LANGADAPT_DATA}` unset means the data home, where `langadapt data get` installs the sets."""
    if isinstance(value, dict):
        return {key: _expand_variables(item, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_variables(item, where) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if name == DATA_ENV and default is None:  # the data home `langadapt data get` fills (~/.cache/langadapt/data)
            return str(data_home())
        if default is None:
            raise LangadaptError(f"the config uses ${{{name}}} but that environment variable is not set",
                                 where=where, fix=f"set it (`export {name}=...`) or write ${{{name}:-default}}.")
        return default

    return VARIABLE.sub(substitute, value)


