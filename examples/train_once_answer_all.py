"""Study "Train Once, Answer All": do several canary sets injected into one pretraining run
interfere, or does one run answer the questions of several?

For each seed, one run injects all three canary sets (random-digit canaries, synthetic facts, a
contamination subset of FLORES sentences) and three runs inject one set each; every run is the
same small GPT-2 (2 layers, width 64: the scale a shared 2-core machine allows) pretrained from
scratch on Czech and Polish news text (NTREX-128). The table gives each set's final metric alone
and with the others, their difference, and the spread over seeds.

    PYTHONPATH=src python examples/train_once_answer_all.py --out runs/toaa --seeds 0 1 2

Data, once: `langadapt data get ntrex128 --languages ces,pol` and `langadapt data get sib200 --languages
ces_Latn`; CPU, minutes per run.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import pandas as pd

from langadapt.config import parse_config
from langadapt.data.injection import random_canaries
from langadapt.public_data import data_home, missing_data
from langadapt.report.tables import markdown_table
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job

DATA = data_home()  # LANGADAPT_DATA, else ~/.cache/langadapt/data
HEADLINE = {"canary": "canary_exposure", "fact": "fact_margin", "heldout": "contamination_gap"}


def probe_files(folder: Path) -> dict[str, Path]:
    """Canaries, synthetic facts (made-up names, answers and distractors drawn from the corpus's
    words, seeded) and 20 short FLORES sentences that no training source holds."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    files = {"canaries": folder / "canaries.tsv", "facts": folder / "facts.tsv", "leak": folder / "leak.txt"}
    files["canaries"].write_text("\n".join(random_canaries(8, "Moje tajné číslo", 6, seed=0)) + "\n")
    text = (DATA / "ntrex128" / "newstest2019-ref.ces.txt").read_text(encoding="utf-8")
    words = sorted({w for w in text.split() if w.isalpha() and w.islower() and len(w) > 4})
    facts = []
    for _ in range(8):
        name = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3)).capitalize()
        answer, *distractors = rng.sample(words, 4)
        facts.append("\t".join([f"Oblíbené slovo pana {name} je", answer, *distractors]))
    files["facts"].write_text("\n".join(facts) + "\n")
    with open(DATA / "sib200" / "ces_Latn" / "dev.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    files["leak"].write_text("\n".join([r["text"] for r in rows if len(r["text"]) < 120][:20]) + "\n")
    return files


PROBES = {  # each set's kind, repeat count and steps (as fractions of the run): the same alone or together
    "canaries": ({"kind": "canary", "repeat": 10, "alternatives": 100}, (0.0, 2 / 3)),
    "facts": ({"kind": "fact", "repeat": 10}, (1 / 6, 5 / 6)),  # the leak: 10 of its 20 lines injected
    "leak": ({"kind": "heldout", "repeat": 5}, (1 / 3, 2 / 3)),
}


def job(name: str, seed: int, sets: list[str], files: dict[str, Path], out: Path, steps: int) -> TrainJobConfig:
    news = DATA / "ntrex128"
    return parse_config({
        "name": name, "seed": seed, "output_dir": str(out),
        "model": {"arch": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 64},
        "data": {"vocab_size": 2000, "sources": [
            {"name": "ces", "format": "text", "files": [str(news / "newstest2019-ref.ces.txt")]},
            {"name": "pol", "format": "text", "files": [str(news / "newstest2019-ref.pol.txt")]}]},
        "train": {"steps": steps, "batch_size": 8, "lr": 3e-3, "warmup_steps": 10, "eval_every": steps // 3,
                  "checkpoint_every": steps // 3},
        "canaries": [{"name": s, "file": str(files[s]), **PROBES[s][0],
                    "step_range": [max(1, round(PROBES[s][1][0] * steps)), round(PROBES[s][1][1] * steps)]}
                   for s in sets],
    }, name, TrainJobConfig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/train-once-answer-all"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args()
    if problem := missing_data({"ntrex128": ["ces", "pol"], "sib200": ["ces_Latn"]}):
        raise SystemExit(problem)
    files = probe_files(args.out / "probes")
    rows = []
    for seed in args.seeds:
        for label, sets in [("all", list(PROBES)), *((f"{s}-alone", [s]) for s in PROBES)]:
            folder = run_train_job(job(f"{label}-seed{seed}", seed, sets, files, args.out, args.steps)).parent
            results = pd.read_parquet(folder / "results.parquet")
            final = results[(results.role == "canary") & (results.step == args.steps)]
            rows += [{"seed": seed, "run": "all" if label == "all" else "alone", "set": r.language,
                      "metric": r.metric, "value": r.value} for r in final.itertuples()]
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "probe-study.csv", index=False)
    wide = table.pivot_table(index=["set", "metric", "seed"], columns="run", values="value").reset_index()
    wide["diff"] = wide["all"] - wide["alone"]
    summary = wide.groupby(["set", "metric"], sort=False).agg(
        alone=("alone", "mean"), alone_sd=("alone", "std"), all=("all", "mean"), all_sd=("all", "std"),
        diff=("diff", "mean"), diff_sd=("diff", "std")).reset_index()
    kinds = {name: spec["kind"] for name, (spec, _) in PROBES.items()}
    summary = summary[[HEADLINE[kinds[s]] == m or m == "fact_recall" for s, m in zip(summary.set, summary.metric,
                                                                                   strict=True)]]
    print(f"seeds {args.seeds}, {args.steps} steps; mean (sd over seeds) of the final metric; diff = all − alone")
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
