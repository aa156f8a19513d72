"""The output layer in slices: loss and scores without a tokens × vocabulary logits tensor.

With a 262,144-token vocabulary (Gemma 3), the logits of one 8 × 256 batch are 2 GB in float32,
and the cross-entropy keeps as much again for its backward pass; the model's body is tiny beside
that. So the loss runs the model's body once, then the output layer on slices of positions: each
slice's logits live only while its loss and gradients are computed (`ChunkedCrossEntropy`
computes the slice's gradients in the forward pass, so nothing of the slice is kept and no
matmul is recomputed: the same three matmuls as the full path). Memory then grows with
`slice_rows × vocabulary`, not with the batch.

What a model does to its logits after the output layer is honoured from its config: soft-capping
(`final_logit_softcapping`: Gemma 2/3), division (`logits_scaling`: Granite) and multiplication
(`logit_scale`: Cohere). Anything else a model might do is caught once per model: the sliced
path is compared with the model's own forward on a few tokens, and a model it does not match
(or one wrapped by hooks, DDP or `torch.compile`, whose body cannot be called alone) keeps the
full-logits path, which is always right.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft import PeftModel
from torch import nn
from transformers import PreTrainedModel

log = logging.getLogger("langadapt")

LOGITS_PER_SLICE = 1 << 25  # logits held at once (128 MB in float32): slice rows = this // vocabulary
SLICED = True  # False: every model takes the full-logits path (benchmarks/large_vocab.py compares the two)
CHECK_TOKENS = 8  # positions of the one-off comparison with the model's own forward
_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → OutputLayer | None


@dataclass
class OutputLayer:
    """A causal LM split at its output layer: `body(**inputs)` gives the last hidden states,
    `head` maps them to logits and `transform` applies the model's own logit scaling."""

    body: nn.Module
    head: nn.Module
    transform: Callable[[torch.Tensor], torch.Tensor]
    vocab: int = 0  # logits per position, read off the model's own output by `output_layer`

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(self.head(hidden))

    def hidden(self, **inputs) -> torch.Tensor:
        return self.body(**inputs, use_cache=False)[0]


def logit_transform(config) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the model's forward does to the output layer's logits, read from its config."""
    cap = getattr(config, "final_logit_softcapping", None)
    divide = getattr(config, "logits_scaling", None)
    multiply = getattr(config, "logit_scale", None)

    def transform(logits: torch.Tensor) -> torch.Tensor:
        if isinstance(divide, (int, float)) and divide != 1:
            logits = logits / divide
        if isinstance(multiply, (int, float)) and multiply != 1:
            logits = logits * multiply
        if isinstance(cap, (int, float)) and cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return transform


def _split(model: nn.Module) -> OutputLayer | None:
    causal = model.get_base_model() if isinstance(model, PeftModel) else model
    if not isinstance(causal, PreTrainedModel) or any(m._forward_pre_hooks or m._forward_hooks
                                                       for m in {model, causal}):
        return None  # DDP / compiled wrappers and routing hooks (experts) need the model's own forward
    body = getattr(causal, causal.base_model_prefix, None)
    head = causal.get_output_embeddings()
    if body is None or body is causal or head is None:
        return None
    return OutputLayer(body, head, logit_transform(causal.config))


@torch.no_grad()
def _matches(model: nn.Module, layer: OutputLayer, input_ids: torch.Tensor) -> bool:
    """Whether the split reproduces the model's own logits on a few tokens (and learn their width)."""
    training = model.training
    model.eval()  # no dropout: both paths see the same weights and consume no random numbers
    try:
        ids = input_ids[:1, :CHECK_TOKENS]
        expected = model(input_ids=ids, use_cache=False).logits.float()
        ours = layer.logits(layer.hidden(input_ids=ids)).float()
        layer.vocab = expected.shape[-1]
        return ours.shape == expected.shape and torch.allclose(ours, expected, rtol=1e-3, atol=1e-3)
    finally:
        model.train(training)


def output_layer(model: nn.Module, input_ids: torch.Tensor) -> OutputLayer | None:
    """The model split at its output layer, or None where only its own forward is right (checked once)."""
    if not SLICED:
        return None
    try:
        return _checked[model]
    except (KeyError, TypeError):
        pass
    layer = _split(model)
    if layer is not None and not _matches(model, layer, input_ids):
        log.warning("%s: the output layer cannot be run in slices (its logits differ from the model's "
                    "own); using full logits, whose memory grows with the vocabulary",
                    type(model).__name__)
        layer = None
    try:
        _checked[model] = layer
    except TypeError:
        pass
    return layer


def slice_rows(layer: OutputLayer) -> int:
    return max(1, LOGITS_PER_SLICE // layer.vocab)


class ChunkedCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `hidden` rows against `targets`, one slice of rows at a time.

    Each slice's gradients (for its hidden rows and the output layer's trainable parameters)
    are computed in the forward pass and kept, scaled by the incoming gradient in backward: the
    slice's logits are freed at once, and each matmul runs once, as in the full path."""

    @staticmethod
    def forward(ctx, hidden, targets, layer, rows, *params):
        grad_hidden = torch.zeros_like(hidden)
        grads = [torch.zeros_like(p) for p in params]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, len(hidden), rows):
            piece = hidden[start : start + rows].detach().requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(layer.logits(piece).float(), targets[start : start + rows], reduction="sum")
                found = torch.autograd.grad(loss, [piece, *params])
            grad_hidden[start : start + rows] = found[0]
            for grad, new in zip(grads, found[1:], strict=True):
                grad += new
            total += loss.detach()
        ctx.save_for_backward(grad_hidden, *grads)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, *grads = ctx.saved_tensors
        return (grad_hidden * grad_total.to(grad_hidden.dtype), None, None, None,
                *(grad * grad_total.to(grad.dtype) for grad in grads))


def summed_loss(layer: OutputLayer, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (nats) of hidden states (positions × width) against target ids, in slices."""
    rows = slice_rows(layer)
    if torch.is_grad_enabled():
        params = [p for p in layer.head.parameters() if p.requires_grad]
        return ChunkedCrossEntropy.apply(hidden, targets, layer, rows, *params)
    return sum((F.cross_entropy(layer.logits(hidden[s : s + rows]).float(), targets[s : s + rows], reduction="sum")
                for s in range(0, len(hidden), rows)), torch.zeros((), device=hidden.device))


def causal_loss(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor, **inputs) -> torch.Tensor:
    """Mean next-token cross-entropy of `labels` (-100: no loss), never holding all logits at once.
    A batch with no kept label (every window a prompt longer than the block) gives 0, not NaN."""
    layer = output_layer(model, input_ids)
    kept = labels.reshape(-1) != -100
    if layer is None:
        logits = model(input_ids=input_ids, use_cache=False, **inputs).logits
        summed = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100,
                                 reduction="sum")
    else:
        hidden = layer.hidden(input_ids=input_ids, **inputs)
        summed = summed_loss(layer, hidden.reshape(-1, hidden.size(-1))[kept], labels.reshape(-1)[kept])
    return summed / kept.sum().clamp(min=1)
