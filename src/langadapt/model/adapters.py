"""Adaptation methods in one registry: each turns a model into the thing to train.

`full` trains everything; `lora` puts LoRA on every block; `layra` puts LoRA only on the
first and last k blocks (the layers that encode and decode the language), leaving the middle
frozen to limit forgetting. Parameter-efficient methods also train the new vocabulary rows
(peft's trainable tokens), since those start from an initialiser, not from training.
`embeddings` trains only the new rows, `embeddings-factorised` the new rows in OFA's rank-r
factorisation (their coordinates and the shared primitive embeddings), `embeddings-all` the
whole embedding matrix, and
`experts` freezes the base and adds new feed-forward experts to every block (delta tuning,
GPT-2 and Llama): one shared expert, or one per language in `lora.expert_languages`, each
token routed to its document's language expert by the language control token.
A method `a+b` is a recipe of stages trained one after the other (e.g. `embeddings+layra`).

`export` turns any adapted model back into a stock transformers model (LoRA and trainable
tokens merged by peft, one language's experts merged into wider feed-forward layers, factors
multiplied out), so every result
loads with `AutoModelForCausalLM`; peft adapters are also saved as peft folders.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TrainableTokensConfig, get_peft_model
from tokenizers import Tokenizer
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.llama.modeling_llama import LlamaMLP

from langadapt.config import LoraConfig
from langadapt.data.mixing import control_token
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


@dataclass(frozen=True)
class MLPForm:
    """How one architecture's feed-forward layers are found, grown and widened.

    An expert is the block's own MLP class at `expert_hidden` units, so an expert merges into
    the base MLP by concatenating hidden units: the result is a stock, wider MLP.
    """

    blocks: Callable[[PreTrainedModel], nn.ModuleList]
    new: Callable[[PretrainedConfig, int], nn.Module]  # an expert of `hidden` units
    widen: Callable[[nn.Module, nn.Module], int]  # append the expert's units to the base MLP; its new width
    width_key: str  # the config key of the MLP's hidden units


def _append(layer: nn.Module, extra: nn.Module, dim: int, output: bool) -> None:
    """Append `extra`'s units to `layer` along weight dim `dim`; an output layer sums the biases."""
    layer.weight = nn.Parameter(torch.cat([layer.weight, extra.weight], dim=dim).detach())
    if layer.bias is not None:
        bias = layer.bias + extra.bias if output else torch.cat([layer.bias, extra.bias])
        layer.bias = nn.Parameter(bias.detach())


def _gpt2_expert(config: PretrainedConfig, hidden: int) -> nn.Module:
    expert = GPT2MLP(hidden, config)
    nn.init.normal_(expert.c_fc.weight, std=config.initializer_range)
    nn.init.zeros_(expert.c_proj.weight)  # zero output: training starts from the base model exactly
    return expert


def _gpt2_widen(mlp: nn.Module, expert: nn.Module) -> int:
    _append(mlp.c_fc, expert.c_fc, dim=1, output=False)  # Conv1D weights are (in, out)
    _append(mlp.c_proj, expert.c_proj, dim=0, output=True)
    mlp.c_fc.nf = mlp.c_fc.weight.shape[1]
    return mlp.c_fc.nf


def _llama_expert(config: PretrainedConfig, hidden: int) -> nn.Module:
    config = copy.copy(config)  # LlamaMLP reads its width from the config
    config.intermediate_size = hidden
    expert = LlamaMLP(config)
    nn.init.zeros_(expert.down_proj.weight)
    return expert


def _llama_widen(mlp: nn.Module, expert: nn.Module) -> int:
    for name in ("gate_proj", "up_proj"):
        _append(getattr(mlp, name), getattr(expert, name), dim=0, output=False)
        getattr(mlp, name).out_features = getattr(mlp, name).weight.shape[0]
    _append(mlp.down_proj, expert.down_proj, dim=1, output=True)
    mlp.down_proj.in_features = mlp.down_proj.weight.shape[1]
    mlp.intermediate_size = mlp.down_proj.in_features
    return mlp.intermediate_size


MLP_FORMS = {
    "gpt2": MLPForm(lambda m: m.transformer.h, _gpt2_expert, _gpt2_widen, "n_inner"),
    "llama": MLPForm(lambda m: m.model.layers, _llama_expert, _llama_widen, "intermediate_size"),
}


