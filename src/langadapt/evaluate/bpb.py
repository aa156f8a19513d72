"""Bits per byte: the language-modelling metric that is fair across tokenizers.

For each text, the model reads EOS then the text's tokens and is scored on predicting every
text token (the EOS it starts from is context, never a target). The summed negative
log-likelihood in bits is divided by the text's UTF-8 bytes, so a tokenizer that cuts a
language into more pieces gains nothing from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import PreTrainedModel


@dataclass
class BpbResult:
    bits: float
    bytes: int
    tokens: int

    @property
    def bpb(self) -> float:
        return self.bits / self.bytes

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens


def _windows(ids: list[int], context: int) -> list[list[int]]:
    """Cut [EOS, t1..tn] into windows of ≤ context+1 tokens that overlap by one token, so
    each text token is predicted exactly once."""
    return [ids[start : start + context + 1] for start in range(0, len(ids) - 1, context)]


@torch.no_grad()
def bits_per_byte(
    model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], eos_id: int, batch_size: int = 32
) -> BpbResult:
    context = model.config.max_position_embeddings
    windows: list[list[int]] = []
    n_tokens = 0
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        n_tokens += len(encoding.ids)
        windows += _windows([eos_id, *encoding.ids], context)
    device = next(model.parameters()).device
    model.eval()
    nats = 0.0
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        width = max(len(w) for w in chunk)
        ids = torch.full((len(chunk), width), eos_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, window in enumerate(chunk):
            ids[row, : len(window)] = torch.tensor(window)
            mask[row, : len(window)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1]).logits.float()
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        nats += float((nll * mask[:, 1:]).sum())
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    return BpbResult(bits=nats / math.log(2), bytes=n_bytes, tokens=n_tokens)
