"""The output layer in slices (model/head.py) gives the full path's loss, gradients and scores."""

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_model
from transformers import LlamaForCausalLM

from langadapt.model import head
from langadapt.model.config import LoraConfig
from langadapt.model.head import causal_loss, output_layer
from langadapt.registry import ADAPTERS

VOCAB = 300
# gemma2 and gemma3_text soft-cap their logits, granite divides them, cohere multiplies them, gpt2 ties
CASES = {"llama": {}, "gpt2": {}, "gemma2": {"final_logit_softcapping": 2.0},
         "gemma3_text": {"final_logit_softcapping": 2.0}, "granite": {"logits_scaling": 4.0},
         "cohere": {"logit_scale": 0.5}}


def _full_loss(model, ids, labels):
    logits = model(input_ids=ids, use_cache=False).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 20), generator=generator)
    labels = ids.roll(-1, dims=1)
    labels[:, -1] = -100
    labels[0, :5] = -100  # a prompt without loss
    return ids, labels


@pytest.mark.parametrize(("model_type", "extra"), CASES.items())
def test_sliced_loss_and_gradients_equal_the_full_logits(model_type, extra, monkeypatch):
    monkeypatch.setattr(head, "LOGITS_PER_SLICE", 7 * VOCAB)  # 7 positions a slice: several slices, one short
    model = tiny_model(model_type, VOCAB, **extra).eval()  # no dropout: both paths see the same network
    with torch.no_grad():  # logits far from zero, so soft-capping and scaling matter
        model.get_output_embeddings().weight.mul_(20)
    twin = copy.deepcopy(model)
    ids, labels = _batch()
    assert output_layer(model, ids) is not None  # the sliced path is taken, not the fallback
    ours, full = causal_loss(model, ids, labels), _full_loss(twin, ids, labels)
    assert torch.allclose(ours, full, rtol=1e-5, atol=1e-5)
    (ours * 3).backward()  # a scale on the loss reaches the gradients (gradient accumulation divides)
    (full * 3).backward()
    twin_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, twin_params[name].grad, rtol=1e-4, atol=1e-6), name


def test_sliced_loss_trains_new_rows_through_peft_and_falls_back_for_hooked_models(monkeypatch):
    monkeypatch.setattr(head, "LOGITS_PER_SLICE", 5 * VOCAB)
    base = tiny_model("llama", VOCAB)
    model = ADAPTERS["lora"](base, LoraConfig(r=4, alpha=8, dropout=0.0), [290, 291, 299])
    for name, p in model.named_parameters():  # LoRA's B starts at zero: give it values, so every gradient is non-zero
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    twin = copy.deepcopy(model)
    ids, labels = _batch(1)
    assert output_layer(model, ids) is not None
    causal_loss(model, ids, labels).backward()
    _full_loss(twin, ids, labels).backward()
    grads = {n: p.grad for n, p in twin.named_parameters() if p.requires_grad}
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert any("trainable_tokens" in n for n, _ in trained)
    for name, p in trained:
        assert torch.allclose(p.grad, grads[name], rtol=1e-4, atol=1e-6), name
    routed = LoraConfig(expert_hidden=8, expert_languages=["hsb", "ces"])
    experts = ADAPTERS["experts"](tiny_model("llama", VOCAB), routed, [])
    assert output_layer(experts, ids) is None  # routed by a hook on the model: its own forward only


class Doubled(LlamaForCausalLM):
    """A model whose forward changes the logits in a way no config key describes."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits * 2
        return out


def test_a_model_whose_logits_the_split_does_not_reproduce_keeps_full_logits():
    model = Doubled(tiny_model("llama", VOCAB).config)
    ids, labels = _batch(2)
    assert output_layer(model, ids) is None
    assert torch.allclose(causal_loss(model, ids, labels), _full_loss(model, ids, labels))


@pytest.mark.parametrize("model", [tiny_model("llama", VOCAB), Doubled(tiny_model("llama", VOCAB).config)])
def test_a_batch_without_any_target_gives_zero_loss_not_nan(model):
    """Every window a prompt longer than the block (translation pairs cut by model.block_size):
    measured before, NaN, which stopped training with "loss became nan"."""
    ids, labels = _batch(3)
    loss = causal_loss(model, ids, torch.full_like(labels, -100))
    loss.backward()
    assert loss.item() == 0.0 and all(p.grad is None or not p.grad.isnan().any() for p in model.parameters())
