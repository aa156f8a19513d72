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

    PYTHONPATH=src python benchmarks/curate_clean.py --cross-domain [--languages ...] [--lines 1000]

Thresholds that hold on text from other domains (issue 28): per language, thresholds derived from
each clean source at hand (NTREX-128 news, FLORES sentences of SIB-200, UDHR paragraphs, Tatoeba
dialogue; each a reference text of consecutive lines, ≤ `--lines` of it) are measured on the
documents of every source (`check.cross_domain`: consecutive lines grouped to ≥ 50 words, as
reference text is). Prints the matrix of clean text the quality filters remove (rows: derived from,
columns: measured on), the rules behind the largest off-diagonal cells, language-ID recall per
source, and the share of junk (built from the language's own text) and of other-language pages that
language ID and the filters remove under each derivation.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SHARED_DATA  # noqa: E402  (the test's corpus builder, not a copy of it)
from test_clean_text import LANGS, OTHER, _curate, _junk, _pages, _removed_share, _sib, _udhr  # noqa: E402

# language → (NTREX-128 file code, UDHR file code, Tatoeba code or None): the 7 languages of issue 28 and more
CROSS = {"swh_Latn": ("swa", "swh", "swh"), "zul_Latn": ("zul", "zul", None), "eus_Latn": ("eus", "eus", "eus"),
         "ukr_Cyrl": ("ukr", "ukr", "ukr"), "guj_Gujr": ("guj", "guj", None), "yor_Latn": ("yor", "yor", None),
         "amh_Ethi": ("amh", "amh", "amh"), "hin_Deva": ("hin", "hin", "hin"),
         "ell_Grek": ("ell", "ell_monotonic", "ell"), "xho_Latn": ("xho", "xho", "xho")}

SETTINGS = {
    "published": {"thresholds": {"prefer": "published", "stopwords": "published"},
                  "filters": {"enabled": ["gopher_repetition", "fineweb_quality", "gopher_quality", "c4"]}},
    "published + derived stopwords": {"thresholds": {"prefer": "published", "stopwords": "derived"}},
    "derived": {},
}


def sources(lang: str, lines: int) -> dict[str, list[str]]:
    """The clean sources at hand for `lang` (≤ `lines` lines each), by name."""
    ntrex, udhr, tatoeba = CROSS[lang]
    found = {
        "ntrex": (SHARED_DATA / "ntrex128" / f"newstest2019-ref.{ntrex}.txt").read_text("utf-8").splitlines(),
        "flores": _sib(SHARED_DATA.joinpath, lang, "train", "dev", "test"),
        "udhr": _udhr(SHARED_DATA.joinpath, udhr),
    }
    if tatoeba:
        found["tatoeba"] = (SHARED_DATA / "tatoeba" / f"tatoeba.{tatoeba}-eng.{tatoeba}").read_text("utf-8").split("\n")
    return {name: [line for line in text if line.strip()][:lines] for name, text in found.items()}


def cross_domain(languages: list[str], lines: int, margin: float, cutoffs: dict[str, float]) -> None:
    """The matrix of issue 28 (see the module docstring)."""
    from langadapt.corpus.check import QUALITY, cross_domain, pipeline_removes, statistic
    from langadapt.corpus.config import CurationConfig
    from langadapt.corpus.lid import Py3LangId

    started = time.process_time()
    cfg = CurationConfig.model_validate({"languages": languages, "inputs": [{"format": "jsonl", "path": __file__}],
                                         "thresholds": {"margin": margin}, "lid": {"language_score": cutoffs}})
    options, lid, rng = cfg.filters.model_dump(), Py3LangId(), random.Random(13)
    matrices, derived, junk, other = {}, defaultdict(dict), {}, []
    for lang in languages:
        matrix = cross_domain(lang, sources(lang, lines), cfg, lid)
        matrices[lang] = {origin: row for origin, (_, row) in matrix.items()}
        for origin, (th, _) in matrix.items():
            derived[origin][lang] = th
        junk[lang] = _junk(_sib(SHARED_DATA.joinpath, lang, "dev", "test"), rng)
    for lang in (lang for lang in OTHER if lang not in languages):
        other += _pages(_sib(SHARED_DATA.joinpath, lang, "dev", "test"), rng)[:12]

    def removal(thresholds: dict, texts: list[str]) -> str:
        gone = pipeline_removes(thresholds, texts, cfg)
        return f"{sum(gone) / len(gone):.1%} of {len(gone)}"

    print(f"# Thresholds across domains — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, datatrove {version('datatrove')}, "
          f"py3langid {version('py3langid')}; ≤ {lines} lines per source, pass rate {cfg.thresholds.pass_rate}, "
          f"margin {margin} IQR, language-ID cutoffs set: {cutoffs or 'none'}, "
          f"filters {', '.join(cfg.filters.enabled)}; cells: clean documents (≥ 50 words) the quality filters remove; "
          "rows: derived from, columns: measured on\n")
    names = ["ntrex", "flores", "udhr", "tatoeba"]
    worst: list[tuple[float, str, str, str]] = []
    print("| language | derived from | " + " | ".join(names) + " | worst off-diagonal |\n"
          + "|---" * (len(names) + 3) + "|")
    for lang, matrix in matrices.items():
        for origin, row in matrix.items():
            cells = [f"**{row[n]['shares'][QUALITY]:.1%}**" if n == origin else f"{row[n]['shares'][QUALITY]:.1%}"
                     if n in row else "—" for n in names]
            off = [(row[n]["shares"][QUALITY], lang, origin, n) for n in row if n != origin]
            worst += off
            print(f"| {lang} | {origin} | " + " | ".join(cells) + f" | {max(off)[0]:.1%} |")
    print("\ndocuments (≥ 50 words) per source: " + "; ".join(
        f"{lang} " + ", ".join(f"{n} {report['documents']}" for n, report in next(iter(matrix.values())).items())
        for lang, matrix in matrices.items()))
    over = [cell for cell in worst if cell[0] > 0.05]
    print(f"\noff-diagonal cells: {len(worst)}, over 5 %: {len(over)}; median {sorted(worst)[len(worst) // 2][0]:.1%}, "
          f"max {max(worst)[0]:.1%}\n\nRules behind the off-diagonal cells over 5 %:")
    for share, lang, origin, measured in sorted(over, reverse=True):
        th, row = derived[origin][lang], matrices[lang][origin][measured]
        rules = [f"{stage} {statistic(reason, th, options)} ({n})" for stage, counts in row["reasons"].items()
                 if stage != "language_id" for reason, n in counts.items()]
        print(f"- {lang} {origin} → {measured} {share:.1%} of {row['documents']}: " + "; ".join(rules))
    print("\nLanguage-ID recall on each source, at the cutoff derived from NTREX (labels of documents lost to "
          "another language):")
    for lang, matrix in matrices.items():
        row = matrix["ntrex"]
        cells = [f"{n} {1 - row[n]['shares']['language_id']:.1%}" + (f" (lost to {row[n]['lost_to']})"
                 if row[n]["lost_to"] else "") for n in row]
        print(f"- {lang} (cutoff {derived['ntrex'][lang].language_score}): " + ", ".join(cells))
    print("\n| derived from | junk removed | other-language pages removed |\n|---|---|---|")
    for origin, thresholds in derived.items():
        junk_docs = [text for lang in thresholds for text in junk[lang]]
        print(f"| {origin} ({len(thresholds)} languages) | {removal(thresholds, junk_docs)} | "
              f"{removal(thresholds, other)} |")
    print(f"\nCPU: {time.process_time() - started:.0f} s")


def main() -> None:
    import logging

    from loguru import logger

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", nargs="+")
    parser.add_argument("--cross-domain", action="store_true", help="the matrix of thresholds derived from one "
                        "clean source and measured on the others")
    parser.add_argument("--lines", type=int, default=1000, help="--cross-domain: lines per source")
    parser.add_argument("--margin", type=float, default=3.0, help="--cross-domain: `thresholds.margin`")
    parser.add_argument("--language-score", nargs="*", default=[], metavar="LANG=CUTOFF",
                        help="--cross-domain: `lid.language_score` entries, e.g. zul_Latn=0.5")
    args = parser.parse_args()
    logger.remove()
    logging.disable(logging.WARNING)
    if args.cross_domain:
        cutoffs = {lang: float(value) for lang, value in (item.split("=") for item in args.language_score)}
        cross_domain(args.languages or list(CROSS), args.lines, args.margin, cutoffs)
        return
    args.languages = args.languages or list(LANGS)
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
