"""Adaptation methods in one registry: each turns a model into the thing to train.

`full` trains everything; `lora` puts LoRA on every block; `layra` puts LoRA only on the
first and last k blocks (the layers that encode and decode the language), leaving the middle
frozen to limit forgetting. Parameter-efficient methods also train the new vocabulary rows
(peft's trainable tokens), since those start from an initialiser, not from training.
`embeddings` trains only the new rows, `embeddings-factorised` the new rows in OFA's rank-r
factorisation (their coordinates and the shared primitive embeddings), `embeddings-all` the
whole embedding matrix, and
`experts` freezes the base and adds one new feed-forward expert per block (delta tuning:
one expert set per language added; no routing between several).
A method `a+b` is a recipe of stages trained one after the other (e.g. `embeddings+layra`).

`export` turns any adapted model back into a stock transformers model (LoRA and trainable
tokens merged by peft, experts merged into wider feed-forward layers, factors multiplied out), so every result
loads with `AutoModelForCausalLM`; peft adapters are also saved as peft folders.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TrainableTokensConfig, get_peft_model
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from langadapt.config import LoraConfig
from langadapt.errors import LangadaptError
from langadapt.vocab.factorise import FactorisedEmbedding, factorise, multiply_out

Adapter = Callable[[PreTrainedModel, LoraConfig, list[int]], PreTrainedModel]
ADAPTERS: dict[str, Adapter] = {}

# model type → (LoRA target modules, name of the block list, linear layers stored as Conv1D (in, out))
LORA_TARGETS = {
    "gpt2": (["c_attn", "c_proj", "c_fc"], "h", True),
    "llama": (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "layers", False),
    "bert": (["query", "key", "value", "dense"], "layer", False),
}


def adapter(name: str) -> Callable[[Adapter], Adapter]:
    def register(function: Adapter) -> Adapter:
        ADAPTERS[name] = function
        return function

    return register


def stages(method: str) -> list[str]:
    """The adapters a method trains in turn: `embeddings+layra` → ['embeddings', 'layra']."""
    return method.split("+")


@adapter("full")
def full(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Every weight trains (the strongest learner, and the most forgetting)."""
    model.requires_grad_(True)
    return model


def _lora(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int], layers: list[int] | None):
    if model.config.model_type not in LORA_TARGETS:
        raise LangadaptError(f"LoRA targets are not defined for model type {model.config.model_type!r}",
                             fix=f"use one of {', '.join(LORA_TARGETS)} or the `full` method.")
    targets, blocks, conv1d = LORA_TARGETS[model.config.model_type]
    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        layers_pattern=blocks if layers is not None else None,
        fan_in_fan_out=conv1d,
        trainable_token_indices=new_token_ids or None,  # a list targets the input embedding
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


@adapter("embeddings")
def embeddings_new_rows(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Only the new vocabulary rows train (peft TrainableTokens); every old weight stays as it was."""
    if not new_token_ids:
        raise LangadaptError("the `embeddings` method trains new vocabulary rows, but there are none",
                             fix="expand the vocabulary first, or use `embeddings-all`.")
    return get_peft_model(model, TrainableTokensConfig(token_indices=new_token_ids))


@adapter("embeddings-factorised")
def embeddings_factorised(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """OFA's factorised embedding (vocab/factorise.py): the new rows' rank-r coordinates and the r
    primitive embeddings train, n_new·r + r·d parameters instead of n_new·d; export multiplies out."""
    if not new_token_ids:
        raise LangadaptError("the `embeddings-factorised` method trains new vocabulary rows, but there are none",
                             fix="expand the vocabulary first, or use `embeddings-all`.")
    if lora.embedding_rank is None:
        raise LangadaptError("`embeddings-factorised` needs the rank of the factorisation",
                             where="lora.embedding_rank",
                             fix="set lora.embedding_rank (an experiment takes vocab.ofa_rank when it is left out).")
    return factorise(model, new_token_ids[0], lora.embedding_rank)


@adapter("embeddings-all")
def embeddings_all_rows(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """The whole input embedding matrix trains (and a tied output layer with it); the blocks stay frozen."""
    model.requires_grad_(False)
    model.get_input_embeddings().weight.requires_grad_(True)
    return model


class ExpertFFN(nn.Module):
    """A frozen GPT-2 MLP plus a new feed-forward expert whose output is added.

    The expert's output layer starts at zero, so training starts from the base model exactly.
    """

    def __init__(self, mlp: nn.Module, width: int, hidden: int):
        super().__init__()
        self.base, self.act = mlp, mlp.act
        self.up, self.down = nn.Linear(width, hidden), nn.Linear(hidden, width)
        nn.init.normal_(self.up.weight, std=0.02)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.base(hidden_states) + self.down(self.act(self.up(hidden_states)))

    def merged(self) -> nn.Module:
        """The base MLP widened by the expert's units: the same function, a stock GPT-2 layer."""
        mlp = self.base
        c_fc, c_proj = Conv1D(mlp.c_fc.nf + self.up.out_features, self.up.in_features), Conv1D(
            self.up.in_features, mlp.c_proj.weight.shape[0] + self.up.out_features)
        with torch.no_grad():
            c_fc.weight.copy_(torch.cat([mlp.c_fc.weight, self.up.weight.T], dim=1))
            c_fc.bias.copy_(torch.cat([mlp.c_fc.bias, self.up.bias]))
            c_proj.weight.copy_(torch.cat([mlp.c_proj.weight, self.down.weight.T], dim=0))
            c_proj.bias.copy_(mlp.c_proj.bias + self.down.bias)
        mlp.c_fc, mlp.c_proj = c_fc, c_proj
        return mlp


@adapter("experts")
def experts(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Frozen base; each block gets a new FFN expert for the new language.

    Only the experts train: pair it with `embeddings` (`embeddings+experts`) to train new rows.
    """
    if model.config.model_type != "gpt2":
        raise LangadaptError(f"`experts` supports GPT-2 models, not {model.config.model_type!r}",
                             fix="use `lora` or `layra` for this model.")
    model.requires_grad_(False)
    for block in model.transformer.h:
        block.mlp = ExpertFFN(block.mlp, model.config.n_embd, lora.expert_hidden)
    return model


def export(model: nn.Module) -> PreTrainedModel:
    """The adapted model as a stock transformers model (adapters merged into the weights)."""
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    if isinstance(model.get_input_embeddings(), FactorisedEmbedding):
        return multiply_out(model)
    if model.config.model_type == "gpt2" and isinstance(model.transformer.h[0].mlp, ExpertFFN):
        for block in model.transformer.h:
            block.mlp = block.mlp.merged()
        model.config.n_inner = model.transformer.h[0].mlp.c_fc.nf
    return model


def save_peft_adapter(model: nn.Module, path: Path) -> Path | None:
    """A peft model's adapter as a peft folder (adapter_config.json + safetensors); None for others."""
    if not isinstance(model, PeftModel):
        return None
    model.save_pretrained(path)
    return path


def trainable_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
