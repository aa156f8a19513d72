"""Language codes: everything inside langadapt is ISO 639-3 plus ISO 15924 script, e.g. `hsb_Latn`.

Catalogs and datasets use many spellings (`pt_BR`, `zh-Hans`, `sr@latin`, `cs`); normalising
them once at the edge means every later stage can compare codes as plain strings.
"""

from __future__ import annotations

import re

import langcodes

from langadapt.errors import LangadaptError

_CANONICAL = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def normalise(code: str) -> str:
    """Return `xxx_Scrp` for a BCP-47, POSIX-locale or ISO 639 code; raise on unknown codes."""
    tag = code.strip().replace("@latin", "-Latn").replace("@cyrillic", "-Cyrl").replace("_", "-")
    try:
        language = langcodes.Language.get(tag)
        alpha3 = language.to_alpha3()
    except (LookupError, ValueError) as err:
        raise LangadaptError(
            f"unknown language code {code!r}",
            fix="use an ISO 639-3 code with a script, such as 'hsb_Latn' or 'ces_Latn'.",
        ) from err
    script = language.script or language.maximize().script
    if not script:
        raise LangadaptError(
            f"cannot tell the script of language code {code!r}",
            fix="add the script explicitly, such as 'srp_Cyrl' or 'srp_Latn'.",
        )
    return f"{alpha3}_{script}"


def is_canonical(code: str) -> bool:
    return bool(_CANONICAL.match(code))
