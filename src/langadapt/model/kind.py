"""What a model can do, read from its config, never from a list of model names.

A causal LM predicts each token from the tokens before it; every causal method, objective and
score (bits per byte) assumes that. Encoder-only models (BERT, RoBERTa, ...) see the token they
predict, and seq2seq models (T5, BART, ...) need an encoder input, so both would give figures
that mean nothing; they are refused for causal work with a message naming the jobs that take
them (masked-LM training, classifiers). The decision comes from transformers' own tables:
`is_encoder_decoder`, whether the model type has a causal-LM class at all, and, for encoder
families that also have a causal head (`BertLMHeadModel`), whether the config says `is_decoder`.
Also here: the config checks that must run before any work (position limit, embedding rows
against the weights' own shapes, read from the safetensors header without loading a tensor).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Literal

from transformers import PretrainedConfig
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from langadapt.errors import LangadaptError

Kind = Literal["causal", "masked", "seq2seq", "other"]
OTHER_JOBS = "masked-LM training (`train.objective: masked`) and classifiers (`task:`)"


def model_kind(config: PretrainedConfig) -> Kind:
    """`causal`, `masked` (encoder-only with an LM head), `seq2seq` or `other` (no LM head)."""
    model_type = config.model_type
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    masked = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (not masked or getattr(config, "is_decoder", False)):
        return "causal"
    return "masked" if masked else "other"


def require_causal(config: PretrainedConfig, where: str, job: str = "causal language modelling") -> None:
    """Refuse a model that is not a causal LM for `job` (adaptation, causal training, bits per byte)."""
    kind = model_kind(config)
    if kind == "causal":
        return
    described = {"masked": "an encoder-only (masked LM) model: it sees the token it predicts",
                 "seq2seq": "an encoder-decoder (seq2seq) model: it predicts from a separate encoder input",
                 "other": "a model with no causal-LM head in transformers"}[kind]
    raise LangadaptError(f"is a {config.model_type!r} model, {described}, so {job} with it would give "
                         "meaningless figures", where=where,
                         fix=f"use a causal (decoder-only) LM here; a {config.model_type!r} model is accepted by "
                             f"{OTHER_JOBS}.")


def position_limit(config: PretrainedConfig) -> int | None:
    """The most positions the model was built for (`max_position_embeddings`, GPT-2's `n_positions`)."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return limit if isinstance(limit, int) else None


def check_block_size(config: PretrainedConfig, block_size: int, where: str) -> None:
    """Refuse training blocks longer than the model's positions (an IndexError deep in the model otherwise)."""
    limit = position_limit(config)
    if limit is not None and block_size > limit:
        raise LangadaptError(f"model.block_size {block_size} is more than the {limit} positions a "
                             f"{config.model_type!r} model has", where=where,
                             fix=f"set model.block_size to {limit} or less.")


def safetensors_shapes(folder: Path) -> dict[str, list[int]]:
    """Every tensor's shape in a folder's safetensors files, from their JSON headers only (no weights read)."""
    shapes: dict[str, list[int]] = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        with open(file, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            header = json.loads(handle.read(size))
        shapes.update({name: entry["shape"] for name, entry in header.items() if name != "__metadata__"})
    return shapes


def _rows(shapes: dict[str, list[int]], module_name: str) -> int | None:
    """Rows of the saved weight of `module_name`: its exact key, else the one key ending like it
    (checkpoints may carry another prefix than the class, e.g. `transformer.` or none)."""
    key = f"{module_name}.weight"
    if key in shapes:
        return shapes[key][0]
    tail = ".".join(key.split(".")[-2:])
    found = [shape for name, shape in shapes.items() if name == tail or name.endswith("." + tail)]
    return found[0][0] if len(found) == 1 else None


def check_embedding_rows(folder: Path, config: PretrainedConfig, where: str) -> None:
    """Refuse a config whose `vocab_size` disagrees with the rows of the saved embedding (and output) matrix.

    The module names come from the model class itself, built on the meta device (no memory, no
    weights), so any architecture is checked without a table of names."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    shapes = safetensors_shapes(folder)
    if not shapes:
        return
    auto = AutoModelForMaskedLM if model_kind(config) == "masked" else AutoModelForCausalLM
    try:
        with torch.device("meta"):
            model = auto.from_config(config)
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError):
        return  # a config transformers cannot build fails with its own message when it is loaded
    modules = {module: name for name, module in model.named_modules()}
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        rows = _rows(shapes, modules[layer]) if layer in modules else None
        if rows is not None and rows != config.vocab_size:
            raise LangadaptError(f"config.json says vocab_size {config.vocab_size} but the saved weight of "
                                 f"{modules[layer]} has {rows} rows", where=where,
                                 fix=f"set vocab_size to {rows} in {Path(folder) / 'config.json'} (the weights are "
                                     "what was trained), or use the config that was saved with these weights.")
