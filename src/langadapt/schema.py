"""What every config section shares: the base class (unknown keys are errors; `~` and `$NAME`
expanded in path keys), and one language-code type, normalised to FLORES-style `xxx_Scrp`."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator, model_validator

from langadapt.errors import LangadaptError
from langadapt.languages import normalise
from langadapt.paths import check_by_format, path_fields


def normalise_code(code: str) -> str:
    """A language code in its canonical form (`sw` → `swh_Latn`), or a ValueError saying the fix."""
    try:
        return normalise(code)
    except LangadaptError as err:
        raise ValueError(f"{err.what}; {err.fix}") from err


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


