"""Throughput of `langadapt curate` against the same blocks wired as a plain datatrove pipeline.

    PYTHONPATH=src python benchmarks/curate.py [--sizes 200 800] [--repeats 1]   # minutes on 1 core
    PYTHONPATH=src python benchmarks/curate.py --sizes 10000 100000 --kinds langadapt   # scaling

Documents are 8 random sentences of Czech news and Wikipedia-style text (NTREX-128 + SIB-200),
with 10 % near-duplicates and 5 % boilerplate injected. Both pipelines run one task on one core
(local executor, one worker): read JSONL → language ID (py3langid) → Gopher repetition, FineWeb
quality, Gopher quality, C4 → exact dedup (3 stages) → MinHash dedup (4 stages) → write. The
langadapt one adds per-language dispatch, removed-document provenance, cluster sizes and
rehydration. Each run is a fresh process, so the peak RSS is that run's.

The plain pipeline splits words with datatrove's own spaCy tokenizer, langadapt with the same
spaCy tokenizer memoised per whitespace chunk (`corpus/words.py`: the same words), which is why
the ratio exceeds 1. The corpus draws its sentences from a pool of ~3,000, so its chunks recur
more than web text's: the second table times the word tokenizers alone on text seen once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LANG = "ces_Latn"


def make_corpus(path: Path, n_docs: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    pool = (DATA / "ntrex128" / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()
    for split in ("train", "dev", "test"):
        pool += [row.split("\t")[2] for row in (DATA / "sib200" / LANG / f"{split}.tsv").read_text().splitlines()[1:]]
    boilerplate = "Domů | Zprávy | Sport | Kontakt\nVšechna práva vyhrazena.\n" * 6
    docs = []
    for _ in range(n_docs):
        roll = rng.random()
        if roll < 0.10 and docs:
            lines = rng.choice(docs).split("\n")
            lines[rng.randrange(len(lines))] += " (aktualizováno)"
            text = "\n".join(lines)
        elif roll < 0.15:
            text = boilerplate
        else:
            text = "\n".join(rng.sample(pool, 8))
        docs.append(text)
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(docs):
            handle.write(json.dumps({"id": str(i), "text": text}, ensure_ascii=False) + "\n")


def _config(corpus: Path, out: Path):
    from langadapt.config import CurationConfig

    return CurationConfig.model_validate({
        "name": "bench", "output_dir": str(out), "languages": [LANG],
        "inputs": [{"format": "jsonl", "path": str(corpus)}],
        "thresholds": {"published_dir": str(DATA / "fineweb2" / "configs")},
    })


def run_langadapt(corpus: Path, out: Path) -> None:
    from langadapt.corpus.curation import curate

    curate(_config(corpus, out))


def run_plain(corpus: Path, out: Path) -> None:
    """The same datatrove blocks, configured by hand for one language, without langadapt's blocks."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline import dedup
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LambdaFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from langadapt.corpus.blocks import normalised_text
    from langadapt.corpus.lid import Py3LangId
    from langadapt.corpus.thresholds import load_published

    th = load_published(DATA / "fineweb2" / "configs", LANG)
    words = load_word_tokenizer(LANG)  # datatrove's own (spaCy "cs" in a memory zone per call)
    lid = Py3LangId()

    def keep_language(doc) -> bool:
        label, score = lid.predict(doc.text)
        return label == LANG and score >= th.language_score

    exact = ExactDedupConfig(content_getter=normalised_text)
    minhash = MinhashConfig(hash_config=HashConfig(64, "sha1"))
    stages = [
        ([JsonlReader(str(corpus.parent), glob_pattern=corpus.name), LambdaFilter(keep_language),
          GopherRepetitionFilter(dup_line_frac=th.dup_line_frac, dup_para_frac=None, dup_line_char_frac=None,
                                 dup_para_char_frac=None, top_n_grams=th.top_n_grams, dup_n_grams=th.dup_n_grams,
                                 language=words),
          FineWebQualityFilter(line_punct_thr=th.line_punct_thr, line_punct_exclude_zero=th.line_punct_thr < 0,
                               short_line_thr=999, char_duplicates_ratio=0.1, new_line_ratio=th.new_line_ratio,
                               language=words),
          GopherQualityFilter(min_doc_words=50, max_doc_words=None, min_avg_word_length=th.min_avg_word_length,
                              max_avg_word_length=th.max_avg_word_length,
                              max_non_alpha_words_ratio=th.max_non_alpha_words_ratio, stop_words=list(th.stopwords),
                              min_stop_words=2, language=words),
          C4QualityFilter(filter_no_terminal_punct=False, language=words),
          JsonlWriter(str(out / "filtered"))], 1),
        ([JsonlReader(str(out / "filtered")), dedup.ExactDedupSignature(str(out / "es"), exact)], 1),
        ([dedup.ExactFindDedups(str(out / "es"), str(out / "ed"), exact, save_cluster_size=True)], 1),
        ([JsonlReader(str(out / "filtered")), dedup.ExactDedupFilter(str(out / "ed"), exact),
          dedup.MinhashDedupSignature(str(out / "ms"), minhash, language=words)], 1),
        ([dedup.MinhashDedupBuckets(str(out / "ms"), str(out / "mb"), config=minhash)], minhash.num_buckets),
        ([dedup.MinhashDedupCluster(str(out / "mb"), str(out / "mc"), config=minhash, save_cluster_size=True)], 1),
        ([JsonlReader(str(out / "filtered")), dedup.ExactDedupFilter(str(out / "ed"), exact),
          dedup.MinhashDedupFilter(str(out / "mc"), load_cluster_sizes=True), JsonlWriter(str(out / "output"))], 1),
    ]
    for i, (pipeline, tasks) in enumerate(stages):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=str(out / "logs" / str(i))).run()


