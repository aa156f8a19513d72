"""The `embeddings` stage's learning rate on a prepared run (e.g. SmolLM2 → Swahili): training loss
per step and dev bpb after a few steps training only the new rows, one run per rate.

    PYTHONPATH=src python benchmarks/embeddings_lr.py --config examples/adapt-smollm2-auto.yaml \
        --folder runs/bench-auto/auto.incomplete --lrs 0.01 0.001 --steps 8 [--warmup 3] [--threads 1]

`--folder` is a run prepared up to `init` (benchmarks/adapt_real.py prepares one) whose config chooses
on dev text (an `auto` vocab key), so `vocab/dev.json` names the dev documents. Training reads the
target's training documents *without* the dev ones and starts from the initialiser the run chose;
the score is dev bpb, never the held-out FLORES text, so a rate chosen here is not tuned on the test
split. Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch

from langadapt.atomic import write_jsonl, write_text
from langadapt.config import load_config
from langadapt.corpus.document import read_documents
from langadapt.data.config import SourceConfig
from langadapt.experiment.adaptation import adaptation_job
from langadapt.experiment.corpus_text import TRAIN_FILE
from langadapt.experiment.pipeline import compile_stages
from langadapt.experiment.stages import inputs_of
from langadapt.report.tables import markdown_table
from langadapt.train.job import run_train_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, folder = load_config(args.config), args.folder.resolve()
    target = cfg.languages.target
    dev = set(json.loads((folder / "vocab" / "dev.json").read_text(encoding="utf-8"))["ids"])
    inputs = inputs_of(compile_stages(cfg), f"adapt:{cfg.adapt.methods[0]}", folder)  # its stage folders
    docs = [doc for doc in read_documents(inputs["corpus"] / TRAIN_FILE) if doc.lang == target]
    bench = folder / "bench"
    write_jsonl(bench / "fit.jsonl", [doc.to_dict() for doc in docs if doc.id not in dev])
    write_text(bench / "dev.txt", "".join(" ".join(doc.text.split()) + "\n" for doc in docs if doc.id in dev))
    rows = []
    for lr in args.lrs:
        adapt = cfg.adapt.model_copy(update={"steps": args.steps, "warmup_steps": args.warmup, "eval_every": 10**6,
                                             "checkpoint_every": 0, "phase_lr": {"embeddings": lr}})
        job = adaptation_job(cfg.model_copy(update={"adapt": adapt}), "embeddings", inputs,
                             bench / f"embeddings-lr{lr:g}-{args.steps}")
        job = job.model_copy(update={"data": job.data.model_copy(update={
            "sources": [SourceConfig(name="target", files=[bench / "fit.jsonl"])],
            "eval_files": {target: bench / "dev.txt"}})})
        out = run_train_job(job).parent
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
        losses = [record["loss"] for record in log if record.get("loss") is not None]
        scores = pd.read_parquet(out / "results.parquet").query("role == 'eval' and metric == 'bpb'")
        rows.append({"lr": lr, "steps": args.steps, "warmup": args.warmup, "loss first": losses[0],
                     "loss max": max(losses), "loss last": losses[-1],
                     "losses": " ".join(f"{x:.2f}" for x in losses), "dev bpb": float(scores.value.iloc[0])})
    print(f"# embeddings_lr: {folder.name} → {target}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{len(dev)} dev documents; training on {len(docs) - len(dev)} (dev held out)\n")
    print(markdown_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
