"""The issue's done-when: a current Gemma 3, Qwen3 and Phi-3-style model adapts through `langadapt run`
and the result exports to a GGUF file that reloads with the same predictions.

Each base is a tiny random model of the type (tests/tiny_models.py, in the shape transformers' GGUF
loader reads back) saved with a byte-level BPE tokenizer trained on the Czech and Polish sample text;
the experiment expands that tokenizer for Upper Sorbian, adapts with `embeddings+layra` and exports
GGUF f16. The test reloads the exported file itself and compares it with the adapted model folder on
the run's held-out Sorbian text: same ids, same next-token predictions, logits within f16 tolerance.
"""

import json

import pytest
import torch
import yaml
from test_pipeline import TINY
from tiny_models import GGUF_SHAPES, tiny_model
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.model.build import save_model
from langadapt.vocab.tokenizer import end_of_text, train_bpe

pytest.importorskip("gguf", reason="pip install 'langadapt[gguf]' (gguf==0.19.0)")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

METHOD = "embeddings+layra"


@pytest.fixture(scope="module")
def source_tokenizer(sample_docs):
    return train_bpe([d.text for d in sample_docs if d.lang != "hsb_Latn"], 700)


def _run(model_type: str, tokenizer, tmp_path):
    base = save_model(tiny_model(model_type, tokenizer.get_vocab_size(), end_of_text(tokenizer),
                                 **GGUF_SHAPES[model_type]), tokenizer, tmp_path / f"tiny-{model_type}")
    config = {**{k: v for k, v in TINY.items() if k != "pretrain"}, "name": model_type,
              "output_dir": str(tmp_path / "runs"), "base": {"model": str(base)},
              "adapt": {**TINY["adapt"], "methods": [METHOD], "lr": 1e-2},
              "vocab": {**TINY["vocab"], "initialisers": ["subword-mean"]},
              "export": {"to": ["gguf"], "quant": "f16"}}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "experiment.yaml")])
    assert result.exit_code == 0, result.output
    return next((tmp_path / "runs").glob(f"{model_type}*/export/export.json")).parents[1]


def _held_out(folder) -> list[str]:
    rows = [json.loads(line) for line in (folder / "corpus" / "heldout.jsonl").read_text().splitlines()]
    return [row["text"] for row in rows if row["lang"] == "hsb_Latn"][:20]


@pytest.mark.parametrize("model_type", ["gemma3_text", pytest.param("qwen3", marks=pytest.mark.slow),
                                        pytest.param("phi3", marks=pytest.mark.slow)])
def test_a_current_model_adapts_through_run_and_its_gguf_predicts_the_same(model_type, source_tokenizer, tmp_path):
    folder = _run(model_type, source_tokenizer, tmp_path)
    summary = json.loads((folder / "export" / "export.json").read_text())
    assert summary["method"] == METHOD and summary["files"]["gguf"]["same_ids"]
    gguf = folder / summary["files"]["gguf"]["path"]
    adapted = folder / "train" / METHOD / "final"
    texts = _held_out(folder)
    ours = AutoTokenizer.from_pretrained(adapted)
    theirs = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ids = [ours(text).input_ids for text in texts]
    assert ids == [theirs(text).input_ids for text in texts]
    new_ids = json.loads((adapted / "langadapt.json").read_text())["new_ids"]
    flat = [i for row in ids for i in row]
    assert len(set(flat) & set(new_ids)) >= 10  # the expansion's tokens are in the text, with the same ids
    reference = AutoModelForCausalLM.from_pretrained(adapted, dtype=torch.float32).eval()
    reloaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    assert reloaded.config.model_type == model_type and reloaded.config.vocab_size > source_tokenizer.get_vocab_size()
    batch = torch.tensor([flat[: reference.config.max_position_embeddings]])
    with torch.no_grad():
        expected, found = reference(batch).logits, reloaded(batch).logits
    delta = (expected - found).abs().max().item()
    print(f"{model_type}: {batch.shape[1]} held-out tokens, max |Δlogit| {delta:.2e}, "
          f"top-1 agreement {(expected.argmax(-1) == found.argmax(-1)).float().mean().item():.1%}")
    assert delta < 5e-3 and torch.equal(expected.argmax(-1), found.argmax(-1))
