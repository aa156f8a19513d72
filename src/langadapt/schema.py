"""What every config section shares: the base class (unknown keys are errors; `~` and `$NAME`
expanded in path keys, each checked against its kind in paths.py), and one language-code type,
normalised to FLORES-style `xxx_Scrp`. `path_fields` lists the path fields of a schema, so a test
can run every case on every key and a new `Path` key without a kind is caught."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator, model_validator

from langadapt.errors import LangadaptError
from langadapt.languages import normalise
from langadapt.paths import ByFormat, PathKind, PathProblem
from langadapt.public_data import fetch_hint


def normalise_code(code: str) -> str:
    """A language code in its canonical form (`sw` → `swh_Latn`), or a ValueError saying the fix."""
    try:
        return normalise(code)
    except LangadaptError as err:
        raise ValueError(f"{err.what}; {err.fix}") from err


def direction_pair(direction: str) -> tuple[str, str]:
    """A translation direction `src-tgt` as its two canonical codes, or a ValueError saying the form."""
    parts = direction.split("-", 1)
    if len(parts) != 2:
        raise ValueError(f"direction {direction!r} is not `source-target`, e.g. eng_Latn-swh_Latn")
    return normalise_code(parts[0]), normalise_code(parts[1])


LanguageCode = Annotated[str, BeforeValidator(lambda code: normalise_code(code) if isinstance(code, str) else code)]

Value = TypeVar("Value")
# A mapping keyed by language (`texts: {sw: [...]}`): keys normalised before the values are checked,
# so an error about a value names the key as the run will use it (`texts.swh_Latn.0`).
ByLanguage = Annotated[dict[str, Value], BeforeValidator(
    lambda value: {normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _expand_path_keys(cls, value, info: ValidationInfo):
        """`~` and `$NAME` in every path key, as a shell would, so `output_dir: ~/runs` is not a
        literal `./~` folder."""
        return expand_path_value(value) if info.field_name in path_keys(cls) else value

    @model_validator(mode="after")
    def _paths_fit_format(self):
        check_by_format(self)  # path keys whose kind depends on `format` (paths.ByFormat)
        return self



def path_kind(field_info) -> PathKind | ByFormat | None:
    """The path kind a pydantic field is annotated with (inside list/dict/Optional too), if any."""
    found = [m for m in field_info.metadata if isinstance(m, PathKind | ByFormat)]
    stack = [field_info.annotation]
    while stack and not found:
        annotation = stack.pop()
        found = [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, PathKind | ByFormat)]
        stack.extend(get_args(annotation))
    return found[0] if found else None


def mentions_path(annotation: Any) -> bool:
    """Whether a field's type holds a `Path` anywhere (a key that needs a kind)."""
    return annotation is Path or any(mentions_path(arg) for arg in get_args(annotation))


def path_fields(schema: type[BaseModel]) -> dict[str, PathKind | ByFormat | None]:
    """Every path-typed field of `schema` and its kind (None: a Path key that has none, a bug)."""
    return {name: path_kind(info) for name, info in schema.model_fields.items()
            if mentions_path(info.annotation) or path_kind(info) is not None}


def check_by_format(section: BaseModel) -> None:
    """Check the `ByFormat` path fields of `section` against the kind its `format` asks for."""
    for name, info in type(section).model_fields.items():
        kind = path_kind(info)
        if not isinstance(kind, ByFormat):
            continue
        chosen = kind.kinds.get(str(getattr(section, kind.by)))
        value = getattr(section, name)
        problems = []
        for index, item in enumerate(value if isinstance(value, list) else [value] if value is not None else []):
            if chosen is None:
                continue
            try:
                chosen.check(Path(item))
            except PathProblem as err:
                key = f"{name}.{index}" if isinstance(value, list) else name
                problems.append((f"`{key}` ({kind.by} {getattr(section, kind.by)}): {err.what}", err))
                if not err.fetch:  # other problems: the first is enough; missing data: list every file
                    break
        if problems:
            fetch = [pair for _, err in problems for pair in err.fetch]
            fix = problems[-1][1].fix if not problems[-1][1].fetch else fetch_hint(fetch)
            raise PathProblem("; ".join(what for what, _ in problems), fix, fetch)


@cache
def path_keys(schema: type[BaseModel]) -> frozenset[str]:
    return frozenset(path_fields(schema))



UNSET = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def expand_path_value(value):
    """A path (or list / mapping of them) with `~` and environment variables expanded; an unset
    variable is an error rather than a folder named after it."""
    if isinstance(value, list):
        return [expand_path_value(item) for item in value]
    if isinstance(value, dict):
        return {key: expand_path_value(item) for key, item in value.items()}
    if not isinstance(value, str | Path):
        return value
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = UNSET.search(expanded)
    if unset:
        name = unset.group(1).strip("{}")
        raise ValueError(f"the environment variable {name} is not set; set it (`export {name}=...`) or write the "
                         "path out")
    return type(value)(expanded) if isinstance(value, Path) else expanded


