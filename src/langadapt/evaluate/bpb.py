"""Bits per byte: the language-modelling metric that is fair across tokenizers.

For each text, the model reads EOS then the text's tokens and is scored on predicting every
text token (the EOS it starts from is context, never a target; no other special token is added).
The summed negative log-likelihood in bits is divided by the text's UTF-8 bytes, so a tokenizer
that cuts a language into more pieces gains nothing from it.

Texts longer than the model's context are scored with a sliding window: each window holds up
to `context` tokens and advances by `stride`, and scores only the tokens no earlier window
scored, so every token is scored exactly once, with `context - stride` or more tokens before it.
`stride = context` gives disjoint windows, which is what lm-evaluation-harness's
`loglikelihood_rolling` does; a smaller stride gives later tokens more context (lower bpb)
at the cost of more forward passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.model.head import output_layer, summed_loss
from langadapt.model.kind import require_causal


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


@dataclass
class Window:
    ids: list[int]  # model input followed by the last target: len(ids) - 1 predictions
    scored: int  # how many of the last predictions count (the rest are context only)


def sliding_windows(ids: list[int], context: int, stride: int) -> list[Window]:
    """Windows over [EOS, t1..tn] such that each of t1..tn is predicted exactly once."""
    if not 1 <= stride <= context:
        raise LangadaptError(f"stride {stride} is outside 1..{context} (the model's context)",
                             fix="set a stride between 1 and the context length.")
    n = len(ids) - 1  # number of targets
    end = min(n, context)
    windows = [Window(ids[: end + 1], end)]
    while end < n:
        new_end = min(n, end + stride)
        start = max(0, new_end - context)
        windows.append(Window(ids[start : new_end + 1], new_end - end))
        end = new_end
    return windows


def _scored_nats(model: PreTrainedModel, ids: torch.Tensor, attention: torch.Tensor, scored: torch.Tensor
                 ) -> torch.Tensor:
    """Summed NLL of the scored targets; the output layer runs on the scored positions only, in
    slices (model/head.py), so a 262k vocabulary never holds a batch's logits at once."""
    inputs = {"input_ids": ids[:, :-1], "attention_mask": attention[:, :-1]}
    layer = output_layer(model, inputs["input_ids"])
    if layer is None:
        logits = model(**inputs).logits.float()
        return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")[scored].sum()
    hidden = layer.hidden(**inputs)
    return summed_loss(layer, hidden[scored], ids[:, 1:][scored])


@torch.no_grad()
def bits_per_byte(
    model: PreTrainedModel,
    tokenizer: Tokenizer,
    texts: list[str],
    eos_id: int,
    batch_size: int = 32,
    stride: int | None = None,
) -> BpbResult:
    """Bits per byte of `texts` as one corpus (total bits / total bytes).

    `stride` defaults to half the context: long texts get at least half a window of context
    for every token after the first window. Only a causal LM has a bits per byte (model/kind.py)."""
    require_causal(model.config, f"model {model.config.name_or_path or model.config.model_type}",
                   job="scoring held-out text (bits per byte)")
    context = model.config.max_position_embeddings
    stride = stride or max(1, context // 2)
    windows: list[Window] = []
    n_tokens = 0
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        n_tokens += len(encoding.ids)
        if encoding.ids:
            windows += sliding_windows([eos_id, *encoding.ids], context, stride)
    windows.sort(key=lambda window: len(window.ids))  # batches of similar lengths: little padding
    device = next(model.parameters()).device
    model.eval()
    nats = 0.0
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        width = max(len(w.ids) for w in chunk)
        ids = torch.full((len(chunk), width), eos_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        scored = torch.zeros((len(chunk), width - 1), dtype=torch.bool)
        for row, window in enumerate(chunk):
            length = len(window.ids)
            ids[row, :length] = torch.tensor(window.ids)
            attention[row, :length] = 1
            scored[row, length - 1 - window.scored : length - 1] = True
        ids, attention, scored = ids.to(device), attention.to(device), scored.to(device)
        nats += float(_scored_nats(model, ids, attention, scored))
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    return BpbResult(bits=nats / math.log(2), bytes=n_bytes, tokens=n_tokens)


def bpb_evaluator(tokenizer: Tokenizer, heldout: dict[str, list[str]]):
    """`evaluate(model)` for the training loop: held-out bpb per language, rounded for the log."""
    from langadapt.vocab.tokenizer import end_of_text

    return lambda model: {lang: round(bits_per_byte(model, tokenizer, texts,
                                                    end_of_text(tokenizer, model.config.eos_token_id)).bpb, 4)
                          for lang, texts in heldout.items()}


def bpb_rows(model: PreTrainedModel, tokenizer: Tokenizer, texts: dict[str, list[str]],
             stride: int | None = None) -> list[dict]:
    """Results-table rows (language, metric, value): bpb and bytes per token for each language."""
    from langadapt.vocab.tokenizer import end_of_text

    eos = end_of_text(tokenizer, model.config.eos_token_id)
    rows = []
    for language, items in texts.items():
        result = bits_per_byte(model, tokenizer, items, eos, stride=stride)
        rows += [{"language": language, "metric": "bpb", "value": result.bpb},
                 {"language": language, "metric": "bytes_per_token", "value": result.bytes_per_token}]
    return rows
