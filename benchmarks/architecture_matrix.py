"""Every causal model type × adaptation method × export format, as a markdown table (docs/architectures.md).

The checks are the suite's own (tests/tiny_models.py): each model type in `CAUSAL_TYPES` is a tiny
random model at the shared test tokenizer's vocabulary, grown by the Upper Sorbian expansion
(mean-initialised rows), adapted with each method (`adapt`: stages trained a few steps on Sorbian
blocks, each exported to a stock model). A method is `ok` when the loss on those blocks fell and
the stock model gives the adapted model's loss (|Δ| ≤ 1e-4). Each adapted model is then saved with
the expanded tokenizer and exported: `hf`/`merged` are `ok` when the written folder loads with plain
`AutoModelForCausalLM` and gives the same logits (max |Δ| ≤ 1e-5), `gguf` (f16) when transformers'
GGUF loader reads the file back with the same ids and logits within 1e-2 (f16 weights: about 1e-3
of the logits' size; the largest |Δ| over the four methods is shown); a refusal shows langadapt's
reason. GGUF runs in the shape transformers'
loader reads back (tests/tiny_models.py GGUF_SHAPES: head_dim 128 for Qwen3, 256 for Gemma 2/3).

    python benchmarks/architecture_matrix.py              # ~2 min on 2 idle cores
    python benchmarks/architecture_matrix.py --types llama phi3

Prints the table (machine, versions, date); never fails on a number.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tiny_models import CAUSAL_TYPES, GGUF_SHAPES, METHODS, REFUSED, adapt, tiny_model  # noqa: E402

from langadapt.corpus.sources import read_sample  # noqa: E402
from langadapt.data.packing import pack  # noqa: E402
from langadapt.errors import LangadaptError  # noqa: E402
from langadapt.model.build import save_model  # noqa: E402
from langadapt.model.export import export_model  # noqa: E402
from langadapt.model.kind import require_causal  # noqa: E402
from langadapt.vocab.expand import expand_bpe  # noqa: E402
from langadapt.vocab.init import resize_and_init  # noqa: E402
from langadapt.vocab.tokenizer import as_transformers, end_of_text, train_bpe  # noqa: E402

FORMATS = ("hf", "merged", "gguf")


def _corpus():
    """The suite's `tokenizers` and matrix corpus: ces+pol tokenizer expanded by hsb, 8 Sorbian blocks."""
    docs = list(read_sample(["ces_Latn", "pol_Latn", "hsb_Latn"]))
    sorbian = [d.text for d in docs if d.lang == "hsb_Latn"]
    source = train_bpe([d.text for d in docs if d.lang != "hsb_Latn"], 800)
    expansion = expand_bpe(source, train_bpe(sorbian, 600), 200)
    eos = end_of_text(expansion.tokenizer)
    tokens = pack(sorbian, expansion.tokenizer, eos, 0)[: 8 * 33]
    return expansion, tokens, torch.tensor(tokens.astype("int64")).view(8, 33), eos, sorbian[-20:]


def _exported(model, tokenizer, to: str, tmp: Path, texts: list[str]) -> tuple[bool, float | str]:
    """(ok, max |Δlogit| or the refusal) for one export of `model`."""
    folder = save_model(model, tokenizer, tmp / "adapted")
    try:
        done = export_model(folder, to, tmp / ("out.gguf" if to == "gguf" else to), "f16", check_texts=texts)
    except LangadaptError as err:
        return False, err.what.split(" to GGUF: ")[-1]
    if to == "gguf":
        return done.check.same_ids and done.check.max_abs_logit_diff < 1e-2, done.check.max_abs_logit_diff
    ids = torch.tensor([AutoTokenizer.from_pretrained(done.path)(" ".join(texts)).input_ids[:64]])
    with torch.no_grad():
        delta = (AutoModelForCausalLM.from_pretrained(done.path).eval()(ids).logits - model(ids).logits).abs().max()
    return delta.item() <= 1e-5, delta.item()


def row(model_type: str, corpus, tmp: Path) -> list[str]:
    expansion, tokens, blocks, eos, texts = corpus
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    tokenizer = as_transformers(expansion.tokenizer)
    methods, exports = [], {to: [] for to in FORMATS}
    for method in METHODS:
        model = tiny_model(model_type, expansion.first_new_id, eos, **GGUF_SHAPES.get(model_type, {}))
        resize_and_init(model, expansion.pieces, "mean", seed=0)
        try:
            done = adapt(model.eval(), method, tokens, blocks, new_ids, tmp)
        except LangadaptError as err:
            methods.append(f"refused: {err.what}")
            continue
        good = done.trained < done.before and abs(done.exported - done.trained) <= 1e-4
        methods.append(f"ok ({done.before:.2f}→{done.trained:.2f})" if good else
                       f"FAILED (loss {done.before:.3f}→{done.trained:.3f}, exported {done.exported:.3f})")
        for to in FORMATS:
            with tempfile.TemporaryDirectory(dir=tmp) as out:
                exports[to].append(_exported(done.model.eval(), tokenizer, to, Path(out), texts))
    cells = []
    for to in FORMATS:
        results = exports[to]
        if results and all(ok for ok, _ in results):
            cells.append(f"ok (max Δ {max(value for _, value in results):.1e})")
        else:
            reasons = sorted({str(value) for ok, value in results if not ok})
            cells.append(("refused: " if all(isinstance(value, str) for _, value in results) else "FAILED: ") +
                         "; ".join(reasons) if reasons else "not run")
    return [model_type, *methods, *cells]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", nargs="+", default=list(CAUSAL_TYPES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    corpus = _corpus()
    lines = [f"| model type | {' | '.join(METHODS)} | {' | '.join(f'export {to}' for to in FORMATS)} |",
             "|" + "---|" * (1 + len(METHODS) + len(FORMATS))]
    with tempfile.TemporaryDirectory() as tmp:
        for model_type in args.types:
            cells = row(model_type, corpus, Path(tmp))
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    for model_type in REFUSED:  # no causal LM in them: refused from the config, before any method runs
        try:
            require_causal(AutoConfig.for_model(model_type), "base model")
            reason = "FAILED: accepted as a causal base"
        except LangadaptError as err:
            reason = f"refused: {err.what}"
        lines.append(f"| {model_type} | " + " | ".join([reason] * len(METHODS)) +
                     " | " + " | ".join(["—"] * len(FORMATS)) + " |")
    print(f"# Architecture matrix — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.processor() or platform.machine()}, torch {version('torch')} "
          f"({torch.get_num_threads()} thread), transformers {version('transformers')}, gguf {version('gguf')}; "
          f"{time.perf_counter() - started:.0f} s\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
