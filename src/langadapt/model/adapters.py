"""Adaptation methods in one registry: each turns a model into the thing to train.

`full` trains everything; `lora` puts LoRA on every block; `layra` puts LoRA only on the
first and last k blocks (the layers that encode and decode the language), leaving the middle
frozen to limit forgetting. Parameter-efficient methods also train the new vocabulary rows
(peft's trainable tokens), since those start from an initialiser, not from training.
"""

from __future__ import annotations

from collections.abc import Callable

from peft import LoraConfig as PeftLoraConfig
from peft import get_peft_model
from transformers import PreTrainedModel

from langadapt.config import LoraConfig

Adapter = Callable[[PreTrainedModel, LoraConfig, list[int]], PreTrainedModel]
ADAPTERS: dict[str, Adapter] = {}

GPT2_LORA_TARGETS = ["c_attn", "c_proj", "c_fc"]


def adapter(name: str) -> Callable[[Adapter], Adapter]:
    def register(function: Adapter) -> Adapter:
        ADAPTERS[name] = function
        return function

    return register


@adapter("full")
def full(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Every weight trains (the strongest learner, and the most forgetting)."""
    model.requires_grad_(True)
    return model


def _lora(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int], layers: list[int] | None):
    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=GPT2_LORA_TARGETS,
        layers_to_transform=layers,
        layers_pattern="h" if layers is not None else None,
        fan_in_fan_out=True,  # GPT-2 stores its linear layers as Conv1D (in, out)
        trainable_token_indices={"wte": new_token_ids} if new_token_ids else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


@adapter("lora")
def lora_all_layers(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """LoRA on every block's attention and MLP projections, base frozen."""
    return _lora(model, lora, new_token_ids, layers=None)


@adapter("layra")
def layra(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """LoRA on the first k and last k blocks only, base frozen (LayRA)."""
    n_layer = model.config.num_hidden_layers
    k = min(lora.edge_layers, n_layer // 2)
    layers = sorted({*range(k), *range(n_layer - k, n_layer)})
    return _lora(model, lora, new_token_ids, layers=layers)


def trainable_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
