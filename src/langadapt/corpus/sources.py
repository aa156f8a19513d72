"""Readers that turn raw sources into `Document`s.

The built-in sample corpus is real human translation: the gettext catalogs that Django
installs (core and `django.contrib` apps, ~100 locales). Entries are keyed by catalog and
msgid, so the same id names the same sentence in every language: held-out text is parallel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from langadapt.corpus.document import Document, LanguageFilter, read_documents, read_lines, read_utf8
from langadapt.errors import LangadaptError
from langadapt.languages import normalise

SOURCE_LANGUAGE_LOCALE = "en"  # msgids are English; the `en` catalogs list every msgid.


def _require_sample_extra():
    try:
        import django
        import polib
    except ImportError as err:
        raise LangadaptError(
            f"the built-in sample corpus needs the optional extra 'sample' ({err.name} is not installed)",
            fix="run `pip install 'langadapt[sample]'` (or `make demo`, which installs it).",
        ) from err
    return Path(django.__file__).parent, polib


def sample_locales() -> dict[str, list[Path]]:
    """Map each normalised language code to the locale folders that hold its catalogs.

    Regional variants (`pt_BR`, `en_GB`) are skipped where the base locale exists, because
    ISO 639-3 + script cannot tell them apart.
    """
    django_root, _ = _require_sample_extra()
    folders = sorted(p for p in django_root.glob("**/locale/*") if (p / "LC_MESSAGES").is_dir())
    by_code: dict[str, dict[str, list[Path]]] = {}
    for folder in folders:
        locale = folder.name
        try:
            code = normalise(locale)
        except LangadaptError:
            continue
        by_code.setdefault(code, {}).setdefault(locale, []).append(folder)
    chosen = {}
    for code, locales in by_code.items():
        # Prefer the shortest locale name: `pt` over `pt_BR`, `sr_Latn` is alone for srp_Latn.
        best = min(locales, key=lambda name: (len(name), name))
        chosen[code] = locales[best]
    return dict(sorted(chosen.items()))


def _entry_id(catalog: str, entry) -> str:
    key = f"{catalog}\x00{entry.msgctxt or ''}\x00{entry.msgid}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def read_sample(languages: list[str]) -> Iterator[Document]:
    """Yield translated catalog entries for `languages` (normalised codes).

    Untranslated, fuzzy and obsolete entries are dropped. English comes from the msgids.
    """
    django_root, polib = _require_sample_extra()
    available = sample_locales()
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise LangadaptError(
            f"language(s) {', '.join(missing)} not in the built-in sample corpus",
            fix=f"choose from: {', '.join(available)} (or run `langadapt languages`).",
        )
    for lang in languages:
        for folder in available[lang]:
            for po_path in sorted((folder / "LC_MESSAGES").glob("*.po")):
                catalog = f"{po_path.relative_to(django_root).parent.parent.parent.parent}/{po_path.stem}"
                yield from read_catalog(po_path, catalog, lang, msgids=folder.name == SOURCE_LANGUAGE_LOCALE)


def read_catalog(po_path: Path, catalog: str, lang: str, msgids: bool = False) -> Iterator[Document]:
    """Yield the translated entries of one gettext catalog (the msgids themselves if `msgids`)."""
    _, polib = _require_sample_extra()
    for entry in polib.pofile(str(po_path)):
        if entry.obsolete or "fuzzy" in entry.flags:
            continue
        text = entry.msgid if msgids else entry.msgstr or (entry.msgstr_plural or {}).get(0, "")
        if not text.strip():
            continue
        yield Document(id=_entry_id(catalog, entry), text=text, lang=lang,
                       metadata={"source": f"django:{catalog}", "locale": po_path.parent.parent.name})


def read_jsonl_files(paths: list[Path], languages: list[str]) -> Iterator[Document]:
    """Yield documents of `languages` from JSONL files; codes in the files are normalised. The
    documents of other languages are counted and reported (`LanguageFilter`)."""
    chosen = LanguageFilter(languages, ", ".join(map(str, paths)))
    yield from chosen(_normalised(doc) for path in paths for doc in read_documents(path))
    chosen.check()


def _normalised(doc: Document) -> Document:
    doc.lang = normalise(doc.lang)
    return doc


def read_text_corpus(texts: dict[str, list[Path]], languages: list[str]) -> Iterator[Document]:
    """Yield one document per non-empty line of each language's text files (`.txt`, or `.tsv`
    with a `text` column). The id is `<file position>:<line>`, so line-parallel files (NTREX,
    FLORES) give the same id to a sentence and its translations: held-out text stays parallel."""
    missing = [lang for lang in languages if lang not in texts]
    if missing:
        raise LangadaptError(f"corpus.texts has no files for {', '.join(missing)}",
                             fix=f"add `{missing[0]}: [path/to/text.txt]` under corpus.texts.")
    for lang in languages:
        for position, path in enumerate(texts[lang]):
            for number, line in enumerate(read_lines(path, keep_empty=True)):
                if line:
                    yield Document(id=f"{position}:{number}", text=line, lang=lang,
                                   metadata={"source": Path(path).name})


def code_files(patterns: list[str]) -> list[Path]:
    """The files matching glob patterns (`src/**/*.py`), sorted; an error if a pattern matches none."""
    found = []
    for pattern in patterns:
        matches = sorted(p for p in Path().glob(pattern) if p.is_file())
        if not matches:
            raise LangadaptError(f"the code pattern {pattern!r} matches no file (from {Path.cwd()})",
                                 fix="give a glob relative to the working directory, e.g. 'src/**/*.py'.")
        found += matches
    return found


def read_code(patterns: list[str]) -> list[Document]:
    """One document per source-code file: code mixed into continual pretraining is kept whole."""
    docs = []
    for path in code_files(patterns):
        text = read_utf8(path).strip()
        if text:
            docs.append(Document(id=str(path), text=text, lang="code", metadata={"source": str(path)}))
    return docs


def sample_input_files(languages: list[str]) -> list[Path]:
    """The catalog files that `read_sample` reads, for hashing into the run manifest."""
    available = sample_locales()
    return sorted(
        po for lang in languages if lang in available
        for folder in available[lang] for po in (folder / "LC_MESSAGES").glob("*.po")
    )
