"""A registry of initialisers for new embedding rows: one function each, one signature.

Each takes the old embedding matrix and, for every new token, the old-token ids the old
tokenizer cuts it into, and returns the new rows. `resize_and_init` applies one to a model's
input embeddings (and to its output embeddings when they are not tied).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel


@dataclass
class InitContext:
    old: torch.Tensor  # (old vocab, dim): the embedding matrix before expansion
    pieces: list[list[int]]  # per new token: ids of its pieces under the old tokenizer
    std: float  # the model's initialiser std (for `random`)
    generator: torch.Generator


Initialiser = Callable[[InitContext], torch.Tensor]
INITIALISERS: dict[str, Initialiser] = {}


def initialiser(name: str) -> Callable[[Initialiser], Initialiser]:
    def register(function: Initialiser) -> Initialiser:
        INITIALISERS[name] = function
        return function

    return register


@initialiser("random")
def random_init(ctx: InitContext) -> torch.Tensor:
    """Normal(0, std) as for a fresh model: the baseline every other method must beat."""
    shape = (len(ctx.pieces), ctx.old.shape[1])
    return torch.randn(shape, generator=ctx.generator, dtype=ctx.old.dtype) * ctx.std


@initialiser("mean")
def mean_init(ctx: InitContext) -> torch.Tensor:
    """Every new row is the mean of the old rows: a cheap, strong baseline (Hewitt)."""
    return ctx.old.mean(dim=0, keepdim=True).expand(len(ctx.pieces), -1).clone()


@initialiser("multivariate")
def multivariate_init(ctx: InitContext) -> torch.Tensor:
    """Samples from a normal with the old rows' mean and covariance (Hewitt)."""
    old = ctx.old.double()
    mean = old.mean(dim=0)
    cov = torch.cov(old.T) + 1e-5 * torch.eye(old.shape[1], dtype=old.dtype)
    chol = torch.linalg.cholesky(cov)
    noise = torch.randn((len(ctx.pieces), old.shape[1]), generator=ctx.generator, dtype=old.dtype)
    return (mean + noise @ chol.T).to(ctx.old.dtype)


@initialiser("subword-mean")
def subword_mean_init(ctx: InitContext) -> torch.Tensor:
    """Mean of the old rows of the pieces the old tokenizer cuts the new token into."""
    return torch.stack([ctx.old[ids].mean(dim=0) for ids in ctx.pieces])


def resize_and_init(model: PreTrainedModel, pieces: list[list[int]], method: str, seed: int) -> None:
    """Grow the vocabulary by `len(pieces)` rows and fill them with initialiser `method`."""
    old_size = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(old_size + len(pieces), mean_resizing=False)
    std = getattr(model.config, "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    with torch.no_grad():
        for weight in matrices:
            ctx = InitContext(weight[:old_size].detach().clone(), pieces, std, generator)
            weight[old_size:] = INITIALISERS[method](ctx).to(weight.dtype)
