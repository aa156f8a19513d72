"""Evaluation throughput: langadapt's bits per byte vs lm-evaluation-harness's on the same model
folder and text (tokens/s, ratio, agreement), and the wall time of the probe suite.

    PYTHONPATH=src python benchmarks/eval_throughput.py [--docs 12] [--repeats 3] [--languages ces_Latn,...]

Models are randomly initialised GPT-2s at the 6M and 25M sizes (throughput and agreement do not
depend on the weights); text is NTREX-128 (../shared/data), documents of 15 lines each, longer than
the 256-token context, so both sides cut them into windows. lm-eval is timed twice: scoring only
(`HFLM.loglikelihood_rolling` on a loaded model, like langadapt's figure) and end to end
(`simple_evaluate`: load, task setup, scoring). Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from langadapt.corpus.document import read_parallel
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.evaluate.harness import run_harness, write_bpb_task
from langadapt.evaluate.probes import ProbeTask
from langadapt.evaluate.retrieval import retrieval_accuracy
from langadapt.model.build import build_gpt2, load_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.registry import PROBES
from langadapt.vocab.tokenizer import EOS, train_bpe

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PRESETS = {"6M": ModelConfig(n_layer=6, n_embd=256, n_head=4, block_size=256),
           "25M": ModelConfig(n_layer=8, n_embd=512, n_head=8, block_size=256)}


def timed(function, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def bpb_row(name: str, cfg: ModelConfig, tokenizer, texts: list[str], tmp: Path, repeats: int) -> str:
    """One table row: langadapt vs lm-eval on one randomly initialised model folder."""
    eos = tokenizer.token_to_id(EOS)
    n_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    torch.manual_seed(0)
    folder = save_model(build_gpt2(cfg, tokenizer), tokenizer, tmp / name)
    model = load_model(folder)
    params = sum(p.numel() for p in model.parameters())
    disjoint_s, ours = timed(lambda: bits_per_byte(model, tokenizer, texts, eos, stride=cfg.block_size), repeats)
    sliding_s, _ = timed(lambda: bits_per_byte(model, tokenizer, texts, eos), repeats)
    harness_lm = HFLM(pretrained=str(folder), batch_size=32, device="cpu", dtype="float32")
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    scoring_s, _ = timed(lambda: harness_lm.loglikelihood_rolling(requests, disable_tqdm=True), repeats)
    end_to_end_s, theirs = timed(lambda: run_harness(folder, ["bench_bpb"], tmp / "tasks"), repeats)
    theirs_bpb = theirs["bench_bpb"]["bits_per_byte"]
    return (f"| {name} | {params / 1e6:.1f}M | {n_tokens / disjoint_s:,.0f} | {n_tokens / sliding_s:,.0f} | "
            f"{n_tokens / scoring_s:,.0f} | {scoring_s / disjoint_s:.2f} | {n_tokens / end_to_end_s:,.0f} | "
            f"{ours.bpb:.5f} | {theirs_bpb:.5f} | {abs(ours.bpb - theirs_bpb) / theirs_bpb:.2e} |")


def probe_suite(tokenizer, languages: list[str], pairs: int) -> None:
    """Wall time of SIB-200 (train on the first language, test on all), Tatoeba retrieval and POS."""
    torch.manual_seed(0)
    model = build_gpt2(PRESETS["6M"], tokenizer).eval()
    started = time.perf_counter()
    PROBES["sib200"](model, tokenizer, ProbeTask(DATA / "sib200", languages[0], languages))
    sib_s = time.perf_counter() - started
    started, retrieval_languages = time.perf_counter(), 0
    for language in languages:
        code = language.split("_")[0]
        pair = DATA / "tatoeba" / f"tatoeba.{code}-eng.{code}", DATA / "tatoeba" / f"tatoeba.{code}-eng.eng"
        if pair[0].is_file():
            retrieval_accuracy(model, tokenizer, *read_parallel(*pair, limit=pairs))
            retrieval_languages += 1
    retrieval_s = time.perf_counter() - started
    started = time.perf_counter()
    PROBES["pos"](model, tokenizer, ProbeTask(DATA / "ud_maltese", "mlt_Latn", limit=300))
    pos_s = time.perf_counter() - started
    print(f"| probe suite, 6M model, {len(languages)} languages | wall s |\n|---|---:|")
    print(f"| SIB-200 (train {languages[0]}: 701; test 204 × {len(languages)}) | {sib_s:.1f} |")
    print(f"| Tatoeba retrieval ({pairs} pairs × {retrieval_languages} languages with a file) | {retrieval_s:.1f} |")
    print(f"| POS, UD Maltese (300 train / 300 test sentences) | {pos_s:.1f} |")
    print(f"| total | {sib_s + retrieval_s + pos_s:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4, help="documents of 15 NTREX lines each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--languages", default="ces_Latn,pol_Latn,slk_Latn,deu_Latn,eng_Latn",
                        help="probe suite languages (SIB-200 codes; Tatoeba uses the 3-letter part)")
    parser.add_argument("--pairs", type=int, default=300, help="Tatoeba pairs per language")
    parser.add_argument("--part", choices=["bpb", "probes", "all"], default="all")
    args = parser.parse_args()

    lines = (DATA / "ntrex128" / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()
    texts = ["\n".join(lines[i : i + 15]) for i in range(0, 15 * args.docs, 15)]
    tokenizer = train_bpe(lines[500:], 2000)  # trained on lines the benchmark does not score
    n_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))

    print(f"# eval_throughput — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}")
    print("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in
                                   ("torch", "transformers", "lm_eval", "scikit-learn", "langadapt")))
    print(f"text: {len(texts)} NTREX ces documents, {n_tokens} tokens, "
          f"{sum(len(t.encode()) for t in texts)} bytes; median of {args.repeats}\n")
    with tempfile.TemporaryDirectory() as tmp:
        write_bpb_task("bench_bpb", texts, Path(tmp) / "tasks")
        if args.part in ("bpb", "all"):
            print("| model | params | langadapt tok/s (disjoint) | langadapt tok/s (stride ctx/2) | "
                  "lm-eval tok/s scoring | ratio langadapt/lm-eval scoring | lm-eval tok/s end to end | "
                  "bpb langadapt | bpb lm-eval | rel. diff |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for name, cfg in PRESETS.items():
                print(bpb_row(name, cfg, tokenizer, texts, Path(tmp), args.repeats))
            print()

    if args.part in ("probes", "all"):
        probe_suite(tokenizer, args.languages.split(","), args.pairs)


if __name__ == "__main__":
    main()
