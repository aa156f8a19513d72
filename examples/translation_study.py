"""Two translation studies at tiny scale, on SIB-200 (FLORES) sentences, chrF per direction:

- `lingala`: the Lingala paper's question. Tiny GPT-2s pretrained on monolingual text only
  (eng, lin, swh, kin) vs monolingual + parallel text (the same sentences, plus English–X pairs
  as bilingual documents), each then fine-tuned to translate eng↔lin.
- `merging`: direction groups (the asymmetric-conflict paper). One base pretrained on the four
  languages' monolingual text; LoRA fine-tuned on every direction jointly, on each direction alone,
  and per group (into English: swh/kin/lin→eng; out of English: eng→swh/kin/lin); the two group
  adapters merged (linear, TIES). Conflict/synergy = chrF(joint) − chrF(single direction).

    PYTHONPATH=src python examples/translation_study.py lingala|merging [--steps 200] [--seeds 0,1]
        [--sentences 60] [--batch 16] [--layers 2] [--width 64] [--vocab 1000] [--decode-batch 16]
        [--precision fp32|bf16] [--out runs/translation-study]

Data, once: `langadapt data get sib200 --languages eng_Latn,lin_Latn,swh_Latn,kin_Latn`. Training:
SIB-200 train split; scoring: the first `--sentences` sentences of the test split.
Prints markdown tables (mean over seeds ± half the range).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_with
from langadapt.config import parse_config
from langadapt.data.public import data_home, missing_data
from langadapt.evaluate.suite import EvalRequest, evaluate_model
from langadapt.model.merge import merge_adapters
from langadapt.report.tables import conflict_synergy, markdown_table, over_seeds
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job

SIB = data_home() / "sib200"  # LANGADAPT_DATA, else ~/.cache/langadapt/data
LANGS = ["eng_Latn", "lin_Latn", "swh_Latn", "kin_Latn"]
NAMES = {"eng_Latn": "English", "lin_Latn": "Lingala", "swh_Latn": "Swahili", "kin_Latn": "Kinyarwanda"}


def train(args, name: str, seed: int, sources: list[dict], init_from: Path | None = None, method: str = "full",
          lr: float = 3e-3) -> Path:
    """One training job of `args.steps` steps at batch `args.batch` in `args.out`; its final folder."""
    data = {"sources": sources, "vocab_size": args.vocab}
    model = {"n_layer": args.layers, "n_embd": args.width, "n_head": max(2, args.width // 64), "block_size": 96}
    job = {"name": name, "seed": seed, "output_dir": str(args.out), "data": data, "method": method, "model": model,
           "train": {"steps": args.steps, "batch_size": args.batch, "lr": lr, "warmup_steps": 10, "checkpoint_every": 0,
                     "eval_every": 100000, "precision": args.precision}, "lora": {"r": 8, "alpha": 16}}
    if init_from is not None:  # the sampler's windows (model.block_size) must fit the base's positions
        job["init_from"] = str(init_from)
    return run_train_job(parse_config(job, name, TrainJobConfig))


def mono(langs: list[str]) -> dict:
    return {"name": "mono", "format": "text", "files": [str(SIB / lang / "train.tsv") for lang in langs]}


def parallel(lang: str) -> dict:
    return {"name": f"par-{lang}", "format": "parallel", "parallel_as": "pairs", "weight": 0.5,
            "files": [str(SIB / "eng_Latn" / "train.tsv"), str(SIB / lang / "train.tsv")]}


def translation(name: str, directions: list[str]) -> dict:
    langs = sorted({code for d in directions for code in d.split("-")}, key=LANGS.index)
    return {"name": name, "format": "translation", "files": [str(SIB)], "languages": langs,
            "translation": {"directions": directions, "names": NAMES}}


def score(args, name: str, folder: Path, directions: list[str]) -> list[dict]:
    request = EvalRequest(translation={d: (SIB / d.split("-")[0] / "test.tsv", SIB / d.split("-")[1] / "test.tsv")
                                       for d in directions}, limit=args.sentences, max_new_tokens=64,
                          batch_size=args.decode_batch, outputs_dir=args.out / "translations")
    return evaluate_model(name, folder, request)


def save(args, rows: list[dict]) -> None:
    """Every row so far, after each seed: a stopped study keeps what it measured."""
    table = pd.DataFrame(rows)
    write_with(args.out / f"{args.study}-results.csv", lambda tmp: table.to_csv(tmp, index=False))


def lingala(args) -> None:
    directions = ["eng_Latn-lin_Latn", "lin_Latn-eng_Latn"]
    rows = []
    for seed in args.seeds:
        for variant, sources in {"mono": [mono(LANGS)],
                                 "mono+parallel": [mono(LANGS), *(parallel(lang) for lang in LANGS[1:])]}.items():
            base = train(args, f"ling-{variant}-s{seed}", seed, sources)
            tuned = train(args, f"ling-{variant}-mt-s{seed}", seed, [translation("mt", directions)], base,
                          lr=1e-3)
            rows += [{**r, "model": variant, "seed": seed} for r in score(args, variant, tuned, directions)]
            save(args, rows)
    print(markdown_table(over_seeds(rows, ["mono", "mono+parallel"])))


def merging(args) -> None:
    into = [f"{lang}-eng_Latn" for lang in LANGS[1:]]
    out_of = [f"eng_Latn-{lang}" for lang in LANGS[1:]]
    directions = into + out_of
    order = ["joint", "single", "into-eng", "out-of-eng", "merge-linear", "merge-ties"]
    rows, deltas = [], []
    for seed in args.seeds:
        base = train(args, f"merge-base-s{seed}", seed, [mono(LANGS)])
        folders = {"joint": train(args, f"merge-joint-s{seed}", seed, [translation("mt", directions)], base,
                                  "lora")}
        groups = {group: train(args, f"merge-{group}-s{seed}", seed, [translation("mt", ds)], base, "lora")
                  for group, ds in {"into-eng": into, "out-of-eng": out_of}.items()}
        folders.update(groups)
        adapters = {group: folder.parent / "adapter" for group, folder in groups.items()}
        card = {"template": "{source_lang}: {source}\n{target_lang}:", "names": NAMES, "directions": directions}
        for how in ("linear", "ties"):
            folders[f"merge-{how}"] = merge_adapters(base, adapters, {"into-eng": 1.0, "out-of-eng": 1.0},
                                                     args.out / f"merge-{how}-s{seed}", how, density=0.5,
                                                     translation=card)
        results = []
        for name, folder in folders.items():
            results += score(args, name, folder, directions)
        for direction in directions:  # each direction alone: the "single" model of that direction
            folder = train(args, f"merge-single-{direction}-s{seed}", seed, [translation("mt", [direction])],
                           base, "lora")
            results += score(args, f"single:{direction}", folder, [direction])
            save(args, rows + results)
        frame = pd.DataFrame(results)
        deltas.append(conflict_synergy(frame, "joint", {d: f"single:{d}" for d in directions}).assign(seed=seed))
        rows += [{**r, "model": "single" if r["run"].startswith("single:") else r["run"], "seed": seed}
                 for r in results]
        save(args, rows)
    print(markdown_table(over_seeds(rows, order)))
    print()
    delta = pd.concat(deltas).groupby("direction", sort=False)["joint − single"].agg(["mean", "min", "max"])
    print(markdown_table(delta.reset_index().rename(columns={"mean": "joint − single (mean)"})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=["lingala", "merging"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=64, help="hidden size (one attention head per 64)")
    parser.add_argument("--vocab", type=int, default=1000, help="BPE tokens")
    parser.add_argument("--decode-batch", type=int, default=16, help="sentences decoded together")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--out", type=Path, default=Path("runs/translation-study"))
    args = parser.parse_args()
    if problem := missing_data({"sib200": LANGS}):
        raise SystemExit(problem)
    {"lingala": lingala, "merging": merging}[args.study](args)


if __name__ == "__main__":
    main()
