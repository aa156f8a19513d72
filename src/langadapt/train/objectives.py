"""Training objectives in one registry: each maps (model, inputs, targets) to a scalar loss.

The loop stays the same for every objective; a new one (contrastive, code-switch restore) is
one function and one decorator line here. Inputs and targets come from the sampler as a block
and the same block shifted by one token, so causal LM uses both and masked LM only `inputs`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

Objective = Callable[[PreTrainedModel, torch.Tensor, torch.Tensor], torch.Tensor]
OBJECTIVES: dict[str, Objective] = {}

MASK_FRACTION = 0.15  # BERT's recipe: of the chosen positions, 80 % [MASK], 10 % random, 10 % kept


def objective(name: str) -> Callable[[Objective], Objective]:
    def register(function: Objective) -> Objective:
        OBJECTIVES[name] = function
        return function

    return register


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100)


@objective("causal")
def causal_lm(model: PreTrainedModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Predict every next token (GPT-2 / Llama pretraining). No KV cache: training never reuses
    it, and building one costs ~8 % of a step."""
    return _cross_entropy(model(input_ids=inputs, use_cache=False).logits, targets)


@objective("masked")
def masked_lm(model: PreTrainedModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Restore 15 % of the tokens from both sides' context (BERT). Needs `config.mask_token_id`."""
    mask_id = model.config.mask_token_id
    if mask_id is None:
        raise ValueError("masked LM needs model.config.mask_token_id (build_model sets it for arch 'bert')")
    chosen = torch.rand(inputs.shape, device=inputs.device) < MASK_FRACTION
    chosen[:, 0] |= ~chosen.any(dim=1)  # at least one position per row, so the loss is never empty
    roll = torch.rand(inputs.shape, device=inputs.device)
    corrupted = inputs.masked_fill(chosen & (roll < 0.8), mask_id)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(model.config.vocab_size, inputs.shape, device=inputs.device)
    corrupted = torch.where(swap, random_ids, corrupted)
    labels = inputs.masked_fill(~chosen, -100)
    return _cross_entropy(model(input_ids=corrupted).logits, labels)
