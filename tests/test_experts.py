"""Per-language experts on GPT-2 and Llama: frozen base, routing by language token, stock export."""

import copy

import pytest
import torch
import yaml

from langadapt.config import load_config
from langadapt.data.mixing import add_control_tokens, control_token, with_control_tokens
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.adapters import export
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.model.experts import route_by_language
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import train
from langadapt.train.objectives import causal_lm
from langadapt.vocab.tokenizer import EOS, train_bpe

LANGS = ["pol_Latn", "hsb_Latn"]
SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}
LORA = LoraConfig(expert_hidden=16, expert_languages=LANGS)


@pytest.fixture(scope="module")
def data(sample_docs):
    """A tokenizer with the `<|lang=…|>` tokens, and Polish and Sorbian documents that start with them."""
    docs = [d for d in sample_docs if d.lang in LANGS]
    texts = list(with_control_tokens(docs, ["lang"]))
    tokenizer = train_bpe([d.text for d in docs], 600)
    add_control_tokens(tokenizer, texts)
    return tokenizer, {lang: [d.text for d in docs if d.lang == lang] for lang in LANGS}, texts


def _adapted(arch, tokenizer):
    torch.manual_seed(0)
    base = build_model(ModelConfig(arch=arch, **SHAPE), tokenizer).eval()
    adapted = ADAPTERS["experts"](copy.deepcopy(base), LORA, [])
    route_by_language(adapted, tokenizer)
    return base, adapted


def _row(tokenizer, texts, lang=None, length=24):
    prefix = [tokenizer.token_to_id(control_token("lang", lang))] if lang else []
    return prefix + tokenizer.encode(" ".join(texts)).ids[: length - len(prefix)]


def _experts_of(model, index):
    return [p for n, p in model.named_parameters() if f".mlp.experts.{index}." in n]


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def trained(request, data, tmp_path_factory):
    """Experts trained for a few steps on a packed Polish + Sorbian mixture (documents interleaved)."""
    tokenizer, _, texts = data
    base, adapted = _adapted(request.param, tokenizer)
    initial = copy.deepcopy(adapted)
    sampler = BlockSampler(pack(texts, tokenizer, tokenizer.token_to_id(EOS), 0), 32, 8, 0)
    log = tmp_path_factory.mktemp("experts") / "log.jsonl"
    train(adapted, sampler, TrainConfig(steps=6, lr=1e-2, warmup_steps=0), 0, log)
    return base, initial, adapted.eval()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_each_language_is_routed_through_its_own_expert(arch, data):
    tokenizer, texts, _ = data
    base, adapted = _adapted(arch, tokenizer)
    pol, hsb = _row(tokenizer, texts["pol_Latn"], "pol_Latn"), _row(tokenizer, texts["hsb_Latn"], "hsb_Latn")
    mixed = pol[:10] + hsb[:14]  # a packed row: a Polish document, then a Sorbian one
    plain = _row(tokenizer, texts["hsb_Latn"])  # no language token in view
    ids = torch.tensor([pol, hsb, mixed, plain])
    with torch.no_grad():
        for p in _experts_of(adapted, 1):  # give the Sorbian expert a non-zero output
            p.normal_(std=0.5)
        before, after = base(ids).logits, adapted(ids).logits
    changed = (after - before).abs().amax(-1) > 1e-4  # (row, position)
    assert not changed[0].any()  # Polish rows never pass through the Sorbian expert
    assert changed[1].all()
    assert not changed[2, :10].any() and changed[2, 10:].all()  # routing switches at the language token
    assert not changed[3].any()  # text without a language token goes through the base alone


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_a_language_batch_sends_gradients_only_to_its_expert(arch, data):
    tokenizer, texts, _ = data
    _, adapted = _adapted(arch, tokenizer)
    adapted.train()
    for p in _experts_of(adapted, 0) + _experts_of(adapted, 1):
        torch.nn.init.normal_(p, std=0.1)  # zero output layers would give the first layers no gradient
    ids = torch.tensor([_row(tokenizer, texts["hsb_Latn"], "hsb_Latn", 25)])
    causal_lm(adapted, {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}).backward()
    with_grad = {n for n, p in adapted.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == {n for n, _ in adapted.named_parameters() if ".mlp.experts.1." in n}


def test_training_changes_only_the_experts(trained):
    base, initial, adapted = trained
    assert {n for n, p in adapted.named_parameters() if p.requires_grad} == {
        n for n, _ in adapted.named_parameters() if ".mlp.experts." in n}
    base_params = dict(base.named_parameters())
    for name, p in adapted.named_parameters():
        if ".mlp.experts." not in name:
            assert torch.equal(p, base_params[name.replace(".mlp.base.", ".mlp.")]), name  # bit-identical
    for index in range(len(LANGS)):  # both languages' experts learned from their own documents
        assert any(not torch.equal(a, b) for a, b in zip(_experts_of(initial, index), _experts_of(adapted, index),
                                                       strict=True))


def test_each_language_exports_to_a_stock_model(trained, data, tmp_path):
    tokenizer, texts, _ = data
    _, _, adapted = trained
    for lang in LANGS:
        ids = torch.tensor([_row(tokenizer, texts[lang], lang)])
        with torch.no_grad():
            expected = adapted(ids).logits
        folder = save_model(export(copy.deepcopy(adapted), lang), tokenizer, tmp_path / lang)
        stock = load_model(folder).eval()
        assert type(stock).__module__.startswith("transformers.models.")
        with torch.no_grad():
            assert torch.allclose(stock(ids).logits, expected, atol=1e-5)


def test_experts_job_writes_one_stock_folder_per_language(tmp_path):
    job = {
        "name": "experts", "output_dir": str(tmp_path / "runs"), "model": {"arch": "llama", **SHAPE},
        "data": {"control_tokens": ["lang"], "vocab_size": 400,
                 "sources": [{"name": lang, "format": "sample", "languages": [lang]} for lang in LANGS]},
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0},
        "method": "experts", "lora": {"expert_hidden": 16, "expert_languages": LANGS},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    final = run_train_job(load_config(tmp_path / "job.yaml", schema=TrainJobConfig))
    widths = {load_model(path).config.intermediate_size for path in (final, final.parent / "final-hsb_Latn")}
    assert widths == {32 * round(32 * 8 / 3 / 32) + 16}


def test_experts_without_language_tokens_fail_with_a_fix():
    tokenizer = train_bpe(["plain text without any control token"] * 20, 300)
    model = ADAPTERS["experts"](build_model(ModelConfig(**SHAPE), tokenizer), LORA, [])
    with pytest.raises(LangadaptError, match="control_tokens"):
        route_by_language(model, tokenizer)
