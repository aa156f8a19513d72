"""Throughput of `langadapt curate` against the same blocks wired as a plain datatrove pipeline.

    PYTHONPATH=src python benchmarks/curate.py [--sizes 200 800] [--repeats 1]   # minutes on 1 core
    PYTHONPATH=src python benchmarks/curate.py --sizes 10000 100000 --kinds langadapt   # scaling
    PYTHONPATH=src python benchmarks/curate.py --corpus distinct --sizes 2000 10000   # text that does not repeat
    PYTHONPATH=src python benchmarks/curate.py --corpus recombined --sizes 10000 100000   # documents that do not

Three corpora. `repeated` (the default): documents of 8 random sentences of Czech news and
Wikipedia-style text (NTREX-128 + SIB-200), drawn from a pool of ~3,000 sentences, with 10 %
near-duplicates and 5 % boilerplate injected. `distinct`: documents of 3 consecutive sentences in
10 languages of 6 scripts (NTREX-128, SIB-200 and UDHR), every sentence used once, so no sentence
repeats (the data holds 10,305 such documents; a larger size is refused). `recombined`: beyond
those, documents of 3 sentences of one language drawn from a fresh shuffle of its sentences each
round, so no document repeats and no two share two sentences (checked), while each sentence
recurs about once per 10,305 documents (what a larger corpus of such text must do).

Both pipelines run one task on one core (local executor, one worker) in FineWeb2's order: read
JSONL → language ID (py3langid), which writes one folder per language → per language: exact dedup
(3 stages) → MinHash dedup (4 stages) → Gopher repetition, FineWeb quality, Gopher quality → write.
The langadapt one adds per-language dispatch in one pass, removed-document
provenance, quality signals, cluster sizes, rehydration and the train/held-out artifact. Each run
is a fresh process, so the peak RSS is that run's. CPU seconds are the fair measure on a shared
machine; docs per CPU second per stage come from datatrove's own stage timings (`logs/*/stats.json`).

The plain pipeline splits words with datatrove's own spaCy tokenizer, langadapt with the same
spaCy tokenizer memoised per whitespace chunk (`corpus/words.py`: the same words); the last table
times the word tokenizers alone on text seen once.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
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

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
LANG = "ces_Latn"


DISTINCT = {"ces_Latn": ("ces", "ces"), "deu_Latn": ("deu", "deu_1996"), "swh_Latn": ("swa", "swh"),
            "zul_Latn": ("zul", "zul"), "eus_Latn": ("eus", "eus"), "ukr_Cyrl": ("ukr", "ukr"),
            "guj_Gujr": ("guj", "guj"), "hin_Deva": ("hin", "hin"), "arb_Arab": ("arb", "arb"),
            "ell_Grek": ("ell", "ell_monotonic")}


def _sib(lang: str) -> list[str]:
    return [row.split("\t")[2] for split in ("train", "dev", "test")
            for row in (DATA / "sib200" / lang / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]]


def make_corpus(path: Path, n_docs: int, seed: int = 0) -> list[str]:
    """The `repeated` corpus (module docstring); returns its languages."""
    rng = random.Random(seed)
    pool = (DATA / "ntrex128" / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines() + _sib(LANG)
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
    _write(path, docs)
    return [LANG]


def _distinct_documents(lang: str) -> list[str]:
    """`lang`'s distinct sentences (NTREX-128, SIB-200, UDHR), 3 consecutive ones a document."""
    ntrex, udhr = DISTINCT[lang]
    body = (DATA / "udhr" / f"udhr_{udhr}.txt").read_text(encoding="utf-8").split("\n---\n", 1)[1]
    lines = (DATA / "ntrex128" / f"newstest2019-ref.{ntrex}.txt").read_text(encoding="utf-8").splitlines()
    lines = list(dict.fromkeys(line.strip() for line in lines + _sib(lang) + body.splitlines() if line.strip()))
    return ["\n".join(lines[i : i + 3]) for i in range(0, len(lines) - 2, 3)]


