"""Adaptation methods: what each trains, and that each result loads with stock transformers/peft."""

import copy
import json

import pytest
import torch
import yaml
from peft import PeftModel

from langadapt.config import load_config, parse_config
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.adapters import export, save_peft_adapter
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import train
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.tokenizer import EOS

TINY = ModelConfig(n_layer=4, n_embd=32, n_head=2, block_size=32)


@pytest.fixture
def expanded(tokenizers):
    """A base model with the target vocabulary appended (mean-initialised), and the new ids."""
    source, _, expansion = tokenizers
    model = build_model(TINY, source)
    resize_and_init(model, expansion.pieces, "mean", seed=0)
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    return model.eval(), new_ids, expansion.tokenizer


def _adapt(method, expanded, sample_docs, tmp_path):
    model, new_ids, tokenizer = expanded
    base = copy.deepcopy(model)
    adapted = ADAPTERS[method](model, LoraConfig(r=4, alpha=8, expert_hidden=16), new_ids)
    hsb = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    sampler = BlockSampler(pack(hsb, tokenizer, tokenizer.token_to_id(EOS), 0), 32, 8, 0)
    train(adapted, sampler, TrainConfig(steps=8, lr=1e-2, warmup_steps=0), 0, tmp_path / "log.jsonl")
    return base, adapted, tokenizer


def _changed(before, after) -> set[str]:
    after = dict(after.named_parameters())
    return {name for name, p in before.named_parameters() if not torch.equal(p, after[name])}


@pytest.mark.parametrize("method", ["embeddings", "embeddings-all", "experts", "layra"])
def test_adapted_model_exports_to_a_stock_transformers_folder(method, expanded, sample_docs, tmp_path):
    base, adapted, tokenizer = _adapt(method, expanded, sample_docs, tmp_path)
    ids = torch.tensor([tokenizer.encode("Witajće k nam, to je našo nowe słowo").ids])
    adapter_dir = save_peft_adapter(adapted, tmp_path / "adapter")
    adapted.eval()
    expected = adapted(ids).logits.detach()
    if adapter_dir is not None:  # a peft folder that loads onto the base with stock peft
        reloaded = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir).eval()
        assert torch.allclose(reloaded(ids).logits, expected, atol=1e-5)
    folder = save_model(export(adapted), tokenizer, tmp_path / "final")
    stock = load_model(folder).eval()
    assert torch.allclose(stock(ids).logits, expected, atol=1e-5)
    assert not torch.allclose(base(ids).logits, expected, atol=1e-3)  # training changed the function


def test_embeddings_trains_only_the_new_rows(expanded, sample_docs, tmp_path):
    _, new_ids, _ = expanded
    base, adapted, _ = _adapt("embeddings", expanded, sample_docs, tmp_path)
    merged = export(adapted)
    assert _changed(base, merged) == {"transformer.wte.weight"}
    old, new = slice(0, new_ids[0]), slice(new_ids[0], None)
    weight = merged.transformer.wte.weight
    assert torch.equal(weight[old], base.transformer.wte.weight[old])
    assert not torch.equal(weight[new], base.transformer.wte.weight[new])


def test_experts_leave_every_base_weight_frozen(expanded, sample_docs, tmp_path):
    base, adapted, _ = _adapt("experts", expanded, sample_docs, tmp_path)
    trained = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trained and all(".mlp.experts.0." in n for n in trained)
    base_params = dict(base.named_parameters())
    for name, p in adapted.named_parameters():
        original = name.replace(".mlp.base.", ".mlp.")
        if original in base_params:
            assert torch.equal(p, base_params[original]), name
    assert export(adapted).config.n_inner == 4 * TINY.n_embd + 16


def test_two_stage_recipe_trains_embeddings_then_layra(tokenizers, tmp_path):
    source, _, _ = tokenizers
    base = save_model(build_model(TINY, source), source, tmp_path / "base")
    job = {
        "name": "two-stage", "output_dir": str(tmp_path / "runs"), "init_from": str(base),
        "model": {"n_layer": 4, "n_embd": 32, "n_head": 2, "block_size": 32},
        "data": {"control_tokens": ["lang"], "sources": [{"name": "hsb", "format": "sample",
                                                          "languages": ["hsb_Latn"]}]},
        "train": {"steps": 6, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0, "phase_lr": {"embeddings": 5e-2}},
        "method": "embeddings+layra", "lora": {"r": 4, "alpha": 8},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    final = run_train_job(load_config(tmp_path / "job.yaml", schema=TrainJobConfig))
    run = final.parent
    assert (run / "phase1-embeddings" / "final" / "model.safetensors").is_file()
    assert (run / "phase1-embeddings" / "adapter" / "adapter_config.json").is_file()
    assert (run / "phase2-layra" / "adapter" / "adapter_model.safetensors").is_file()
    phase1, phase2 = load_model(run / "phase1-embeddings" / "final"), load_model(final)
    new_row = source.get_vocab_size()  # the <|lang=hsb_Latn|> control token, added by the job
    assert phase2.transformer.wte.weight.shape[0] == new_row + 1
    # stage 2 (LayRA) changed the first and last blocks and left the middle ones as stage 1 left them
    assert _changed(phase1, phase2) >= {"transformer.h.0.attn.c_attn.weight", "transformer.h.3.mlp.c_fc.weight"}
    assert "transformer.h.1.attn.c_attn.weight" not in _changed(phase1, phase2)
    first_lr = {stage: json.loads((run / stage / "log.jsonl").read_text().splitlines()[0])["lr"]
                for stage in ("phase1-embeddings", "phase2-layra")}  # each stage at its own rate
    assert first_lr["phase1-embeddings"] / first_lr["phase2-layra"] == pytest.approx(5)  # same schedule


def test_phase_lr_names_registered_phases_of_the_method():
    job = {"name": "x", "data": {"sources": [{"name": "s", "format": "sample", "languages": ["hsb_Latn"]}]},
           "method": "embeddings+layra"}
    with pytest.raises(LangadaptError, match="unknown adaptation method 'lora2'"):
        parse_config({**job, "train": {"phase_lr": {"lora2": 1e-3}}}, schema=TrainJobConfig)
    with pytest.raises(LangadaptError, match="does not train; its phases are embeddings, layra"):
        parse_config({**job, "train": {"phase_lr": {"lora": 1e-3}}}, schema=TrainJobConfig)
    cfg = parse_config({**job, "train": {"lr": 1e-3, "phase_lr": {"embeddings": 1e-2}}}, schema=TrainJobConfig)
    assert (cfg.train.for_phase("embeddings").lr, cfg.train.for_phase("layra").lr) == (1e-2, 1e-3)
