"""The expansion's payoff at inference: target-language bytes generated per second and tokens per
FLORES sentence, base vs adapted (expanded tokenizer), side by side in one process.

    PYTHONPATH=src python benchmarks/generation_speed.py --base RUN/base --adapted RUN/train/full/final \
        [--lang swh_Latn] [--prompts 16] [--new-tokens 48] [--threads 1]

Each model folder holds safetensors weights and its `tokenizer.json` (a run's `base/`, `init/<name>/`
or an adapted `final/`). Prompts are the first words of FLORES (SIB-200 test) sentences of
`--lang`; both models decode them greedily, batch 1 with the KV cache, exactly `--new-tokens` tokens
each (langadapt.evaluate.speed explains the budget), taking turns prompt by prompt. Tokens per
sentence are over every FLORES sentence of the language. Prints a table; never fails on a number.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from langadapt.data import sib200
from langadapt.evaluate.speed import generation_speed, greedy
from langadapt.model.build import load_model
from langadapt.report.tables import markdown_table
from langadapt.vocab.tokenizer import load_tokenizer

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--adapted", type=Path, required=True)
    parser.add_argument("--lang", default="swh_Latn")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--prompt-words", type=int, default=6, help="words of each FLORES sentence in its prompt")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = [row["text"] for row in sib200.read_split(DATA / "sib200", args.lang, "test", ("text",))]
    prompts = [" ".join(s.split()[: args.prompt_words]) for s in sentences[: args.prompts]]
    models = {name: (load_model(folder).eval(), load_tokenizer(folder / "tokenizer.json"))
              for name, folder in (("base", args.base), ("adapted", args.adapted))}
    rows = pd.DataFrame(generation_speed(models, prompts, sentences, args.new_tokens))
    print(f"# generation_speed: {args.lang}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.1f}; "
          + ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "transformers", "langadapt")))
    print(f"base: {args.base}\nadapted: {args.adapted}")
    print(f"{len(prompts)} prompts ({args.prompt_words} FLORES words each), greedy, batch 1, exactly "
          f"{args.new_tokens} new tokens per prompt; tokens/sentence over {len(sentences)} FLORES sentences\n")
    table = rows[["model", "tokens_per_sentence", "bytes_per_token", "tokens_per_s", "bytes_per_s", "seconds"]]
    print(markdown_table(table))
    base, adapted = rows.set_index("model").loc["base"], rows.set_index("model").loc["adapted"]
    print(f"\nadapted / base: bytes/s ×{adapted.bytes_per_s / base.bytes_per_s:.2f}, tokens/s "
          f"×{adapted.tokens_per_s / base.tokens_per_s:.2f}, tokens per sentence "
          f"×{adapted.tokens_per_sentence / base.tokens_per_sentence:.2f}")
    print("\nfirst continuation of each model:")
    for name, (model, tokenizer) in models.items():
        print(f"  {name}: {prompts[0]!r} → {tokenizer.decode(greedy(model, tokenizer, prompts[0], 24))!r}")


if __name__ == "__main__":
    main()
