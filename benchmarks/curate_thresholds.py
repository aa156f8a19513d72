"""Derived vs published FineWeb2 thresholds, over every language with both a published config and
reference text in ../shared/data (NTREX-128 news, in order, and SIB-200 sentences).

    PYTHONPATH=src python benchmarks/curate_thresholds.py [--limit N] [--csv out.csv]

Prints, per metric, how many languages were compared, the Pearson and Spearman correlation of
derived against published values, and the median absolute difference (and the medians of both,
for scale). Stopwords: the share of published stopwords that the derived list also contains.
Published `line_punct_thr` = -1 means "filter disabled"; those languages are left out of that row.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from langadapt.corpus.lid import Py3LangId
from langadapt.corpus.thresholds import MARGIN, PASS_RATE, derive, load_published, reference_documents
from langadapt.errors import LangadaptError
from langadapt.languages import normalise

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def ntrex_files() -> dict[str, Path]:
    """One NTREX file per normalised code; regional variants (eng-GB, por-BR) lose to the plain code."""
    chosen: dict[str, Path] = {}
    for path in sorted(DATA.glob("ntrex128/newstest2019-ref.*.txt"), key=lambda p: (len(p.name), p.name)):
        try:
            code = normalise(path.name.split(".")[1])
        except LangadaptError:
            continue
        chosen.setdefault(code, path)
    return chosen


def sib_lines(lang: str) -> list[str]:
    lines = []
    for split in ("train", "dev", "test"):
        path = DATA / "sib200" / lang / f"{split}.tsv"
        if path.is_file():
            frame = pd.read_csv(path, sep="\t", quoting=3, dtype=str)
            lines += frame["text"].dropna().tolist()
    return lines


def _corr(a: pd.Series, b: pd.Series, method: str) -> str:
    """A correlation, or "const" where one side does not vary (e.g. every threshold is the default)."""
    return f"{a.corr(b, method=method):.2f}" if a.nunique() > 1 and b.nunique() > 1 else "const"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="compare only the first N languages (0: all)")
    parser.add_argument("--lines", type=int, default=512, help="reference sentences per source and language")
    parser.add_argument("--csv", type=Path, help="also write per-language derived and published values here")
    args = parser.parse_args()

    configs = DATA / "fineweb2" / "configs"
    ntrex = ntrex_files()
    sib = {p.name for p in (DATA / "sib200").iterdir() if p.is_dir()}
    languages = sorted(lang for lang in set(ntrex) | sib if (configs / f"{lang}.yml").is_file())
    if args.limit:
        languages = languages[: args.limit]
    lid = Py3LangId()
    rows, stopword_recall = [], []
    started = time.perf_counter()
    for lang in languages:
        docs = []
        if lang in ntrex:
            docs += reference_documents(ntrex[lang].read_text(encoding="utf-8").splitlines()[: args.lines], lang)
        docs += reference_documents(sib_lines(lang)[: args.lines], lang)
        derived, published = derive(lang, docs, lid), load_published(configs, lang)
        for metric, value in derived.flat().items():
            rows.append({"language": lang, "metric": metric, "derived": value, "published": published.flat()[metric],
                         "quantile": derived.quantiles.get(metric, value)})
        if published.stopwords:
            stopword_recall.append(len(set(published.stopwords) & set(derived.stopwords)) / len(published.stopwords))
    elapsed = time.perf_counter() - started
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False, quoting=csv.QUOTE_MINIMAL)
    table = table[~((table.metric == "line_punct_thr") & (table.published < 0))]

    print(f"# Derived vs published FineWeb2 thresholds — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"datatrove {version('datatrove')}, py3langid {version('py3langid')}, spacy {version('spacy')}")
    print(f"languages: {len(languages)} (published config ∩ NTREX-128 ∪ SIB-200), derived in {elapsed:.0f} s; "
          f"≤ {args.lines} sentences per source; quantile level set so a held-out half passes {PASS_RATE} "
          f"over 50-word documents, never stricter than the English defaults, then {MARGIN} IQR further out; "
          "LID: py3langid\n")
    print("Two derived values per metric: the raw quantile of clean text, and the threshold used (the quantile,")
    print("never stricter than the English Gopher/FineWeb default). r and ρ against the published value.\n")
    print("| metric | n | quantile r | quantile ρ | quantile med abs diff | threshold r | threshold med abs diff "
          "| median quantile | median threshold | median published |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for metric, group in table.groupby("metric", sort=False):
        q_r, q_rho, t_r = (_corr(group[col], group.published, how) for col, how in
                           (("quantile", "pearson"), ("quantile", "spearman"), ("derived", "pearson")))
        q_diff = (group["quantile"] - group.published).abs().median()
        t_diff = (group.derived - group.published).abs().median()
        print(f"| {metric} | {len(group)} | {q_r} | {q_rho} | {q_diff:.3f} | {t_r} | {t_diff:.3f} | "
              f"{group['quantile'].median():.3f} | {group.derived.median():.3f} | {group.published.median():.3f} |")
    if stopword_recall:
        print(f"\nstopwords: {np.mean(stopword_recall):.2f} of the published list is in the derived list "
              f"(mean over {len(stopword_recall)} languages)")


if __name__ == "__main__":
    main()
