"""Tiny random causal LMs of every model type the suite covers, built offline in milliseconds.

One place that knows how to shrink each model type (2 blocks, width 32, the caller's vocabulary),
so every test that runs "all architectures" (the method matrix in test_architectures.py, a later
export round trip) builds the same models. `tiny_model(model_type, vocab_size)` returns a
freshly initialised stock transformers model; `CAUSAL_TYPES` lists the covered types and
`REFUSED` the model types that cannot be causal bases, each with its reason. `adapt` runs one
method on a model the way the matrix test and benchmarks/architecture_matrix.py both check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

SHAPE = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 64}
MOE = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16}
# keys a model type needs beyond SHAPE, where its defaults are large or do not fit a width of 32
OVERRIDES: dict[str, dict] = {
    "qwen3_moe": MOE,
    "qwen2_moe": {**MOE, "shared_expert_intermediate_size": 32},
    "olmoe": {"num_experts": 4, "num_experts_per_tok": 2},
    "mixtral": {"num_local_experts": 4},
    "gemma2": {"sliding_window": 16},
    "gemma3_text": {"sliding_window": 16},
    "cohere2": {"sliding_window": 16},
}
# Each GGUF family's shape where transformers' GGUF loader reads a default instead of the file: Qwen3 and
# Gemma take head_dim from their config class (128 / 256), not from the file, and GPT-2 its 1024 positions;
# Mistral written untied.
GGUF_SHAPES: dict[str, dict] = {"llama": {}, "mistral": {"tie_word_embeddings": False}, "qwen2": {},
                                "qwen3": {"head_dim": 128}, "gemma2": {"head_dim": 256},
                                "gemma3_text": {"head_dim": 256}, "phi3": {}, "gpt2": {"max_position_embeddings": 1024}}
CAUSAL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "olmo2",
                "granite", "stablelm", "gpt_neox", "gpt2", "cohere", "cohere2", "olmo", "phi", "starcoder2",
                "helium", "qwen3_moe", "mixtral", "bloom")
# model types that have no causal LM in them: refused as causal bases (model/kind.py decides from the config)
REFUSED = {"bert": "encoder-only (masked LM): it sees the token it predicts",
           "bart": "encoder-decoder (seq2seq): it predicts from a separate encoder input",
           "t5": "encoder-decoder (seq2seq): it predicts from a separate encoder input"}


def tiny_config(model_type: str, vocab_size: int, eos_id: int = 0, **extra):
    """A 2-block, width-32 config of `model_type` with `vocab_size` rows (padding id inside the vocabulary)."""
    keys = {**SHAPE, **OVERRIDES.get(model_type, {}), "bos_token_id": eos_id, "eos_token_id": eos_id,
            "pad_token_id": eos_id, **extra}  # the caller's keys win
    return AutoConfig.for_model(model_type, vocab_size=vocab_size, **keys)


def tiny_model(model_type: str, vocab_size: int, eos_id: int = 0, seed: int = 0, **extra) -> PreTrainedModel:
    """A freshly initialised tiny causal LM of `model_type` (same weights for the same seed)."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config(model_type, vocab_size, eos_id, **extra))


METHODS = ("full", "lora", "layra", "embeddings+layra")
BLOCK, STEPS = 32, 6
LR = {"full": 3e-3, "lora": 3e-2, "layra": 3e-2, "embeddings": 3e-2}


@dataclass(frozen=True)
class Adapted:
    model: PreTrainedModel  # the stock model every stage was exported to
    before: float  # loss on the measured blocks before adapting
    trained: float  # ... after the last stage's training, with its adapters in place
    exported: float  # ... of the stock model exported from it (must equal `trained`)


def loss(model: PreTrainedModel, blocks: torch.Tensor) -> float:
    """Mean next-token loss of `model` on `blocks` (rows of BLOCK + 1 ids)."""
    with torch.no_grad():
        logits = model(input_ids=blocks[:, :-1], use_cache=False).logits
        return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), blocks[:, 1:].flatten()))


def adapt(model: PreTrainedModel, method: str, tokens, blocks: torch.Tensor, new_ids: list[int],
          log_dir: Path) -> Adapted:
    """Adapt `model` with `method` as `langadapt train` does: each stage trained STEPS steps on `tokens`
    (a packed id stream) and exported to a stock model before the next; the losses are on `blocks`."""
    from langadapt.data.packing import BlockSampler
    from langadapt.model.adapters import export
    from langadapt.model.config import LoraConfig
    from langadapt.registry import ADAPTERS, phases
    from langadapt.train.config import TrainConfig
    from langadapt.train.loop import train

    before = loss(model, blocks)
    lora = LoraConfig(r=4, alpha=8, edge_layers=1)
    for stage in phases(method):
        adapted = ADAPTERS[stage](model, lora, new_ids)
        train(adapted, BlockSampler(tokens, BLOCK, 8, 0), TrainConfig(steps=STEPS, lr=LR[stage], warmup_steps=0),
              0, log_dir / f"{method}-{stage}.jsonl")
        trained = loss(adapted, blocks)
        model = export(adapted)
    return Adapted(model, before, trained, loss(model, blocks))
