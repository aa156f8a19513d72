"""Where a model keeps its parts: the transformer blocks, found from the model itself (the first
module list with one entry per hidden layer), so a new architecture needs no table entry."""

from __future__ import annotations

from peft import PeftModel
from torch import nn

from langadapt.errors import LangadaptError

# Methods that need only the embeddings, so they still work when the blocks cannot be found.
WITHOUT_BLOCKS = ("full", "embeddings", "embeddings-all")


def unwrapped(model: nn.Module) -> nn.Module:
    return model.get_base_model() if isinstance(model, PeftModel) else model


def not_found(model: nn.Module, missing: str) -> LangadaptError:
    """The error for a model whose layout an adapter cannot read: its type, what is missing, what still works."""
    return LangadaptError(f"cannot find {missing} of a {unwrapped(model).config.model_type!r} model",
                          fix=f"use a method that does not need them: {', '.join(WITHOUT_BLOCKS)}.")


def blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer blocks and their module path (`model.layers`, `transformer.h`, ...).

    Found as the first module list with one entry per hidden layer, so a new architecture
    needs no table entry, and a peft-wrapped model is looked through."""
    model = unwrapped(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == model.config.num_hidden_layers:
            return name, module
    raise not_found(model, f"the transformer blocks (a module list of {model.config.num_hidden_layers} layers)")
