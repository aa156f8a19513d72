"""Clean text removed by curation, before and after issue 13, on the corpus of `tests/test_clean_text.py`.

    PYTHONPATH=src python benchmarks/curate_clean.py [--languages swh_Latn zul_Latn ...]

Clean web-like pages (UDHR paragraphs, SIB-200 dev/test sentences) of 8 languages in 6 scripts,
junk built from the same text, and pages of 8 other languages, curated by `langadapt curate`
(language ID and quality filters; dedup off) under three settings:

- **published**: FineWeb2's published thresholds and stopwords, with the C4 filter (the old default);
- **published + derived stopwords**: the same thresholds, stopwords from reference text, no C4 (FineWeb2's
  own filter list);
- **derived**: thresholds derived from NTREX-128 + SIB-200 train reference text at pass rate 0.99.

Prints the share of clean pages removed per language, and of junk and other-language pages
removed overall.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SHARED_DATA  # noqa: E402  (the test's corpus builder, not a copy of it)
from test_clean_text import LANGS, _curate, _removed_share  # noqa: E402

SETTINGS = {
    "published": {"thresholds": {"prefer": "published", "stopwords": "published"},
                  "filters": {"enabled": ["gopher_repetition", "fineweb_quality", "gopher_quality", "c4"]}},
    "published + derived stopwords": {"thresholds": {"prefer": "published", "stopwords": "derived"}},
    "derived": {},
}


def main() -> None:
    import logging

    from loguru import logger

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", nargs="+", default=list(LANGS), choices=list(LANGS))
    args = parser.parse_args()
    logger.remove()
    logging.disable(logging.WARNING)
    results, seconds = {}, {}
    for name, settings in SETTINGS.items():
        started = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            _, kind, kept = _curate(Path(tmp), lambda *parts: SHARED_DATA.joinpath(*parts), args.languages,
                                    **settings)
        seconds[name] = time.process_time() - started
        results[name] = {lang: _removed_share(kind, kept, "clean", lang) for lang in args.languages}
        results[name].update(all=_removed_share(kind, kept, "clean"), junk=_removed_share(kind, kept, "junk"),
                             other=_removed_share(kind, kept, "other"))
        pages = sum(1 for k, _ in kind.values() if k == "clean")
    print(f"# Clean text removed by curation — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, datatrove {version('datatrove')}, "
          f"py3langid {version('py3langid')}, spacy {version('spacy')}; {pages} clean pages, language ID + "
          f"quality filters; CPU s per setting: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + "\n")
    names = list(SETTINGS)
    print("| removed | " + " | ".join(names) + " |\n|---" * 1 + "|---" * len(names) + "|")
    for row in [*args.languages, "all"]:
        label = f"clean {row}" if row != "all" else "**clean, all languages**"
        print(f"| {label} | " + " | ".join(f"{results[n][row]:.1%}" for n in names) + " |")
    for row, label in (("junk", "junk and boilerplate"), ("other", "other-language pages")):
        print(f"| {label} | " + " | ".join(f"{results[n][row]:.1%}" for n in names) + " |")


if __name__ == "__main__":
    main()