def make_distinct_corpus(path: Path, n_docs: int, seed: int = 0) -> list[str]:
    """The `distinct` corpus (module docstring): no sentence occurs twice; returns its languages."""
    docs = [doc for lang in DISTINCT for doc in _distinct_documents(lang)]
    if n_docs > len(docs):
        raise SystemExit(f"--corpus distinct holds {len(docs)} documents; {n_docs} asked (sentences would repeat)")
    random.Random(seed).shuffle(docs)
    _write(path, docs[:n_docs])
    return list(DISTINCT)


def make_recombined_corpus(path: Path, n_docs: int, seed: int = 0) -> list[str]:
    """The `recombined` corpus (module docstring); returns its languages."""
    rng = random.Random(seed)
    pools = {lang: [line for doc in _distinct_documents(lang) for line in doc.split("\n")] for lang in DISTINCT}
    docs = [doc for lang in DISTINCT for doc in _distinct_documents(lang)]
    seen, pairs = set(docs), {frozenset(p) for doc in docs for p in itertools.combinations(doc.split("\n"), 2)}
    while len(docs) < n_docs:
        for pool in pools.values():
            order = rng.sample(pool, len(pool))
            for i in range(0, len(order) - 2, 3):
                triple = order[i : i + 3]
                shared = {frozenset(p) for p in itertools.combinations(triple, 2)}
                if "\n".join(triple) not in seen and not shared & pairs:
                    docs.append("\n".join(triple))
                    seen.add(docs[-1])
                    pairs |= shared
    rng.shuffle(docs)
    _write(path, docs[:n_docs])
    return list(DISTINCT)


