"""What a model retained of the canary sets injected into its training (data/injection.py).

- **canary exposure** (Carlini et al. 2019): the true secret is ranked among its N seeded
  alternatives by the likelihood of the whole canary text; exposure = log2(N + 1) − log2(rank),
  0 when the secret is no likelier than chance would put it, log2(N + 1) when it ranks first.
  Mean over the set's canaries (`canary_exposure`).
- **fact recall**: the share of facts whose right completion is likelier than every distractor
  (`fact_recall`), and the mean log-likelihood margin, right − best distractor, in nats (`fact_margin`).
- **contamination gap**: bits per byte of the never-injected half minus that of the injected
  half (`contamination_gap`; > 0 means the model does better on text it saw).

A candidate's score is the summed log-likelihood of its text after EOS; the candidates of one item
share their prompt, so this ranks their completions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.data.injection import CanarySet
from langadapt.evaluate.bpb import bits_per_byte


@torch.no_grad()
def log_likelihoods(model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], eos_id: int,
                    batch_size: int = 64) -> torch.Tensor:
    """Summed log-likelihood (nats) of each text's tokens, read after EOS (texts fit the context)."""
    encoded = [[eos_id, *e.ids] for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    device = next(model.parameters()).device
    model.eval()
    scores = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), eos_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, sequence in enumerate(chunk):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            attention[row, : len(sequence)] = 1
        ids, attention = ids.to(device), attention.to(device)
        logits = model(input_ids=ids[:, :-1], attention_mask=attention[:, :-1]).logits.float()
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        scores.append(-(nll * attention[:, 1:]).sum(1).cpu())
    return torch.cat(scores)


def _candidate_scores(model, tokenizer, canary: CanarySet, eos_id: int) -> list[torch.Tensor]:
    flat = [text for item in canary.candidates for text in item]
    scores = log_likelihoods(model, tokenizer, flat, eos_id)
    return list(scores.split([len(item) for item in canary.candidates]))


def canary_metrics(model: PreTrainedModel, tokenizer: Tokenizer, canary: CanarySet, eos_id: int) -> dict[str, float]:
    """The set's metric(s) for `model` (see the module docstring)."""
    kind = canary.config.kind
    if kind == "heldout":
        seen = bits_per_byte(model, tokenizer, canary.injected, eos_id).bpb
        unseen = bits_per_byte(model, tokenizer, canary.heldout, eos_id).bpb
        return {"contamination_gap": unseen - seen, "bpb_injected": seen, "bpb_heldout": unseen}
    scores = _candidate_scores(model, tokenizer, canary, eos_id)
    if kind == "canary":
        exposures = []
        for item in scores:
            rank = 1 + int((item[1:] > item[0]).sum())
            exposures.append(math.log2(len(item)) - math.log2(rank))
        return {"canary_exposure": sum(exposures) / len(exposures)}
    margins = [float(item[0] - item[1:].max()) for item in scores]
    return {"fact_recall": sum(m > 0 for m in margins) / len(margins), "fact_margin": sum(margins) / len(margins)}


def canaries_evaluator(sets: list[CanarySet], tokenizer: Tokenizer, eos_id: int, then=None):
    """`evaluate(model)` for the training loop: `then(model)`'s figures plus `<set>/<metric>` per canary set."""

    def evaluate(model: PreTrainedModel) -> dict[str, float]:
        figures = dict(then(model)) if then is not None else {}
        for canary in sets:
            for metric, value in canary_metrics(model, tokenizer, canary, eos_id).items():
                figures[f"{canary.config.name}/{metric}"] = round(value, 5)
        return figures

    return evaluate


def canary_rows(log: list[dict], final: dict[str, float], steps: int) -> list[dict]:
    """Results-table rows (language = canary set, metric, value, step): the logged evaluations before
    the last step, then `final` (the final model's `<set>/<metric>` figures) at step `steps`."""
    rows = []
    for step, figures in [*((r["step"], r.get("eval", {})) for r in log if r["step"] < steps), (steps, final)]:
        for key, value in figures.items():
            if "/" in key:
                name, metric = key.split("/", 1)
                rows.append({"language": name, "metric": metric, "value": float(value), "step": step,
                             "role": "canary"})
    return rows
