"""Large vocabularies: one training step and one scoring pass, sliced output layer vs full logits.

A tiny Gemma-3-shaped model (2 blocks, width `--width`) with a 262,144-row tied vocabulary, as
Gemma 3 has (`--vocab` for another size): nearly all of a step is the output layer, which is what the slicing in
model/head.py is for. Each path runs in a fresh process (so peak memory is its own): `--warmup`
untimed steps, then `--repeats` timed training steps (AdamW over every weight, the loop's
`causal` objective) and scoring passes (`bits_per_byte`'s summed NLL, every position scored);
the table shows medians and the peak memory rise over the process's level before the first
step (CUDA: `max_memory_allocated`; CPU: peak resident set). Also printed: the optimiser state
of the `embeddings` method (new rows only, peft trainable tokens) against `embeddings-all`.

    python benchmarks/large_vocab.py                           # batch 8 x 256 on CUDA if present
    python benchmarks/large_vocab.py --batch 2 --block 256     # a small CPU machine

Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

import psutil
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from langadapt.evaluate import bpb
from langadapt.model import head
from langadapt.model.config import LoraConfig
from langadapt.registry import ADAPTERS
from langadapt.train.objectives import causal_lm


def tiny_gemma(width: int, vocab: int, device: torch.device) -> torch.nn.Module:
    config = AutoConfig.for_model("gemma3_text", vocab_size=vocab, hidden_size=width, intermediate_size=4 * width,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                                  head_dim=width // 4, max_position_embeddings=1024, sliding_window=128,
                                  final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_mb(device: torch.device, before: float) -> float:
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10 - before  # Linux: KiB


def level(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return psutil.Process().memory_info().rss / 2**20


def worker(args) -> dict:
    """One path (`--path sliced|full`) in this process: median step and scoring times, peak memory rises."""
    head.SLICED = args.path == "sliced"
    device = torch.device(args.device)
    model = tiny_gemma(args.width, args.vocab, device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, args.vocab, (args.batch, args.block + 1), generator=generator).to(device)
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    result = {}

    def step():
        causal_lm(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    attention, scored = torch.ones_like(ids), torch.ones_like(ids[:, 1:], dtype=torch.bool)
    for name, run, grad in (("step", step, True), ("score", lambda: bpb._scored_nats(model, ids, attention, scored),
                                                       False)):
        with torch.set_grad_enabled(grad):
            run()  # the optimiser state exists from here on: the rise below is the step's own
            sync(device)
            before = level(device)
            times = []
            for _ in range(args.warmup + args.repeats):
                start = time.perf_counter()
                run()
                sync(device)
                times.append(time.perf_counter() - start)
        result[name] = {"s": statistics.median(times[args.warmup:]), "peak_mb": peak_mb(device, before)}
    return result


def optimiser_rows(width: int, vocab: int) -> dict[str, int]:
    """Trainable parameters (= AdamW state pairs) of `embeddings` (1,000 new rows) vs `embeddings-all`."""
    counts = {}
    for method in ("embeddings", "embeddings-all"):
        model = tiny_gemma(width, vocab, torch.device("cpu"))
        adapted = ADAPTERS[method](model, LoraConfig(), list(range(vocab - 1000, vocab)))
        counts[method] = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=262_144, help="rows (49152: SmolLM2's vocabulary)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--path", choices=["sliced", "full"], help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.path:
        print(json.dumps(worker(args)))
        return
    results = {}
    for path in ("sliced", "full"):
        command = [sys.executable, __file__, *sys.argv[1:], "--path", path]
        done = subprocess.run(command, capture_output=True, text=True)
        results[path] = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else None
        if results[path] is None:
            print(f"{path}: failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"# large vocabulary: {args.vocab} rows, width {args.width}, batch {args.batch} x {args.block}, "
          f"{args.repeats} repeats (medians)")
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {device}, torch {torch.__version__}, "
          f"transformers {metadata.version('transformers')}, load average {psutil.getloadavg()[0]:.1f}")
    print(f"{'':8} {'sliced s':>9} {'full s':>9} {'time ×':>7} {'sliced MB':>10} {'full MB':>10} {'memory ×':>9}")
    for name in ("step", "score"):
        if results["sliced"] is None or results["full"] is None:
            break
        ours, full = results["sliced"][name], results["full"][name]
        print(f"{name:8} {ours['s']:9.3f} {full['s']:9.3f} {ours['s'] / full['s']:7.2f} {ours['peak_mb']:10.0f} "
              f"{full['peak_mb']:10.0f} {ours['peak_mb'] / full['peak_mb']:9.2f}")
    counts = optimiser_rows(args.width, args.vocab)
    print(f"trainable (AdamW state) with 1,000 new rows: embeddings {counts['embeddings']:,}, "
          f"embeddings-all {counts['embeddings-all']:,}")


if __name__ == "__main__":
    main()
