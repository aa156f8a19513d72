"""Tiny-LM finding: a committee of shallow classifiers vs one deeper classifier of the same width
(README "Sentence representations"), fine-tuned from scratch on SIB-200.

    # the data, once (into ~/.cache/langadapt/data, or $LANGADAPT_DATA):
    langadapt data get sib200 --languages kin_Latn
    PYTHONPATH=src python examples/committee_study.py --seeds 0 1 2

Per seed: `--members` 1-layer classifiers (each its own seed), one `--members`-layer classifier
(the same number of blocks) and one deep enough to match the committee's parameter count, all
trained by `langadapt train` with `task: {kind: sequence}` for the same steps on the same 701
sentences, with one shared BPE tokenizer. The committee averages its members' probabilities
(evaluate/committee.py). Each member carries its own embedding matrix, so at equal parameters
the single model gets several more blocks; the table gives the counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from transformers import AutoModelForSequenceClassification

from langadapt.config import parse_config
from langadapt.data.public import data_home, missing_data
from langadapt.data.sib200 import read_topics
from langadapt.evaluate.committee import Committee, parameter_count
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.train.classify import accuracy, encode, read_task
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import end_of_text, save_tokenizer, train_bpe

MODEL = {"arch": "gpt2", "n_embd": 64, "n_head": 2, "block_size": 64}


def job(args, tokenizer: Path, layers: int, seed: int) -> TrainJobConfig:
    return parse_config({
        "name": f"sib-{args.language}-{layers}layer-seed{seed}", "seed": seed, "output_dir": str(args.out),
        "model": {**MODEL, "n_layer": layers},
        "task": {"kind": "sequence", "data": str(args.data / "sib200"), "train_language": args.language,
                 "max_tokens": 64, "tokenizer": str(tokenizer)},
        "train": {"steps": args.steps, "batch_size": 16, "lr": 1e-3, "warmup_steps": 10, "checkpoint_every": 0},
    }, schema=TrainJobConfig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_home(), help="data home (`langadapt data get` fills it)")
    parser.add_argument("--out", type=Path, default=Path("runs/committee-study"))
    parser.add_argument("--language", default="kin_Latn")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if problem := missing_data({"sib200": [args.language]}, args.data):
        raise SystemExit(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    texts, _ = read_topics(args.data / "sib200", args.language, "train")
    tokenizer = train_bpe(texts, 2000)
    tokenizer_path = save_tokenizer(tokenizer, args.out / "tokenizer.json")
    one, two = (parameter_count(build_model(ModelConfig(**MODEL, n_layer=n), tokenizer))
                for n in (1, 2))
    block = two - one
    depth = round((args.members * one - (one - block)) / block)  # k × (E + B) = E + depth × B
    rows = []
    for seed in args.seeds:
        cfg = job(args, tokenizer_path, args.members, seed)
        _, tests, names = read_task(cfg.task)
        test = encode(cfg.task, tokenizer, tests[args.language], names)
        pad = end_of_text(tokenizer)
        deep = AutoModelForSequenceClassification.from_pretrained(run_train_job(cfg))
        equal = AutoModelForSequenceClassification.from_pretrained(run_train_job(job(args, tokenizer_path,
                                                                                     depth, seed)))
        shallow = [AutoModelForSequenceClassification.from_pretrained(run_train_job(job(args, tokenizer_path, 1,
                                                                                        100 * seed + i)))
                   for i in range(args.members)]
        candidates = {f"1 × {args.members}-layer": deep, f"1 × {depth}-layer (equal parameters)": equal,
                      "1 × 1-layer": shallow[0],
                      f"committee {args.members} × 1-layer": Committee(shallow)}
        for name, model in candidates.items():
            rows.append({"model": name, "seed": seed, "accuracy": accuracy(model, test, pad),
                         "parameters": parameter_count(model)})
            print(rows[-1], flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(args.out / "results.csv", index=False)
    table = results.groupby("model").agg(mean=("accuracy", "mean"), std=("accuracy", "std"),
                                         parameters=("parameters", "first")).round(3)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