class Router:
    """Per-token expert choice, read from each document's language control token.

    Why control tokens: documents are packed into blocks, so one row can hold several
    documents in several languages; the `<|lang=xx|>` token that opens every document (with
    `data.control_tokens: [lang]`) is already in the ids, so routing needs nothing passed
    beside the batch and works the same in training and evaluation. A token goes to the expert
    of the last language token at or before it; tokens with none in view (text without control
    tokens, or the tail of a document cut at a block's start) go through the base alone. A
    forward pre-hook on the model computes the routes once per forward pass, from that pass's
    ids only: for cached generation, export the language's model (`export(model, language)`).
    """

    def __init__(self, languages: list[str]):
        self.languages = languages
        self.token_ids: torch.Tensor | None = None  # control-token id of each language, set by `route_by_language`
        self.route: torch.Tensor | None = None  # (batch, seq) expert index per token, -1: none

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if self.token_ids is None:
            raise LangadaptError("per-language experts have no language tokens to route by",
                                 fix="call `route_by_language(model, tokenizer)` after the `experts` adapter.")
        match = ids.unsqueeze(-1) == self.token_ids.to(ids.device)  # (batch, seq, language)
        marked = match.any(-1)
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        last = torch.where(marked, positions, -1).cummax(dim=1).values  # last language token so far
        language = match.int().argmax(-1).gather(1, last.clamp(min=0))
        self.route = torch.where(last >= 0, language, -1)


class Experts(nn.Module):
    """A frozen block MLP plus new expert MLPs, one per language (or one shared, unrouted)."""

    def __init__(self, mlp: nn.Module, experts: list[nn.Module], router: Router | None):
        super().__init__()
        self.base, self.experts, self.router = mlp, nn.ModuleList(experts), router

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        out = self.base(hidden_states)
        if self.router is None:
            return out + self.experts[0](hidden_states)
        for index, expert in enumerate(self.experts):
            rows = self.router.route == index
            out = out.index_put((rows,), expert(hidden_states[rows]), accumulate=True)
        return out


@adapter("experts")
def experts(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Frozen base; each block gets new FFN experts: one shared, or one per `lora.expert_languages`.

    Per-language experts are routed by language control tokens (see `Router`); bind them to
    the tokenizer's ids with `route_by_language`. Only the experts train: pair with
    `embeddings` (`embeddings+experts`) to train new rows too.
    """
    if model.config.model_type not in MLP_FORMS:
        raise LangadaptError(f"`experts` supports {', '.join(MLP_FORMS)} models, not {model.config.model_type!r}",
                             fix="use `lora` or `layra` for this model.")
    form = MLP_FORMS[model.config.model_type]
    model.requires_grad_(False)
    router = Router(lora.expert_languages) if lora.expert_languages else None
    for block in form.blocks(model):
        block.mlp = Experts(block.mlp, [form.new(model.config, lora.expert_hidden)
                                        for _ in lora.expert_languages or [None]], router)
    if router is not None:
        model.register_forward_pre_hook(router, with_kwargs=True)
    return model


def _router(model: nn.Module) -> Router | None:
    form = MLP_FORMS.get(getattr(model.config, "model_type", None))
    mlp = form.blocks(model)[0].mlp if form is not None else None
    return mlp.router if isinstance(mlp, Experts) else None


def expert_languages(model: nn.Module) -> list[str]:
    """The languages of a model's per-language experts; [] for any other model."""
    router = _router(model)
    return router.languages if router is not None else []


def route_by_language(model: PreTrainedModel, tokenizer: Tokenizer) -> None:
    """Bind per-language experts to the ids of `<|lang=xx|>` in `tokenizer`."""
    router = _router(model)
    ids = [tokenizer.token_to_id(control_token("lang", lang)) for lang in router.languages]
    missing = [lang for lang, i in zip(router.languages, ids, strict=True) if i is None]
    if missing:
        raise LangadaptError(f"per-language experts need the control tokens of {', '.join(missing)}",
                             where="lora.expert_languages",
                             fix="add `lang` to data.control_tokens and name languages the data has.")
    router.token_ids = torch.tensor(ids)


def export(model: nn.Module, language: str | None = None) -> PreTrainedModel:
    """The adapted model as a stock transformers model (adapters merged into the weights).

    Experts merge into wider MLPs; a stock model cannot route, so per-language experts export
    one language's expert (`language`, by default the first listed), applied to every token.
    """
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    if isinstance(model.get_input_embeddings(), FactorisedEmbedding):
        return multiply_out(model)
    form = MLP_FORMS.get(model.config.model_type)
    if form is None or not isinstance(form.blocks(model)[0].mlp, Experts):
        return model
    languages = expert_languages(model)
    if language is not None and language not in languages:
        raise LangadaptError(f"no expert for {language!r}", fix=f"choose one of {languages}.")
    index = languages.index(language) if language is not None else 0
    router = _router(model)
    for key in [key for key, hook in model._forward_pre_hooks.items() if hook is router]:
        del model._forward_pre_hooks[key]  # a stock model does not route
    for block in form.blocks(model):
        width = form.widen(block.mlp.base, block.mlp.experts[index])
        block.mlp = block.mlp.base
    setattr(model.config, form.width_key, width)
    return model


def save_peft_adapter(model: nn.Module, path: Path) -> Path | None:
    """A peft model's adapter as a peft folder (adapter_config.json + safetensors); None for others."""
    if not isinstance(model, PeftModel):
        return None
    model.save_pretrained(path)
    return path


def trainable_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
