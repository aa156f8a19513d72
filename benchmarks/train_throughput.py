"""Training throughput: langadapt's loop vs HF `Trainer` vs a bare PyTorch loop, side by side.

Same GPT-2 model (per size preset), same data, batch and optimiser settings; each method runs
`--steps` timed steps after `--warmup` untimed ones, `--repeats` times in turn, and the table
shows medians. Model FLOP/s = 6 × parameters × tokens/s (4 × for LoRA, whose frozen weights
need no weight gradients), as a fraction of this machine's fp32
matmul peak measured here. Peak memory = the largest rise of the process's resident set over
its level when the method started (sampled every 5 ms, last repeat).

`--clock cpu` times every method by this process's CPU seconds instead of wall seconds: on a
machine shared with other jobs a method descheduled for a while is not charged for it, so the
ratios hold under load (with one torch thread, CPU seconds are the work done). `--model FOLDER`
times a pretrained model (e.g. an imported SmolLM2) instead of the presets, and `--method lora`
trains LoRA on every block projection (langadapt's `lora` adapter against peft's `all-linear`
LoRA under `Trainer`, same rank, alpha and dropout) instead of every weight.

    python benchmarks/train_throughput.py                  # tiny, mini and small presets
    python benchmarks/train_throughput.py --presets tiny --compile --bf16
    python benchmarks/train_throughput.py --model runs/.stages/base-* --method lora --block-size 256 --clock cpu

Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForCausalLM, PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from langadapt.corpus.sources import read_sample
from langadapt.data.packing import BlockSampler, pack
from langadapt.model.build import build_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.tokenizer import EOS, end_of_text, load_tokenizer, train_bpe

LANGUAGES = ["ces_Latn", "pol_Latn", "hsb_Latn"]


class PeakMemory:
    """Largest rise in resident memory while the `with` block runs."""

    def __enter__(self):
        if platform.system() == "Linux":  # hand freed heap back to the OS, so the rise is this method's own
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.process, self.running = psutil.Process(), True
        self.base = self.peak = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.rise_mb = (self.peak - self.base) / 2**20


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """Median fp32 matmul FLOP/s at `size`×`size` on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def run_langadapt(model, batches, cfg: TrainConfig, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        log = train(model, iter(batches).__next__, cfg, 0, Path(tmp) / "log.jsonl", desc="langadapt")
    elapsed = [r["tokens"] / r["tokens_per_s"] for r in log]  # seconds since the loop started
    return (log[-1]["tokens"] - log[warmup - 1]["tokens"]) / (elapsed[-1] - elapsed[warmup - 1])


def run_bare(model, batches, cfg: TrainConfig, warmup: int) -> float:
    """nanoGPT's inner loop with nothing around it: forward (no KV cache), loss, backward, clip, step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    model.train()
    for step, batch in enumerate(batches, start=1):
        inputs, targets = batch["input_ids"], batch["labels"]
        if step == warmup + 1:
            start, tokens = time.perf_counter(), 0
        logits = model(input_ids=inputs, use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step > warmup:
            tokens += inputs.numel()
    return tokens / (time.perf_counter() - start)


class _StepTimes(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


LORA = LoraConfig(r=16, alpha=32)


def with_lora(model, by: str):
    """`model` with LoRA on every block projection: langadapt's adapter, or peft as a user writes it."""
    if by == "langadapt":
        return ADAPTERS["lora"](model, LORA, [])
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    return get_peft_model(model, PeftLoraConfig(r=LORA.r, lora_alpha=LORA.alpha, lora_dropout=LORA.dropout,
                                                target_modules="all-linear", task_type="CAUSAL_LM"))


def run_trainer(model, batches, cfg: TrainConfig, warmup: int) -> float:
    """HF `Trainer` on the same blocks (labels = inputs; the model shifts them itself)."""
    rows = [row for batch in batches for row in batch["input_ids"].tolist()]
    data = Dataset.from_dict({"input_ids": rows, "labels": rows})
    batch, block = batches[0]["input_ids"].shape
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=batch, max_steps=len(batches), learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay, adam_beta2=0.95, max_grad_norm=cfg.grad_clip, lr_scheduler_type="cosine",
            warmup_steps=cfg.warmup_steps, logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True, seed=0,
        )
        times = _StepTimes()
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[times])
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
        trainer.train()
    tokens_per_step = batch * block
    return tokens_per_step * (len(batches) - warmup) / (times.times[-1] - times.times[warmup - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "mini", "small"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared machine, spinning threads of a busy core collapse)")
    parser.add_argument("--bf16", action="store_true", help="also time langadapt with bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also time langadapt with torch.compile")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time by this process's CPU seconds (fair on a shared machine)")
    parser.add_argument("--model", type=Path, help="a transformers model folder to time instead of the presets")
    parser.add_argument("--method", choices=["full", "lora"], default="full")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    if args.clock == "cpu":  # the loop, the Trainer callback and the bare loop all read this clock
        time.perf_counter = time.process_time

    docs = list(read_sample(LANGUAGES))
    if args.model:
        tokenizer = load_tokenizer(args.model / "tokenizer.json")
        eos = end_of_text(tokenizer)
    else:
        tokenizer = train_bpe([d.text for d in docs], 4000)
        eos = tokenizer.token_to_id(EOS)
    tokens = pack([d.text for d in docs], tokenizer, eos, 0)
    peak = matmul_peak()
    variants = {"langadapt": (run_langadapt, {}), "HF Trainer": (run_trainer, {}), "bare PyTorch": (run_bare, {})}
    if args.bf16:
        variants["langadapt bf16"] = (run_langadapt, {"precision": "bf16"})
    if args.compile:
        variants["langadapt compile"] = (run_langadapt, {"compile": True})

    print(f"# Training throughput — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, load average {psutil.getloadavg()[0]:.1f}")
    print("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "transformers", "accelerate")))
    print(f"fp32 matmul peak (1024², median of 20): {peak / 1e9:.1f} GFLOP/s")
    print(f"batch {args.batch_size} × block {args.block_size}, {args.steps} timed steps after {args.warmup}, "
          f"median of {args.repeats} repeats, vocab {tokenizer.get_vocab_size()}, method {args.method}, "
          f"{args.clock} clock\n")
    print("| preset | params | method | tokens/s | × Trainer | × bare | model FLOP/s | of peak | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in [args.model.name] if args.model else args.presets:
        base = (AutoModelForCausalLM.from_pretrained(args.model) if args.model else
                build_model(ModelConfig(preset=preset, block_size=args.block_size), tokenizer))
        params = sum(p.numel() for p in base.parameters())
        sampler = BlockSampler(tokens, args.block_size, args.batch_size, 0)
        batches = [sampler() for _ in range(args.warmup + args.steps)]
        results = {name: [] for name in variants}
        memory = {}
        for _ in range(args.repeats):
            for name, (run, options) in variants.items():
                cfg = TrainConfig(steps=len(batches), lr=1e-3, batch_size=args.batch_size, warmup_steps=2, **options)
                model = copy.deepcopy(base)
                if args.method == "lora":
                    model = with_lora(model, "peft" if name == "HF Trainer" else "langadapt")
                with PeakMemory() as mem:
                    results[name].append(run(model, batches, cfg, args.warmup))
                memory[name] = mem.rise_mb  # the last repeat: one-off imports and caches are done
        speed = {name: statistics.median(values) for name, values in results.items()}
        for name, tokens_per_s in speed.items():
            flops = (4 if args.method == "lora" else 6) * params * tokens_per_s  # frozen weights: no weight grads
            print(f"| {preset} | {params / 1e6:.2f}M | {name} | {tokens_per_s:,.0f} | "
                  f"{tokens_per_s / speed['HF Trainer']:.2f} | {tokens_per_s / speed['bare PyTorch']:.2f} | "
                  f"{flops / 1e9:.2f} G | {flops / peak:.1%} | {memory[name]:.0f} MB |")


if __name__ == "__main__":
    main()