def _write(path: Path, docs: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(docs):
            handle.write(json.dumps({"id": str(i), "text": text}, ensure_ascii=False) + "\n")


def _config(corpus: Path, out: Path, languages: list[str]):
    from langadapt.corpus.config import CurationConfig

    return CurationConfig.model_validate({
        "name": "bench", "output_dir": str(out), "languages": languages,
        "inputs": [{"format": "jsonl", "path": str(corpus)}],
        "thresholds": {"published_dir": str(DATA / "fineweb2" / "configs")},
    })


def run_langadapt(corpus: Path, out: Path, languages: list[str]) -> None:
    from langadapt.corpus.curation import curate

    curate(_config(corpus, out, languages))


def run_plain(corpus: Path, out: Path, languages: list[str]) -> None:
    """The same datatrove blocks, configured by hand per language, without langadapt's blocks: a
    language-ID pass writes one folder per language, then one dedup and filter chain per language."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline import dedup
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LambdaFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    from langadapt.corpus.blocks import normalised_text
    from langadapt.corpus.lid import Py3LangId
    from langadapt.corpus.thresholds import load_published
    from langadapt.languages import match

    published = {lang: load_published(DATA / "fineweb2" / "configs", lang) for lang in languages}
    lid = Py3LangId()

    def keep_language(doc) -> bool:
        label, score = lid.predict(doc.text)
        doc.metadata["language"] = lang = match(label, languages)
        return lang is not None and score >= published[lang].language_score

    def run(name: str, pipeline: list, tasks: int = 1) -> None:
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=str(out / "logs" / name)).run()

    run("lid", [JsonlReader(str(corpus.parent), glob_pattern=corpus.name), LambdaFilter(keep_language),
                JsonlWriter(str(out / "lid"), output_filename="${language}/${rank}.jsonl.gz")])
    exact = ExactDedupConfig(content_getter=normalised_text)
    minhash = MinhashConfig(hash_config=HashConfig(64, "sha1"))
    for lang in languages:
        if not (out / "lid" / lang).is_dir():
            continue
        th, words, work = published[lang], plain_words(lang), out / lang
        run(f"{lang}-exact-1", [JsonlReader(str(out / "lid" / lang)),
                                dedup.ExactDedupSignature(str(work / "es"), exact)])
        run(f"{lang}-exact-2", [dedup.ExactFindDedups(str(work / "es"), str(work / "ed"), exact,
                                                      save_cluster_size=True)])
        run(f"{lang}-minhash-1", [JsonlReader(str(out / "lid" / lang)), dedup.ExactDedupFilter(str(work / "ed"), exact),
                                  dedup.MinhashDedupSignature(str(work / "ms"), minhash, language=words)])
        run(f"{lang}-minhash-2", [dedup.MinhashDedupBuckets(str(work / "ms"), str(work / "mb"), config=minhash)],
            minhash.num_buckets)
        run(f"{lang}-minhash-3", [dedup.MinhashDedupCluster(str(work / "mb"), str(work / "mc"), config=minhash,
                                                            save_cluster_size=True)])
        run(f"{lang}-dedup", [JsonlReader(str(out / "lid" / lang)), dedup.ExactDedupFilter(str(work / "ed"), exact),
                              dedup.MinhashDedupFilter(str(work / "mc"), load_cluster_sizes=True),
                              JsonlWriter(str(work / "deduped"))])
        run(f"{lang}-filter", [
            JsonlReader(str(work / "deduped")),
            GopherRepetitionFilter(dup_line_frac=th.dup_line_frac, dup_para_frac=None, dup_line_char_frac=None,
                                   dup_para_char_frac=None, top_n_grams=th.top_n_grams, dup_n_grams=th.dup_n_grams,
                                   language=words),
            FineWebQualityFilter(line_punct_thr=th.line_punct_thr, line_punct_exclude_zero=th.line_punct_thr < 0,
                                 short_line_thr=999, char_duplicates_ratio=0.1, new_line_ratio=th.new_line_ratio,
                                 language=words),
            GopherQualityFilter(min_doc_words=50, max_doc_words=None, min_avg_word_length=th.min_avg_word_length,
                                max_avg_word_length=th.max_avg_word_length,
                                max_non_alpha_words_ratio=th.max_non_alpha_words_ratio,
                                stop_words=list(th.stopwords), min_stop_words=2, language=words),
            JsonlWriter(str(work / "output"))])


# Pipeline steps by what they do, so both pipelines' steps line up (datatrove's "TYPE: name" strings).
STAGES = [("language ID", ("Language ID", "Lambda")), ("Gopher repetition", ("gopher_repetition", "Repetition")),
          ("FineWeb quality", ("fineweb_quality", "FineWeb Quality")), ("Gopher quality", ("gopher_quality",
          "Gopher Quality")), ("quality signals", ("quality signals",)), ("read", ("READER",)),
          ("dedup", ("DEDUP",)), ("write", ("WRITER",)), ("rehydrate", ("SAMPLER",))]


def plain_words(lang: str):
    """datatrove's own word tokenizer for `lang`; whitespace where its package is missing (indicnlp for
    Gujarati), as langadapt falls back too."""
    from datatrove.utils.word_tokenizers import WhitespaceTokenizer, load_word_tokenizer

    try:
        tokenizer = load_word_tokenizer(lang)
        tokenizer.word_tokenize("probe")
    except ImportError:
        return WhitespaceTokenizer()
    return tokenizer


def stage_seconds(logs: Path) -> dict[str, float]:
    """Seconds per kind of step (`STAGES`), summed over the runs under `logs` (datatrove's `stats.json`)."""
    seconds: dict[str, float] = {}
    for path in logs.glob("**/logs/*/stats.json"):  # datatrove's, not the curation's own stats.json
        for step in json.loads(path.read_text(encoding="utf-8")):
            stage = next((label for label, keys in STAGES if any(key in step["name"] for key in keys)), "other")
            timing = step["time_stats"]
            seconds[stage] = seconds.get(stage, 0.0) + (timing["total"] if isinstance(timing, dict) else timing)
    return seconds


def _cpu() -> float:
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def one(kind: str, corpus: Path, languages: list[str]) -> dict:
    """Wall and CPU seconds (CPU time holds still when others load the machine), peak RSS, and
    seconds per stage."""
    with tempfile.TemporaryDirectory() as out:
        started, cpu = time.perf_counter(), _cpu()
        (run_langadapt if kind == "langadapt" else run_plain)(corpus, Path(out), languages)
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        stages = stage_seconds(Path(out))
    return {"seconds": seconds, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "stages": stages}


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


def run_size(corpus: Path, languages: list[str], kinds: list[str], repeats: int) -> dict[str, dict]:
    """Median seconds, peak MB and median seconds per stage of each pipeline on one corpus, every run
    a fresh process."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for _ in range(repeats):
        for kind in kinds:
            command = [sys.executable, __file__, "--one", kind, str(corpus), ",".join(languages)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {kind: {"seconds": statistics.median(r["seconds"] for r in rows),
                   "cpu": statistics.median(r["cpu"] for r in rows),
                   "peak_mb": max(r["peak_mb"] for r in rows),
                   "stages": {stage: statistics.median(r["stages"].get(stage, 0.0) for r in rows)
                              for stage in rows[0]["stages"]}} for kind, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--corpus", choices=["repeated", "distinct", "recombined"], default="repeated")
    parser.add_argument("--kinds", nargs="+", choices=["plain", "langadapt"], default=["plain", "langadapt"],
                        help="leave plain out for sizes it would take hours on")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "CORPUS", "LANGUAGES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import logging

        from loguru import logger

        logger.remove()
        logging.disable(logging.WARNING)
        print(json.dumps(one(args.one[0], Path(args.one[1]), args.one[2].split(","))))
        return

    make = {"repeated": make_corpus, "distinct": make_distinct_corpus,
            "recombined": make_recombined_corpus}[args.corpus]
    print(f"# langadapt curate vs plain datatrove — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
          f"datatrove {version('datatrove')}, spacy {version('spacy')}, py3langid {version('py3langid')}")
    print(f"corpus: {args.corpus}; one task, one worker; median of {args.repeats} runs, each a fresh process "
          "(start-up included)\n")
    print("| docs | plain datatrove s | langadapt s | plain docs/s | langadapt docs/s | ratio (langadapt/plain) "
          "| CPU s plain | CPU s langadapt | CPU ratio | peak MB plain | peak MB langadapt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    seconds_at, per_stage = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            corpus = Path(tmp) / f"corpus{size}" / "docs.jsonl"
            corpus.parent.mkdir()
            languages = make(corpus, size)
            got = run_size(corpus, languages, args.kinds, args.repeats)
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
            per_stage[size] = {kind: v["stages"] for kind, v in cell.items() if v}
            if cell["langadapt"]:
                seconds_at[size] = cell["langadapt"]["cpu"]
    sizes = sorted(seconds_at)
    for small, large in zip(sizes, sizes[1:], strict=False):
        marginal = (large - small) / (seconds_at[large] - seconds_at[small])
        print(f"\nscaling (langadapt, CPU time): {large / small:.0f}× the documents took "
              f"{seconds_at[large] / seconds_at[small]:.2f}× the CPU time (linear = the same factor; fixed start-up "
              f"costs make it smaller); the extra {large - small} documents ran at {marginal:.0f} docs per CPU second")
    print("\ndocs per second of each stage's own time (datatrove's timings; a stage sees the documents that reach it,"
          " so read as cost per input document):\n")
    print("| docs | stage | plain docs/s | langadapt docs/s | ratio |\n|---|---|---|---|---|")
    for size, kinds in per_stage.items():
        for stage, _ in STAGES:
            rates = {k: size / v[stage] if v.get(stage) else None for k, v in kinds.items()}
            if not any(rates.values()):
                continue
            plain, ours = rates.get("plain"), rates.get("langadapt")
            ratio = f"{ours / plain:.2f}" if plain and ours else "—"
            print(f"| {size} | {stage} | {f'{plain:.0f}' if plain else '—'} | {f'{ours:.0f}' if ours else '—'} "
                  f"| {ratio} |")
    rates = words_alone()
    print("\n| word tokenizer, Czech text seen once | words/s | ratio |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / rates['datatrove spaCy']:.2f} |")


if __name__ == "__main__":
    main()
