"""Adaptation methods in one registry: each turns a model into the thing to train.

`full` trains everything; `lora` puts LoRA on every block; `layra` puts LoRA only on the
first and last k blocks (the layers that encode and decode the language), leaving the middle
frozen to limit forgetting. Parameter-efficient methods also train the new vocabulary rows
(peft's trainable tokens), since those start from an initialiser, not from training.
`embeddings` trains only the new rows, `embeddings-factorised` the new rows in OFA's rank-r
factorisation (their coordinates and the shared primitive embeddings), `embeddings-all` the
whole embedding matrix, and
`experts` (model/experts.py) freezes the base and adds new feed-forward experts to every block.
A method `a+b` is a recipe of phases trained one after the other (e.g. `embeddings+layra`).

`export` turns any adapted model back into a stock transformers model (LoRA and trainable
tokens merged by peft, one language's experts merged into wider feed-forward layers, factors
multiplied out), so every result
loads with `AutoModelForCausalLM`; peft adapters are also saved as peft folders.
"""

from __future__ import annotations

import re
from pathlib import Path

from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TrainableTokensConfig, get_peft_model
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from langadapt.atomic import write_folder
from langadapt.errors import LangadaptError
from langadapt.model.config import LoraConfig
from langadapt.model.experts import Experts, merge_experts
from langadapt.model.layout import blocks, not_found
from langadapt.vocab.factorise import FactorisedEmbedding, factorise, multiply_out

PROJECTIONS = (nn.Linear, Conv1D)  # GPT-2 stores its linear layers as Conv1D, weight (in, out)


def _name_of(model: nn.Module, target: nn.Module) -> str:
    return next(name for name, module in model.named_modules() if module is target)


def _untied_output(model: PreTrainedModel) -> nn.Module | None:
    """The output layer when it has weights of its own (Mistral, Llama-3 8B), else None (tied)."""
    output = model.get_output_embeddings()
    if output is None or output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr():
        return None
    return output


def _embedding_modules(model: PreTrainedModel) -> list[str]:
    """Module names whose new rows train: the input embedding, and an untied output layer too
    (a tied one follows the input), so new tokens are learnt on both sides."""
    try:
        modules = [model.get_input_embeddings(), _untied_output(model)]
    except (NotImplementedError, AttributeError):
        modules = [None]
    if modules[0] is None:
        raise not_found(model, "the input embedding")
    return [_name_of(model, module) for module in modules if module is not None]


def full(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Every weight trains (the strongest learner, and the most forgetting)."""
    model.requires_grad_(True)
    return model


def _lora(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int], layers: list[int] | None):
    """LoRA on every linear projection inside the chosen blocks (all blocks when `layers` is None).

    The targets are one regular expression over module paths, read off the model: the block
    list's path, the block indices, and the leaf names of the projections inside them."""
    path, layer_list = blocks(model)
    chosen = range(len(layer_list)) if layers is None else layers
    projections = {name.rsplit(".", 1)[-1]: module for name, module in layer_list[0].named_modules()
                   if isinstance(module, PROJECTIONS)}
    if not projections:
        raise not_found(model, f"linear projections (torch Linear or Conv1D) inside the blocks of {path}")
    targets = (rf"{re.escape(path)}\.({'|'.join(map(str, chosen))})\.(.*\.)?"
               rf"({'|'.join(map(re.escape, projections))})")
    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        fan_in_fan_out=any(isinstance(module, Conv1D) for module in projections.values()),
        trainable_token_indices=dict.fromkeys(_embedding_modules(model), new_token_ids) if new_token_ids else None,
    )
    return get_peft_model(model, config)


def lora_all_layers(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """LoRA on every block's attention and MLP projections, base frozen."""
    return _lora(model, lora, new_token_ids, layers=None)


def layra(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """LoRA on the first k and last k blocks only, base frozen (LayRA)."""
    n_layer = model.config.num_hidden_layers
    k = min(lora.edge_layers, n_layer // 2)
    layers = sorted({*range(k), *range(n_layer - k, n_layer)})
    return _lora(model, lora, new_token_ids, layers=layers)


def embeddings_new_rows(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Only the new vocabulary rows train (peft TrainableTokens); every old weight stays as it was."""
    if not new_token_ids:
        raise LangadaptError("the `embeddings` method trains new vocabulary rows, but there are none",
                             fix="expand the vocabulary first, or use `embeddings-all`.")
    return get_peft_model(model, TrainableTokensConfig(token_indices=new_token_ids,
                                                       target_modules=_embedding_modules(model)))


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


def embeddings_all_rows(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """The whole embedding matrix trains (input and output layer, tied or not); the blocks stay frozen."""
    model.requires_grad_(False)
    for name in _embedding_modules(model):
        model.get_submodule(name).weight.requires_grad_(True)
    return model


def export(model: nn.Module, language: str | None = None) -> PreTrainedModel:
    """The adapted model as a stock transformers model (adapters merged into the weights).

    Experts merge into wider MLPs; a stock model cannot route, so per-language experts export
    one language's expert (`language`, by default the first listed), applied to every token.
    """
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    if isinstance(model.get_input_embeddings(), FactorisedEmbedding):
        return multiply_out(model)
    if not isinstance(getattr(blocks(model)[1][0], "mlp", None), Experts):
        return model
    return merge_experts(model, language)


def save_peft_adapter(model: nn.Module, path: Path) -> Path | None:
    """A peft model's adapter as a peft folder (adapter_config.json + safetensors); None for others."""
    if not isinstance(model, PeftModel):
        return None
    return write_folder(path, model.save_pretrained)


def trainable_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
