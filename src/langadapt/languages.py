"""Language codes: everything inside langadapt is ISO 639-3 plus ISO 15924 script, e.g. `hsb_Latn`.

Catalogs and datasets use many spellings (`pt_BR`, `zh-Hans`, `sr@latin`, `cs`); normalising
them once at the edge means every later stage can compare codes as plain strings. A language-ID
label meets a configured code through `match`, which also counts a macrolanguage and its
individual languages as one (py3langid says `sw`, i.e. `swa_Latn`; FineWeb2 names Swahili `swh_Latn`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import cache

import langcodes

from langadapt.errors import LangadaptError

log = logging.getLogger("langadapt")
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
    if not language.is_valid() or _private(alpha3, "qaa", "qtz") or _private(language.script, "Qaaa", "Qabx"):
        raise LangadaptError(
            f"unknown language code {code!r}: {_unknown_part(language)} is not in ISO 639-3 / ISO 15924",
            fix="use an ISO 639-3 code with an ISO 15924 script, such as 'hsb_Latn' or 'ces_Latn' "
                "(codes qaa-qtz and scripts Qaaa-Qabx are reserved for private use).",
        )
    script = language.script or language.maximize().script
    if not script:
        raise LangadaptError(
            f"cannot tell the script of language code {code!r}",
            fix="add the script explicitly, such as 'srp_Cyrl' or 'srp_Latn'.",
        )
    return f"{alpha3}_{script}"


def _private(subtag: str | None, first: str, last: str) -> bool:
    return subtag is not None and len(subtag) == len(first) and first <= subtag <= last


def _unknown_part(language: langcodes.Language) -> str:
    script = language.script
    if script and not langcodes.Language.get(f"und-{script}").is_valid() or _private(script, "Qaaa", "Qabx"):
        return f"the script {script!r}"
    return f"the language {language.language!r}"


def is_canonical(code: str) -> bool:
    return bool(_CANONICAL.match(code))


@cache
def _macrolanguages() -> dict[str, str]:
    """ISO 639-3 individual language → its macrolanguage (`swh` → `swa`), from the IANA subtag
    registry that langcodes ships (the `Macrolanguage:` fields, which follow ISO 639-3's table)."""
    from langcodes.data_dicts import MACROLANGUAGES

    return {langcodes.Language.get(member).to_alpha3(): langcodes.Language.get(macro).to_alpha3()
            for member, macro in MACROLANGUAGES.items()}


def macrolanguage(code: str) -> str | None:
    """The macrolanguage of `xxx_Scrp` as `yyy_Scrp` (`swh_Latn` → `swa_Latn`), or None."""
    alpha3, _, script = code.partition("_")
    macro = _macrolanguages().get(alpha3)
    return f"{macro}_{script}" if macro else None


def _same_script(a: str, b: str) -> bool:
    """Equal ISO 15924 scripts; `Hani` (Han) covers both of its variants `Hans` and `Hant`."""
    return a == b or {a, b} in ({"Hani", "Hans"}, {"Hani", "Hant"})


def equivalent(a: str, b: str) -> bool:
    """Whether two `xxx_Scrp` codes name the same language: equal, or a macrolanguage and one of its
    individual languages (`swa_Latn` and `swh_Latn`) in the same script. Two individual languages of
    one macrolanguage (`pes`, `prs`) stay different."""
    (la, _, sa), (lb, _, sb) = a.partition("_"), b.partition("_")
    if not _same_script(sa, sb):
        return False
    macros = _macrolanguages()
    return la == lb or macros.get(la) == lb or macros.get(lb) == la


def match(label: str, wanted: Iterable[str]) -> str | None:
    """The code in `wanted` that a language-ID `label` stands for: itself, else a macrolanguage
    equivalent (logged once per pair, naming both codes); None if it stands for none of them."""
    wanted = list(wanted)
    if label in wanted:
        return label
    found = next((code for code in wanted if equivalent(label, code)), None)
    if found is not None:
        _warn_equivalent(label, found)
    return found


@cache
def _warn_equivalent(label: str, code: str) -> None:
    said, configured = label.split("_")[0], code.split("_")[0]
    why = ("the same language" if said == configured else
           f"{label} is the macrolanguage of {code}" if _macrolanguages().get(configured) == said else
           f"{code} is the macrolanguage of {label}")
    log.warning("language ID says %s, counted as the configured %s (%s)", label, code, why)


@cache
def parse_label(label: str) -> str:
    """A language-ID model's label as `xxx_Scrp`: GlotLID / fastText labels (`__label__swh_Latn`) that
    are already ISO 639-3 + script are taken exactly as written (langcodes would rewrite some, e.g.
    `prs` to `fas`); two-letter labels (`sw`, `__label__de`) are normalised; a label langcodes cannot
    read stays as it is."""
    label = label.removeprefix("__label__")
    if is_canonical(label):
        return label
    try:
        return normalise(label)
    except LangadaptError:
        return label
