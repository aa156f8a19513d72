"""Size presets, the three architectures, byte-level tokenization and both objectives."""

import pytest
import torch

from langadapt.data.packing import BlockSampler, pack
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.tokenizer import EOS, byte_tokenizer, train_bpe

SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}


def params(model) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("arch", ["gpt2", "llama", "bert"])
def test_presets_have_their_advertised_sizes(arch, sample_docs):
    tokenizer = train_bpe([d.text for d in sample_docs], 2000)
    sizes = {preset: params(build_model(ModelConfig(preset=preset, arch=arch), tokenizer))
             for preset in ("tiny", "mini", "small")}
    assert 0.8 < sizes["tiny"] < 1.5 and 4.5 < sizes["mini"] < 7.5 and 22 < sizes["small"] < 30, sizes


def test_a_preset_yields_to_explicit_keys():
    cfg = ModelConfig(preset="mini", n_layer=3)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head) == (3, 256, 8)


def test_byte_tokenizer_round_trips_every_script(shared):
    tokenizer = byte_tokenizer()
    files = sorted(shared("udhr").glob("udhr_*.txt"))[:60]
    for path in files:
        text = path.read_text(encoding="utf-8")[:2000]
        ids = tokenizer.encode(text).ids
        assert len(ids) == len(text.encode("utf-8")) and tokenizer.decode(ids) == text, path.name
    assert tokenizer.get_vocab_size() == 257


@pytest.mark.parametrize(("arch", "objective", "byte_level"),
                         [("gpt2", "causal", True), ("llama", "causal", False), ("bert", "masked", False)])
def test_each_architecture_learns_and_round_trips_through_stock_transformers(
        arch, objective, byte_level, sample_docs, tmp_path):
    texts = [d.text for d in sample_docs if d.lang == "pol_Latn"]
    tokenizer = byte_tokenizer() if byte_level else train_bpe(texts, 500)
    model = build_model(ModelConfig(arch=arch, **SHAPE), tokenizer)
    sampler = BlockSampler(pack(texts, tokenizer, tokenizer.token_to_id(EOS), 0), 32, 8, 0)
    log = train(model, sampler, TrainConfig(steps=30, lr=3e-3, warmup_steps=3, objective=objective), 0,
                tmp_path / "log.jsonl")
    assert sum(r["loss"] for r in log[-5:]) / 5 < sum(r["loss"] for r in log[:5]) / 5 - 0.3

    loaded = load_model(save_model(model, tokenizer, tmp_path / "model"))
    assert type(loaded) is type(model)
    ids = torch.tensor([tokenizer.encode("Dzień dobry, świecie").ids])
    assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)


def test_bf16_autocast_and_gradient_accumulation_train(sample_docs, tmp_path):
    texts = [d.text for d in sample_docs if d.lang == "ces_Latn"]
    tokenizer = train_bpe(texts, 500)
    model = build_model(ModelConfig(**SHAPE), tokenizer)
    sampler = BlockSampler(pack(texts, tokenizer, tokenizer.token_to_id(EOS), 0), 32, 4, 0)
    cfg = TrainConfig(steps=24, lr=3e-3, warmup_steps=3, batch_size=4, grad_accum=2, precision="bf16")
    log = train(model, sampler, cfg, 0, tmp_path / "log.jsonl")
    assert log[-1]["tokens"] == 24 * 2 * 4 * 32  # every micro-batch counted
    assert sum(r["loss"] for r in log[-5:]) / 5 < sum(r["loss"] for r in log[:5]) / 5 - 0.3
    assert model.transformer.wte.weight.dtype == torch.float32  # autocast: master weights stay fp32


@pytest.mark.slow
def test_compiled_forward_trains_like_eager(sample_docs, tmp_path):
    """`compile: true` (inductor, needs a C++ compiler) trains like eager mode (up to dropout masks,
    which compiled code draws from its own RNG)."""
    texts = [d.text for d in sample_docs if d.lang == "ces_Latn"]
    tokenizer = train_bpe(texts, 500)
    tokens = pack(texts, tokenizer, tokenizer.token_to_id(EOS), 0)
    logs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(ModelConfig(**SHAPE), tokenizer)
        cfg = TrainConfig(steps=6, lr=3e-3, warmup_steps=2, batch_size=4, compile=compiled)
        logs[compiled] = train(model, BlockSampler(tokens, 32, 4, 0), cfg, 0, tmp_path / f"{compiled}.jsonl")
    for eager, compiled in zip(logs[False], logs[True], strict=True):
        assert compiled["loss"] == pytest.approx(eager["loss"], abs=0.03)
