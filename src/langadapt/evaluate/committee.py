"""A committee of classifiers: several (shallow) models whose predicted probabilities are averaged.

The tiny-LM finding to test is whether k shallow models together beat one deeper model of about
the same size; a committee is an `nn.Module` whose output has `.logits` (the log of the members'
mean probabilities), so everything that scores one classifier (train/classify.py `accuracy`)
scores a committee unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class Committee(nn.Module):
    def __init__(self, members: list[PreTrainedModel]):
        super().__init__()
        if not members:
            raise ValueError("a committee needs at least one member")
        labels = {tuple(sorted(member.config.id2label.items())) for member in members}
        if len(labels) != 1:
            raise ValueError("committee members must predict the same labels (config.id2label)")
        self.members = nn.ModuleList(members)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SequenceClassifierOutput:
        """Mean of the members' softmax probabilities, as log-probabilities (their argmax is the vote)."""
        probabilities = torch.stack([member(input_ids=input_ids, attention_mask=attention_mask).logits.softmax(-1)
                                     for member in self.members]).mean(0)
        return SequenceClassifierOutput(logits=probabilities.log())


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
