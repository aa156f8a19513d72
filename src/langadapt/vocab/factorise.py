"""OFA's factorised embedding E ≈ A·P, trained in its factors and multiplied out for saving.

OFA (Liu et al., 2024) writes the embedding matrix as coordinates A (vocab × r) over r
"primitive embeddings" P (r × d). Here the factorisation saves where it matters, during
adaptation: only the new rows' coordinates A_new and the primitives P train, n_new·r + r·d
parameters instead of the n_new·d of full new rows, and the optimiser state shrinks with them.
P starts as the top-r right singular vectors of the old rows and A = E·Pᵀ. What the rank-r
form misses of each row, R = E − A·P, is kept as a frozen buffer, so the factorised model
computes exactly what the expanded model did: old rows are R_old + A_old·P (they move with P,
inside the rank-r subspace), new rows R_new + A_new·P, and R_new = 0 when `ofa` initialised
them with `vocab.ofa_rank` = r. The buffers are derived from the model, so checkpoints leave
them out. `multiply_out` turns the factors back into nn.Embedding / nn.Linear, so the saved
folder loads with stock transformers. A tied output layer shares the input's factors; an
untied one gets its own. An embedding class that scales its output (Gemma's √d) keeps doing
so: the original module is kept, without its weight, and gets the full matrix back at export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError


def low_rank_basis(old: torch.Tensor, rank: int) -> torch.Tensor:
    """The top-`rank` right singular vectors of `old` (rank × dim): OFA's primitive embeddings."""
    if rank > min(old.shape):
        raise LangadaptError(f"a rank-{rank} factorisation does not fit a {old.shape[0]} × {old.shape[1]} "
                             "embedding matrix", where="vocab.ofa_rank / adapt.lora.embedding_rank",
                             fix=f"use a rank of at most {min(old.shape)} (OFA uses 100–400 for 768–1024 dims).")
    return torch.linalg.svd(old.float(), full_matrices=False).Vh[:rank].to(old.dtype).contiguous()


class FactorisedEmbedding(nn.Module):
    """Embedding rows R + [A_old; A_new]·P; A_new and P train, R and A_old are frozen buffers."""

    def __init__(self, weight: torch.Tensor, n_old: int, rank: int, padding_idx: int | None = None,
                 stock: nn.Embedding | None = None):
        super().__init__()
        self.stock = (stock,)  # a tuple, so the weightless original is not a submodule
        weight = weight.detach()
        basis = low_rank_basis(weight[:n_old], rank)
        coords = weight @ basis.T
        self.padding_idx = padding_idx
        self.register_buffer("residual", weight - coords @ basis, persistent=False)
        self.register_buffer("old_coords", coords[:n_old].clone(), persistent=False)
        self.new_coords = nn.Parameter(coords[n_old:].clone())
        self.primitives = nn.Parameter(basis.clone())

    def coords(self) -> torch.Tensor:
        return torch.cat([self.old_coords, self.new_coords])

    def matrix(self) -> torch.Tensor:
        """The full (vocab × d) matrix the factors stand for."""
        return self.residual + self.coords() @ self.primitives

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.residual) + F.embedding(ids, self.coords()) @ self.primitives
        scale = getattr(self.stock[0], "embed_scale", None)
        return rows if scale is None else rows * scale.to(rows.dtype)


class FactorisedHead(nn.Module):
    """An output layer whose weight is a FactorisedEmbedding's matrix (the input's own when tied)."""

    def __init__(self, factors: FactorisedEmbedding, bias: nn.Parameter | None):
        super().__init__()
        self.factors, self.bias = factors, bias

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.factors.matrix(), self.bias)


def factorise(model: PreTrainedModel, n_old: int, rank: int) -> PreTrainedModel:
    """Freeze `model` and swap its embeddings for rank-`rank` factors whose rows from `n_old` on train."""
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(embedding, nn.Embedding) or not (output is None or type(output) is nn.Linear):
        raise LangadaptError(f"cannot factorise the embeddings of a {model.config.model_type} model "
                             f"({type(embedding).__name__}, {type(output).__name__})",
                             fix="use the `embeddings` method, which trains full new rows.")
    model.requires_grad_(False)
    factors = FactorisedEmbedding(embedding.weight, n_old, rank, embedding.padding_idx, stock=embedding)
    model.set_input_embeddings(factors)
    if output is not None:
        own = factors if output.weight is embedding.weight else FactorisedEmbedding(output.weight, n_old, rank)
        model.set_output_embeddings(FactorisedHead(own, output.bias))
    embedding.weight = None  # the factors stand for it now
    return model


def multiply_out(model: PreTrainedModel) -> PreTrainedModel:
    """Replace the factors by the full matrices they stand for: a stock transformers model again."""
    factors, head = model.get_input_embeddings(), model.get_output_embeddings()
    embedding = factors.stock[0]
    embedding.weight = nn.Parameter(factors.matrix().detach().clone())
    model.set_input_embeddings(embedding)
    if isinstance(head, FactorisedHead):
        tied = head.factors is factors
        weight = embedding.weight if tied else nn.Parameter(head.factors.matrix().detach().clone())
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=head.bias is not None)
        linear.weight = weight
        if head.bias is not None:
            linear.bias = head.bias
        model.set_output_embeddings(linear)
    return model
