"""Maltese BERTu at small scale: a masked LM pretrained on growing amounts of Maltese news, scored
by UD Maltese POS tagging, fine-tuned and frozen (README "Sentence representations").

    # the data, once (into ~/.cache/langadapt/data, or $LANGADAPT_DATA):
    langadapt data get ntrex128 --languages mlt && langadapt data get ud_maltese
    PYTHONPATH=src python examples/maltese_study.py --sizes 0 50000 200000 --seeds 0

Per data size (UTF-8 bytes of NTREX-128 Maltese; 0 = one step from the random init, the baseline)
and seed: `langadapt train` pretrains a tiny BERT (`train.objective: masked`), then
`task: {kind: token}` fine-tunes a POS head on `--pos-limit` training sentences of `ud_maltese`,
and the frozen linear POS probe (evaluate/probes.py) reads the pretrained states.
Both are scored on the treebank's test file. NTREX is one domain (news), so the sweep is over
size only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from langadapt.config import parse_config
from langadapt.evaluate.probes import ProbeTask
from langadapt.model.build import load_model
from langadapt.public_data import data_home, missing_data
from langadapt.registry import PROBES
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import load_tokenizer

MODEL = {"arch": "bert", "n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 64}


def pretrain(args, size: int, seed: int) -> Path:
    cfg = parse_config({
        "name": f"mlm-mlt-{size}-seed{seed}", "seed": seed, "output_dir": str(args.out), "model": MODEL,
        "data": {"vocab_size": 2000, "sources": [{
            "name": "ntrex", "format": "text", "max_bytes": size or None,
            "files": [str(args.data / "ntrex128" / "newstest2019-ref.mlt.txt")]}]},
        "train": {"steps": args.pretrain_steps if size else 1, "batch_size": 16, "lr": 1e-3, "warmup_steps": 20,
                  "checkpoint_every": 0, "objective": "masked"},
    }, schema=TrainJobConfig)
    return run_train_job(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_home(), help="data home (`langadapt data get` fills it)")
    parser.add_argument("--out", type=Path, default=Path("runs/maltese-study"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 50_000, 200_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--pos-limit", type=int, default=300)
    args = parser.parse_args()
    if problem := missing_data({"ntrex128": ["mlt"], "ud_maltese": []}, args.data):
        raise SystemExit(problem)
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            base = pretrain(args, size, seed)
            probe = PROBES["pos"](load_model(base), load_tokenizer(base.parent / "tokenizer.json"),
                                  ProbeTask(args.data / "ud_maltese", "mlt_Latn", limit=args.pos_limit))
            cfg = parse_config({
                "name": f"pos-mlt-{size}-seed{seed}", "seed": seed, "output_dir": str(args.out), "model": MODEL,
                "init_from": str(base),
                "task": {"kind": "token", "data": str(args.data / "ud_maltese"), "train_language": "mlt_Latn",
                         "limit": args.pos_limit, "max_tokens": 64},
                "train": {"steps": args.steps, "batch_size": 16, "lr": 1e-3, "warmup_steps": 10,
                          "checkpoint_every": 0},
            }, schema=TrainJobConfig)
            tuned = pd.read_parquet(run_train_job(cfg).parent / "results.parquet").value.iloc[0]
            rows += [{"bytes": size, "seed": seed, "score": "POS fine-tuned", "accuracy": tuned},
                     {"bytes": size, "seed": seed, "score": "POS frozen probe", "accuracy": probe[0]["value"]}]
            print(rows[-2:], flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(args.out / "results.csv", index=False)
    print(results.groupby(["bytes", "score"]).accuracy.agg(["mean", "std", "count"]).round(3).to_markdown())


if __name__ == "__main__":
    main()
