"""The `experts` method: the frozen base's blocks each get new feed-forward experts (one shared,
or one per language routed by the language control token), which merge back into wider stock
MLPs on export."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from langadapt.data.mixing import control_token
from langadapt.errors import LangadaptError
from langadapt.model.config import LoraConfig
from langadapt.model.layout import blocks


@dataclass(frozen=True)
class MLPForm:
    """A feed-forward layer shape, by the names of its projections: `inputs` map the hidden
    state to the MLP's units, `output` maps them back. An expert is the block's own MLP at
    `expert_hidden` units, so it merges into the base MLP by concatenating units: the result is
    a stock, wider MLP, and `width_key` (the config key of the MLP's units) records the width."""

    inputs: tuple[str, ...]
    output: str
    width_key: str


MLP_FORMS = (
    MLPForm(("gate_proj", "up_proj"), "down_proj", "intermediate_size"),  # gated: Llama, Qwen2, Mistral, Gemma
    MLPForm(("c_fc",), "c_proj", "n_inner"),  # GPT-2
)


def mlp_form(mlp: nn.Module) -> MLPForm | None:
    return next((form for form in MLP_FORMS if all(hasattr(mlp, n) for n in (*form.inputs, form.output))), None)


def _units_dim(layer: nn.Module, output: bool) -> int:
    """The weight dimension that runs over the MLP's units (Linear is (out, in), Conv1D (in, out))."""
    return int(output) if isinstance(layer, nn.Linear) else int(not output)


def _with_units(layer: nn.Module, units: int, output: bool, std: float) -> nn.Module:
    """A fresh projection of `layer`'s kind with `units` MLP units; an output projection starts at
    zero, so a new expert adds nothing and training starts from the base model exactly."""
    width = layer.weight.shape[1 - _units_dim(layer, output)]  # the hidden state's size
    n_in, n_out = (units, width) if output else (width, units)
    bias = layer.bias is not None
    new = Conv1D(n_out, n_in) if isinstance(layer, Conv1D) else nn.Linear(n_in, n_out, bias=bias)
    if isinstance(new, Conv1D) and not bias:
        new.bias = None
    nn.init.normal_(new.weight, std=std) if not output else nn.init.zeros_(new.weight)
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new.to(dtype=layer.weight.dtype, device=layer.weight.device)


def _fix_shape(layer: nn.Module) -> None:
    if isinstance(layer, Conv1D):
        layer.nx, layer.nf = layer.weight.shape
    else:
        layer.out_features, layer.in_features = layer.weight.shape


def _append_units(layer: nn.Module, extra: nn.Module, output: bool) -> None:
    """Append `extra`'s units to `layer`; an output projection sums the biases."""
    layer.weight = nn.Parameter(torch.cat([layer.weight, extra.weight], dim=_units_dim(layer, output)).detach())
    if layer.bias is not None:
        bias = layer.bias + extra.bias if output else torch.cat([layer.bias, extra.bias])
        layer.bias = nn.Parameter(bias.detach())
    _fix_shape(layer)


def new_expert(mlp: nn.Module, hidden: int, std: float) -> nn.Module:
    """An expert of `hidden` units of the same class (activation included) as the block's MLP."""
    form = mlp_form(mlp)
    expert = copy.copy(mlp)  # same class and activation; its projections are replaced below
    expert._modules = dict(mlp._modules)
    for name in form.inputs:
        setattr(expert, name, _with_units(getattr(mlp, name), hidden, output=False, std=std))
    setattr(expert, form.output, _with_units(getattr(mlp, form.output), hidden, output=True, std=std))
    return expert


def widen(mlp: nn.Module, expert: nn.Module) -> int:
    """Append the expert's units to the base MLP; return its new width."""
    form = mlp_form(mlp)
    for name in form.inputs:
        _append_units(getattr(mlp, name), getattr(expert, name), output=False)
    output = getattr(mlp, form.output)
    _append_units(output, getattr(expert, form.output), output=True)
    width = output.weight.shape[_units_dim(output, output=True)]
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = width
    return width


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


def experts(model: PreTrainedModel, lora: LoraConfig, new_token_ids: list[int]) -> PreTrainedModel:
    """Frozen base; each block gets new FFN experts: one shared, or one per `lora.expert_languages`.

    Per-language experts are routed by language control tokens (see `Router`); bind them to
    the tokenizer's ids with `route_by_language`. Only the experts train: pair with
    `embeddings` (`embeddings+experts`) to train new rows too.
    """
    _, layer_list = blocks(model)
    if mlp_form(getattr(layer_list[0], "mlp", None)) is None:
        raise LangadaptError(f"`experts` needs blocks with a gated or GPT-2 MLP (`mlp`), which a "
                             f"{model.config.model_type} model does not have",
                             fix="use `lora` or `layra` for this model.")
    model.requires_grad_(False)
    router = Router(lora.expert_languages) if lora.expert_languages else None
    std = getattr(model.config, "initializer_range", 0.02)
    for block in layer_list:
        block.mlp = Experts(block.mlp, [new_expert(block.mlp, lora.expert_hidden, std)
                                        for _ in lora.expert_languages or [None]], router)
    if router is not None:
        model.register_forward_pre_hook(router, with_kwargs=True)
    return model


def router_of(model: nn.Module) -> Router | None:
    mlp = getattr(blocks(model)[1][0], "mlp", None)
    return mlp.router if isinstance(mlp, Experts) else None


def expert_languages(model: nn.Module) -> list[str]:
    """The languages of a model's per-language experts; [] for any other model."""
    router = router_of(model)
    return router.languages if router is not None else []


def merge_experts(model: PreTrainedModel, language: str | None = None) -> PreTrainedModel:
    """Each block's expert (of `language`, by default the first listed) merged into a wider MLP, and
    the router removed: a stock model cannot route, so the expert applies to every token."""
    router = router_of(model)
    languages = router.languages if router is not None else []
    if language is not None and language not in languages:
        raise LangadaptError(f"no expert for {language!r}", fix=f"choose one of {languages}.")
    index = languages.index(language) if language is not None else 0
    for key in [key for key, hook in model._forward_pre_hooks.items() if hook is router]:
        del model._forward_pre_hooks[key]  # a stock model does not route
    _, layer_list = blocks(model)
    for block in layer_list:
        width = widen(block.mlp.base, block.mlp.experts[index])
        block.mlp = block.mlp.base
    setattr(model.config, mlp_form(layer_list[0].mlp).width_key, width)
    return model


def route_by_language(model: PreTrainedModel, tokenizer: Tokenizer) -> None:
    """Bind per-language experts to the ids of `<|lang=xx|>` in `tokenizer`."""
    router = router_of(model)
    ids = [tokenizer.token_to_id(control_token("lang", lang)) for lang in router.languages]
    missing = [lang for lang, i in zip(router.languages, ids, strict=True) if i is None]
    if missing:
        raise LangadaptError(f"per-language experts need the control tokens of {', '.join(missing)}",
                             where="lora.expert_languages",
                             fix="add `lang` to data.control_tokens and name languages the data has.")
    router.token_ids = torch.tensor(ids)
