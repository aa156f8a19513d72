"""Adaptation methods in one registry: each turns a model into the thing to train.

`full` trains everything; `lora` puts LoRA on every block; `layra` puts LoRA only on the
first and last k blocks (the layers that encode and decode the language), leaving the middle
frozen to limit forgetting. Parameter-efficient methods also train the new vocabulary rows
(peft's trainable tokens), since those start from an initialiser, not from training.
`embeddings` trains only the new rows, `embeddings-factorised` the new rows in OFA's rank-r
factorisation (their coordinates and the shared primitive embeddings), `embeddings-all` the
whole embedding matrix, and
`experts` freezes the base and adds new feed-forward experts to every block (delta tuning,
any GPT-2 or gated MLP): one shared expert, or one per language in `lora.expert_languages`, each
token routed to its document's language expert by the language control token.
A method `a+b` is a recipe of stages trained one after the other (e.g. `embeddings+layra`).

`export` turns any adapted model back into a stock transformers model (LoRA and trainable
tokens merged by peft, one language's experts merged into wider feed-forward layers, factors
multiplied out), so every result
loads with `AutoModelForCausalLM`; peft adapters are also saved as peft folders.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, TrainableTokensConfig, get_peft_model
from tokenizers import Tokenizer
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from langadapt.atomic import write_folder
from langadapt.data.mixing import control_token
from langadapt.errors import LangadaptError
from langadapt.model.config import LoraConfig
from langadapt.vocab.factorise import FactorisedEmbedding, factorise, multiply_out

# Blocks, projections and embeddings are found from the model itself (no table of architectures);
# these methods need only the embeddings, so they still work when the blocks cannot be found.
WITHOUT_BLOCKS = ("full", "embeddings", "embeddings-all")
PROJECTIONS = (nn.Linear, Conv1D)  # GPT-2 stores its linear layers as Conv1D, weight (in, out)


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.get_base_model() if isinstance(model, PeftModel) else model


def not_found(model: nn.Module, missing: str) -> LangadaptError:
    """The error for a model whose layout an adapter cannot read: its type, what is missing, what still works."""
    return LangadaptError(f"cannot find {missing} of a {_unwrapped(model).config.model_type!r} model",
                          fix=f"use a method that does not need them: {', '.join(WITHOUT_BLOCKS)}.")


def blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer blocks and their module path (`model.layers`, `transformer.h`, ...).

    Found as the first module list with one entry per hidden layer, so a new architecture
    needs no table entry, and a peft-wrapped model is looked through."""
    model = _unwrapped(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == model.config.num_hidden_layers:
            return name, module
    raise not_found(model, f"the transformer blocks (a module list of {model.config.num_hidden_layers} layers)")


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


def _router(model: nn.Module) -> Router | None:
    mlp = getattr(blocks(model)[1][0], "mlp", None)
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
    _, layer_list = blocks(model)
    if not isinstance(getattr(layer_list[0], "mlp", None), Experts):
        return model
    languages = expert_languages(model)
    if language is not None and language not in languages:
        raise LangadaptError(f"no expert for {language!r}", fix=f"choose one of {languages}.")
    index = languages.index(language) if language is not None else 0
    router = _router(model)
    for key in [key for key, hook in model._forward_pre_hooks.items() if hook is router]:
        del model._forward_pre_hooks[key]  # a stock model does not route
    for block in layer_list:
        width = widen(block.mlp.base, block.mlp.experts[index])
        block.mlp = block.mlp.base
    setattr(model.config, mlp_form(layer_list[0].mlp).width_key, width)
    return model


def save_peft_adapter(model: nn.Module, path: Path) -> Path | None:
    """A peft model's adapter as a peft folder (adapter_config.json + safetensors); None for others."""
    if not isinstance(model, PeftModel):
        return None
    return write_folder(path, model.save_pretrained)


def trainable_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
