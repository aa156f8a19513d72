"""Frozen sentence representations: the mean of a layer's hidden states over a text's tokens.

Probes and retrieval read the model through this one function, so they measure what the
model's states already encode (nothing here trains the model)."""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel


@torch.no_grad()
def hidden_states(
    model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], layer: int = -1, batch_size: int = 32,
) -> list[np.ndarray]:
    """Per text, the (tokens × width) states of `layer` (−1: last). A text longer than the model's
    context is read in consecutive context-long pieces, so every token gets a state.

    Pieces are batched by length (little padding), and only the model's body runs: its output
    layer (576 × 49,152 multiply-adds per token in SmolLM2, a fifth of the whole) is not needed."""
    context = model.config.max_position_embeddings
    pieces: list[tuple[int, list[int]]] = []  # (text index, token ids)
    for index, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        ids = encoding.ids or [0]
        pieces += [(index, ids[start : start + context]) for start in range(0, len(ids), context)]
    device = next(model.parameters()).device
    model.eval()
    states: list[np.ndarray] = [np.empty(0)] * len(pieces)
    by_length = sorted(range(len(pieces)), key=lambda position: len(pieces[position][1]))
    for start in range(0, len(pieces), batch_size):
        positions = by_length[start : start + batch_size]
        chunk = [pieces[position] for position in positions]
        width = max(len(ids) for _, ids in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (_, sequence) in enumerate(chunk):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        output = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        layer_states = output.hidden_states[layer].float().cpu().numpy()
        for position, (_, sequence), row_states in zip(positions, chunk, layer_states, strict=True):
            states[position] = row_states[: len(sequence)]
    per_text: list[list[np.ndarray]] = [[] for _ in texts]
    for (index, _), state in zip(pieces, states, strict=True):  # pieces in reading order
        per_text[index].append(state)
    return [np.concatenate(parts) for parts in per_text]


def mean_pooled(
    model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], layer: int = -1, batch_size: int = 32,
) -> np.ndarray:
    """(texts × width) array: each text's states of `layer` averaged over its tokens."""
    return np.stack([s.mean(axis=0) for s in hidden_states(model, tokenizer, texts, layer, batch_size)])
