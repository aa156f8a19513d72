"""Training objectives: each maps (model, batch) to a scalar loss.

The loop stays the same for every objective; a new one is one function here and one line in
registry.OBJECTIVES. A batch is the sampler's mapping (`data.packing.Batch`):
`input_ids` and `labels` (the same block shifted by one token, -100 where no loss is taken), plus
whatever keys a sampler adds for its objective. Causal LM uses both; masked LM masks `input_ids`
where `labels` keep a loss (so a restore document's prompt is never masked).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from langadapt.data.packing import Batch
from langadapt.model.head import causal_loss

Objective = Callable[[PreTrainedModel, Batch], torch.Tensor]

MASK_FRACTION = 0.15  # BERT's recipe: of the chosen positions, 80 % [MASK], 10 % random, 10 % kept


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100)


def causal_lm(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Predict every next token (GPT-2 / Llama pretraining). No KV cache: training never reuses
    it, and building one costs ~8 % of a step. The output layer runs in slices of positions
    (model/head.py), so a large vocabulary never puts all the batch's logits in memory."""
    return causal_loss(model, batch["input_ids"], batch["labels"])


def _takes_loss(labels: torch.Tensor) -> torch.Tensor:
    """Which input positions a causal model would take loss on: labels are the inputs shifted by
    one, so position t takes loss when label t - 1 is kept (position 0 goes with position 1)."""
    kept = labels != -100
    return torch.cat([kept[:, :1], kept[:, :-1]], dim=1)


def masked_lm(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Restore 15 % of the tokens from both sides' context (BERT). Needs `config.mask_token_id`.

    Only positions that take loss are masked: all of plain text, but only the original half (and its
    end-of-text) of a code-switch restore document, so the model restores original words with the
    whole code-switched sentence in view (XLM's translation LM, one side masked: the encoder analogue
    of CSR4mBART's decoder restoring the original)."""
    inputs = batch["input_ids"]
    mask_id = model.config.mask_token_id
    if mask_id is None:
        raise ValueError("masked LM needs model.config.mask_token_id (build_model sets it for arch 'bert')")
    allowed = _takes_loss(batch["labels"])
    chosen = (torch.rand(inputs.shape, device=inputs.device) < MASK_FRACTION) & allowed
    first = allowed.int().argmax(dim=1)  # at least one position per row, so the loss is never empty
    chosen[torch.arange(len(inputs), device=inputs.device), first] |= ~chosen.any(dim=1)
    roll = torch.rand(inputs.shape, device=inputs.device)
    corrupted = inputs.masked_fill(chosen & (roll < 0.8), mask_id)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(model.config.vocab_size, inputs.shape, device=inputs.device)
    corrupted = torch.where(swap, random_ids, corrupted)
    labels = inputs.masked_fill(~chosen, -100)
    return _cross_entropy(model(input_ids=corrupted).logits, labels)
