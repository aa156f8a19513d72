"""Multi-device correctness that a CPU machine can check: gradient checkpointing trains the same
model with less memory, and the trained weights are saved from what `accelerator.get_state_dict`
gathers (the path FSDP and DeepSpeed shards take; accelerate enables FSDP only on GPUs, so the
gather is tested here on one process and run sharded by benchmarks/gpu_check.sh)."""

from __future__ import annotations

import copy

import pytest
import torch

from langadapt.data.packing import BlockSampler, pack
from langadapt.model.build import build_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.tokenizer import EOS

SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}


@pytest.fixture
def setup(tokenizers, sample_docs):
    source, _, _ = tokenizers
    tokens = pack([d.text for d in sample_docs if d.lang == "ces_Latn"], source, source.token_to_id(EOS), 0)
    return source, tokens


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_trains_the_same_model(setup, tmp_path, method):
    source, tokens = setup

    def run(checkpointing: bool):
        torch.manual_seed(3)
        model = ADAPTERS[method](build_model(ModelConfig(**SHAPE), source), LoraConfig(), [])
        cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, gradient_checkpointing=checkpointing)
        log = train(model, BlockSampler(tokens, 32, 4, 0), cfg, 0, tmp_path / f"{checkpointing}.jsonl")
        return model, [r["loss"] for r in log]

    plain, plain_losses = run(False)
    recomputed, losses = run(True)
    assert recomputed.is_activation_checkpointing and not plain.is_activation_checkpointing
    assert losses == pytest.approx(plain_losses, abs=1e-4) and losses[-1] < losses[0]


def test_the_saved_weights_are_the_gathered_ones(setup, tmp_path):
    source, tokens = setup
    torch.manual_seed(3)
    model = build_model(ModelConfig(**SHAPE), source)
    before = copy.deepcopy(model.state_dict())
    whole = copy.deepcopy(model)  # the unsharded twin the job saves from under FSDP / DeepSpeed
    train(model, BlockSampler(tokens, 32, 4, 0), TrainConfig(steps=3, batch_size=4, warmup_steps=1), 0,
          tmp_path / "log.jsonl", whole=whole)
    trained, gathered = model.state_dict(), whole.state_dict()
    assert all(torch.equal(trained[k].cpu(), gathered[k].cpu()) for k in trained)  # CUDA-trained, CPU twin
    assert not all(torch.equal(before[k], gathered[k]) for k in before)  # it holds the trained weights
