"""CCP vs LM-only at equal steps, scored by sentence retrieval (README "Sentence representations").

    # the data, once (into ~/.cache/langadapt/data, or $LANGADAPT_DATA):
    langadapt data get ntrex128 --languages deu,fra && langadapt data get tatoeba --languages deu,fra
    PYTHONPATH=src python examples/ccp_study.py --steps 200 --seeds 0 1 2

Each language's NTREX-128 lines (news articles, in order) are cut into documents of `--doc-lines`
consecutive lines (NTREX marks no article boundaries, so a few documents straddle two articles);
the last `--heldout` lines are kept out of training. Four tiny GPT-2 models per seed, same
data, same steps: `causal` (LM only), `ccp` (contrastive only, memory bank of 256 per language),
`ccp-nobank` (in-batch negatives only) and `ccp+lm` (joint, weight 1).
Scores: retrieval accuracy (both directions, averaged) on the held-out NTREX lines for every
language pair (non-English pairs included) and on Tatoeba xxx–eng, plus the variance of the
unit-length sentence embeddings (near 0 means collapse) and how many of the 64 directions carry
it (effective dimensions). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from langadapt.config import parse_config
from langadapt.corpus.document import read_lines
from langadapt.evaluate.embed import mean_pooled
from langadapt.evaluate.retrieval import (
    effective_dimensions,
    embedding_variance,
    lexical_retrieval,
    retrieval_accuracy,
)
from langadapt.model.build import load_model
from langadapt.public_data import data_home, missing_data
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import load_tokenizer

NTREX = {"eng": "newstest2019-src.eng.txt", "deu": "newstest2019-ref.deu.txt", "fra": "newstest2019-ref.fra.txt"}
# name: (train.objective, the `ccp:` section); `ccp` is the paper's method (memory bank of 256)
OBJECTIVES = {"causal": ("causal", {}), "ccp": ("ccp", {"bank_size": 256}), "ccp-nobank": ("ccp", {"bank_size": 0}),
              "ccp+lm": ("ccp", {"bank_size": 256, "lm_weight": 1.0})}


def write_documents(data: Path, out: Path, languages: list[str], doc_lines: int, heldout: int) -> Path:
    path = out / "documents.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for language in languages:
            lines = read_lines(data / "ntrex128" / NTREX[language])[:-heldout]
            for start in range(0, len(lines), doc_lines):
                text = "\n".join(lines[start : start + doc_lines])
                handle.write(json.dumps({"id": f"{language}-{start}", "text": text, "lang": language}) + "\n")
    return path


def job(name: str, objective: str, documents: Path, out: Path, seed: int, steps: int, lr: float) -> TrainJobConfig:
    return parse_config({
        "name": f"{name}-seed{seed}", "seed": seed, "output_dir": str(out),
        "model": {"arch": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 64},
        "data": {"vocab_size": 2000, "sources": [{"name": "ntrex", "format": "jsonl", "files": [str(documents)]}]},
        "train": {"steps": steps, "batch_size": 32, "lr": lr, "warmup_steps": 10, "checkpoint_every": 0,
                  "objective": OBJECTIVES[objective][0]},
        "ccp": {"window": 2, **OBJECTIVES[objective][1]},
    }, schema=TrainJobConfig)


def test_pairs(data: Path, languages: list[str], heldout: int, tatoeba: int) -> dict[str, tuple[list[str], list[str]]]:
    """Held-out NTREX lines for every language pair, and the first Tatoeba pairs of each xxx–eng."""
    held = {lang: read_lines(data / "ntrex128" / NTREX[lang])[-heldout:] for lang in languages}
    pairs = {f"ntrex {left}-{right}": (held[left], held[right]) for left, right in itertools.combinations(languages, 2)}
    for lang in (lang for lang in languages if lang != "eng"):
        base = data / "tatoeba" / f"tatoeba.{lang}-eng"
        pairs[f"tatoeba {lang}-eng"] = tuple(read_lines(Path(f"{base}.{side}"))[:tatoeba] for side in (lang, "eng"))
    return pairs


def score(model, tokenizer, data: Path, languages: list[str], heldout: int, tatoeba: int) -> dict[str, float]:
    pairs = test_pairs(data, languages, heldout, tatoeba)
    scores = {name: float(np.mean(list(retrieval_accuracy(model, tokenizer, *pair).values())))
              for name, pair in pairs.items()}
    held = {lang: read_lines(data / "ntrex128" / NTREX[lang])[-heldout:] for lang in languages}
    vectors = np.concatenate([mean_pooled(model, tokenizer, texts) for texts in held.values()])
    scores["embedding variance"] = embedding_variance(vectors)
    scores["effective dimensions"] = effective_dimensions(vectors)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_home(), help="data home (`langadapt data get` fills it)")
    parser.add_argument("--out", type=Path, default=Path("runs/ccp-study"))
    parser.add_argument("--languages", nargs="+", default=["eng", "deu", "fra"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-2, help="every objective's (CCP slows the layers to 1%% of it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--doc-lines", type=int, default=8)
    parser.add_argument("--heldout", type=int, default=300)
    parser.add_argument("--tatoeba", type=int, default=500, help="first N Tatoeba pairs per language")
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES))
    args = parser.parse_args()
    others = [language for language in args.languages if language != "eng"]
    if problem := missing_data({"ntrex128": others, "tatoeba": others}, args.data):
        raise SystemExit(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    documents = write_documents(args.data, args.out, args.languages, args.doc_lines, args.heldout)
    rows = []
    for seed, objective in itertools.product(args.seeds, ["untrained", *args.objectives]):
        cfg = job(objective if objective != "untrained" else "causal", "causal" if objective == "untrained"
                  else objective, documents, args.out, seed, 1 if objective == "untrained" else args.steps, args.lr)
        if objective == "untrained":  # the same architecture and tokenizer, one step away from its random init
            cfg = cfg.model_copy(update={"name": f"untrained-seed{seed}"})
        final = run_train_job(cfg)  # a finished job (same --out) is only scored again
        tokenizer = load_tokenizer(final.parent / "tokenizer.json")
        scores = score(load_model(final), tokenizer, args.data, args.languages, args.heldout, args.tatoeba)
        if objective == "untrained":  # the same tokenizer, no model: the lexical reference row
            pairs = test_pairs(args.data, args.languages, args.heldout, args.tatoeba)
            rows += [{"objective": "tf-idf", "seed": seed, "metric": name,
                      "value": float(np.mean(list(lexical_retrieval(tokenizer, *pair).values())))}
                     for name, pair in pairs.items()]
        rows += [{"objective": objective, "seed": seed, "metric": metric, "value": value}
                 for metric, value in scores.items()]
        print(objective, seed, {k: round(v, 3) for k, v in scores.items()}, flush=True)
    table = pd.DataFrame(rows).groupby(["metric", "objective"]).value.agg(["mean", "std"]).unstack("objective")
    (args.out / "results.csv").write_text(pd.DataFrame(rows).to_csv(index=False))
    print(table.round(3).to_markdown())


if __name__ == "__main__":
    main()