def _cpu() -> float:
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def one(kind: str, corpus: Path) -> dict:
    """Wall and CPU seconds (CPU time holds still when others load the machine) and peak RSS."""
    with tempfile.TemporaryDirectory() as out:
        started, cpu = time.perf_counter(), _cpu()
        (run_langadapt if kind == "langadapt" else run_plain)(corpus, Path(out))
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    return {"seconds": seconds, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def words_alone() -> dict[str, float]:
    """Words per second of each tokenizer on text it sees once (NTREX-128 Czech, 8-line documents)."""
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from langadapt.corpus.words import chunked

    lines = (DATA / "ntrex128" / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()
    docs = ["\n".join(lines[i:i + 8]) for i in range(0, len(lines), 8)]
    result = {}
    for name, tokenizer in (("datatrove spaCy", load_word_tokenizer(LANG)),
                            ("memoised", chunked(load_word_tokenizer(LANG)))):
        tokenizer.word_tokenize("probe")  # load spaCy outside the timing
        started = time.perf_counter()
        n_words = sum(len(tokenizer.word_tokenize(doc)) for doc in docs)
        result[name] = n_words / (time.perf_counter() - started)
    return result


def run_size(corpus: Path, kinds: list[str], repeats: int) -> dict[str, dict]:
    """Median seconds and peak MB of each pipeline on one corpus, every run a fresh process."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for _ in range(repeats):
        for kind in kinds:
            command = [sys.executable, __file__, "--one", kind, str(corpus)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {kind: {"seconds": statistics.median(r["seconds"] for r in rows),
                   "cpu": statistics.median(r["cpu"] for r in rows),
                   "peak_mb": max(r["peak_mb"] for r in rows)} for kind, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", choices=["plain", "langadapt"], default=["plain", "langadapt"],
                        help="leave plain out for sizes it would take hours on")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "CORPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import logging

        from loguru import logger

        logger.remove()
        logging.disable(logging.WARNING)
        print(json.dumps(one(args.one[0], Path(args.one[1]))))
        return

    print(f"# langadapt curate vs plain datatrove — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
          f"datatrove {version('datatrove')}, spacy {version('spacy')}, py3langid {version('py3langid')}")
    print(f"one task, one worker; median of {args.repeats} runs, each a fresh process (start-up included)\n")
    print("| docs | plain datatrove s | langadapt s | plain docs/s | langadapt docs/s | ratio (langadapt/plain) "
          "| CPU s plain | CPU s langadapt | CPU ratio | peak MB plain | peak MB langadapt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    seconds_at = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            corpus = Path(tmp) / f"corpus{size}" / "docs.jsonl"
            corpus.parent.mkdir()
            make_corpus(corpus, size)
            got = run_size(corpus, args.kinds, args.repeats)
            cell = {kind: got.get(kind) for kind in ("plain", "langadapt")}
            seconds = {k: f"{v['seconds']:.1f}" if v else "—" for k, v in cell.items()}
            rate = {k: f"{size / v['seconds']:.0f}" if v else "—" for k, v in cell.items()}
            peak = {k: f"{v['peak_mb']:.0f}" if v else "—" for k, v in cell.items()}
            cpu = {k: f"{v['cpu']:.1f}" if v else "—" for k, v in cell.items()}
            both = cell["plain"] and cell["langadapt"]
            ratio = f"{cell['plain']['seconds'] / cell['langadapt']['seconds']:.2f}" if both else "—"
            cpu_ratio = f"{cell['plain']['cpu'] / cell['langadapt']['cpu']:.2f}" if both else "—"
            print(f"| {size} | {seconds['plain']} | {seconds['langadapt']} | {rate['plain']} | {rate['langadapt']} | "
                  f"{ratio} | {cpu['plain']} | {cpu['langadapt']} | {cpu_ratio} | {peak['plain']} | "
                  f"{peak['langadapt']} |", flush=True)
            if cell["langadapt"]:
                seconds_at[size] = cell["langadapt"]["cpu"]
    sizes = sorted(seconds_at)
    for small, large in zip(sizes, sizes[1:], strict=False):
        marginal = (large - small) / (seconds_at[large] - seconds_at[small])
        print(f"\nscaling (langadapt, CPU time): {large / small:.0f}× the documents took "
              f"{seconds_at[large] / seconds_at[small]:.2f}× the CPU time (linear = the same factor; fixed start-up "
              f"costs make it smaller); the extra {large - small} documents ran at {marginal:.0f} docs per CPU second")
    rates = words_alone()
    print("\n| word tokenizer, Czech text seen once | words/s | ratio |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / rates['datatrove spaCy']:.2f} |")


if __name__ == "__main__":
    main()
