"""A registry of initialisers for new embedding rows: one function each, one signature.

Each takes the old embedding matrix and, for every new token, the old-token ids the old
tokenizer cuts it into, and returns the new rows. `resize_and_init` applies one to a model's
input embeddings (and to its output embeddings when they are not tied).

The methods that learn from target text (`focus`, `ofa`, `omp`, `cw2v`) read optional context:
static token vectors (`vocab/static.py`) or the target text as expanded-tokenizer ids, where
new token i has id `len(old) + i`. `NEEDS` says which of these a method reads, so a caller
computes only what the chosen methods use. With vectors read from a file, a new token the
file has no vector for starts from `subword-mean`. `focus`, `ofa` (full rank) and `cw2v` return
convex combinations of old rows (`Mixture`), which the CW2V paper shows is a safe start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.registry import INITIALISERS
from langadapt.vocab.factorise import low_rank_basis
from langadapt.vocab.static import StaticVectors


@dataclass
class InitContext:
    old: torch.Tensor  # (old vocab, dim): the embedding matrix before expansion
    pieces: list[list[int]]  # per new token: ids of its pieces under the old tokenizer
    std: float  # the model's initialiser std (for `random`)
    generator: torch.Generator
    static: StaticVectors | None = None  # token vectors from target text (focus, ofa)
    target_ids: list[list[int]] | None = None  # target text under the expanded tokenizer (cw2v)
    rank: int | None = None  # ofa: rank of the embedding factorisation; None keeps full rank

    @property
    def new_ids(self) -> torch.Tensor:
        return torch.arange(self.old.shape[0], self.old.shape[0] + len(self.pieces))

    def need(self, field: str, method: str):
        value = getattr(self, field)
        if value is None:
            raise LangadaptError(f"initialiser {method!r} needs `{field}`, which was not given",
                                 fix="call resize_and_init with the context NEEDS lists for this method.")
        return value


@dataclass
class Mixture:
    """New rows as convex combinations of old rows: row i = sum_j weight[i, j] * old[index[i, j]]."""

    index: torch.Tensor  # (new, k) old token ids
    weight: torch.Tensor  # (new, k), non-negative, each row sums to 1

    def rows(self, old: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.index.shape[0]).repeat_interleave(self.index.shape[1])
        sparse = torch.sparse_coo_tensor(torch.stack([rows, self.index.flatten()]), self.weight.flatten(),
                                         (self.index.shape[0], old.shape[0]), dtype=old.dtype,
                                         check_invariants=True)
        return torch.sparse.mm(sparse, old)


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the simplex (Martins & Astudillo): softmax with exact zeros."""
    ranked = z.sort(dim=-1, descending=True).values
    cumulative = ranked.cumsum(-1)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support = (1 + k * ranked > cumulative).sum(-1, keepdim=True)
    tau = (cumulative.gather(-1, support - 1) - 1) / support
    return (z - tau).clamp(min=0)


def topk_cosine(queries: torch.Tensor, keys: torch.Tensor, k: int, chunk: int = 1024):
    """(similarities, key indices) of the k keys closest to each query, in chunks to bound memory."""
    keys = F.normalize(keys.float(), dim=-1)
    values, indices = [], []
    for block in F.normalize(queries.float(), dim=-1).split(chunk):
        top = (block @ keys.T).topk(min(k, keys.shape[0]), dim=-1)
        values.append(top.values)
        indices.append(top.indices)
    return torch.cat(values), torch.cat(indices)


def random_init(ctx: InitContext) -> torch.Tensor:
    """Normal(0, std) as for a fresh model: the baseline every other method must beat."""
    shape = (len(ctx.pieces), ctx.old.shape[1])
    return torch.randn(shape, generator=ctx.generator, dtype=ctx.old.dtype) * ctx.std


def mean_init(ctx: InitContext) -> torch.Tensor:
    """Every new row is the mean of the old rows: a cheap, strong baseline (Hewitt)."""
    return ctx.old.mean(dim=0, keepdim=True).expand(len(ctx.pieces), -1).clone()


def multivariate_init(ctx: InitContext) -> torch.Tensor:
    """Samples from a normal with the old rows' mean and covariance (Hewitt)."""
    old = ctx.old.double()
    mean = old.mean(dim=0)
    cov = torch.cov(old.T) + 1e-5 * torch.eye(old.shape[1], dtype=old.dtype)
    chol = torch.linalg.cholesky(cov)
    noise = torch.randn((len(ctx.pieces), old.shape[1]), generator=ctx.generator, dtype=old.dtype)
    return (mean + noise @ chol.T).to(ctx.old.dtype)


def subword_mean_init(ctx: InitContext) -> torch.Tensor:
    """Mean of the old rows of the pieces the old tokenizer cuts the new token into."""
    return torch.stack([ctx.old[ids].mean(dim=0) for ids in ctx.pieces])


def seen_old_tokens(ctx: InitContext, method: str) -> tuple[StaticVectors, torch.Tensor]:
    """The static vectors and the ids of the old tokens that have one and occur in the target text."""
    static: StaticVectors = ctx.need("static", method)
    n_old = ctx.old.shape[0]
    overlap = ((static.counts[:n_old] > 0) & static.known[:n_old]).nonzero().squeeze(1)
    if not len(overlap):
        raise LangadaptError(f"{method}: no old token with a static vector occurs in the target text",
                             fix="train the static vectors on target text cut by the expanded tokenizer.")
    return static, overlap


def focus_mixture(ctx: InitContext, k: int = 64) -> Mixture:
    """FOCUS: sparsemax over cosine similarity to the old tokens that also occur in the target text.

    Sparsemax keeps the few old tokens used like the new one. Only the k most similar enter it,
    which bounds memory at 10k x 50k and is exact whenever the support is smaller than k (on
    real text it is far smaller; tests/test_vocab_init.py checks it).
    """
    static, overlap = seen_old_tokens(ctx, "focus")
    sims, near = topk_cosine(static.vectors[ctx.new_ids], static.vectors[overlap], k)
    return Mixture(overlap[near], sparsemax(sims))


def without_vectors_as_subword_mean(ctx: InitContext, rows: torch.Tensor) -> torch.Tensor:
    """New tokens that read vectors (`vocab.static_vectors`) have no vector for start from `subword-mean`."""
    missing = ~ctx.static.known[ctx.new_ids]
    if missing.any():
        rows[missing] = subword_mean_init(ctx)[missing]
    return rows


def focus_init(ctx: InitContext) -> torch.Tensor:
    return without_vectors_as_subword_mean(ctx, focus_mixture(ctx).rows(ctx.old))


def ofa_mixture(ctx: InitContext, k: int = 10, temperature: float = 0.1) -> Mixture:
    """OFA: softmax over the k old tokens whose static vectors are closest to the new token's."""
    static: StaticVectors = ctx.need("static", "ofa")
    candidates = static.known[: ctx.old.shape[0]].nonzero().squeeze(1)
    sims, near = topk_cosine(static.vectors[ctx.new_ids], static.vectors[candidates], k)
    return Mixture(candidates[near], torch.softmax(sims / temperature, dim=-1))


def ofa_init(ctx: InitContext) -> torch.Tensor:
    """OFA's mixture; with `rank`, computed in the rank-r factorisation E ≈ A·P of the old matrix.

    The new rows are then A_new·P, with A_new the mixture of the old coordinates A = E·Pᵀ and P
    the top-r right singular vectors (`low_rank_basis`). They are returned as full rows; the
    `embeddings-factorised` adapter (vocab/factorise.py) then trains A_new and P instead of
    full rows, with no residual for these new rows.
    """
    rows = without_vectors_as_subword_mean(ctx, ofa_mixture(ctx).rows(ctx.old))
    if ctx.rank is None:
        return rows
    basis = low_rank_basis(ctx.old, ctx.rank)
    return rows @ basis.T @ basis


def orthogonal_matching_pursuit(targets: torch.Tensor, atoms: torch.Tensor,
                                k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, coefficients), each (targets, k): every target ≈ coefficients · atoms[indices].

    Greedy, batched over targets: pick the atom most correlated with what is left unexplained,
    refit all picked atoms by least squares, repeat k times (Pati et al., 1993).
    """
    targets, atoms = targets.double(), atoms.double()
    unit = F.normalize(atoms, dim=-1)
    residual = targets.clone()
    chosen = torch.empty(len(targets), 0, dtype=torch.long)
    coefficients = torch.empty(len(targets), 0, dtype=targets.dtype)
    for _ in range(min(k, len(atoms))):
        scores = (residual @ unit.T).abs()
        scores.scatter_(1, chosen, -1.0)  # an atom is picked once
        chosen = torch.cat([chosen, scores.argmax(-1, keepdim=True)], dim=1)
        basis = atoms[chosen].transpose(1, 2)  # (targets, dim, picked)
        coefficients = torch.linalg.lstsq(basis, targets.unsqueeze(-1)).solution.squeeze(-1)
        residual = targets - torch.einsum("tdp,tp->td", basis, coefficients)
    return chosen, coefficients


def omp_init(ctx: InitContext, k: int = 8) -> torch.Tensor:
    """After mergekit's tokensurgeon: each new token's static vector as a sparse combination of
    the static vectors of old tokens seen in the target text (orthogonal matching pursuit, k
    atoms), and its row the same combination of those tokens' old rows.

    The static vectors are the shared space where old and new tokens both live (tokensurgeon
    uses a donor model's embeddings there). Unlike `focus` the weights are least-squares
    coefficients, not a convex mixture, so a row can leave the old rows' hull.
    """
    static, overlap = seen_old_tokens(ctx, "omp")
    chosen, coefficients = orthogonal_matching_pursuit(static.vectors[ctx.new_ids], static.vectors[overlap], k)
    rows = torch.einsum("nk,nkd->nd", coefficients.to(ctx.old.dtype), ctx.old[overlap[chosen]])
    return without_vectors_as_subword_mean(ctx, rows)


@dataclass
class SkipGram:
    """Word2vec's skip-gram with negative sampling for the new tokens of the target text.

    Centres are new tokens; context and negative vectors are fixed: the old rows for old tokens
    and the subword-mean rows for new ones, so the learned rows live in the old model's space.
    Negatives are drawn once per new token (not per pair) from unigram^0.75, which keeps a
    step cheap for 10k new tokens.
    """

    centres: torch.Tensor  # (pairs,) index of the new token
    contexts: torch.Tensor  # (pairs, dim) vector of a token within the window
    tokens: torch.Tensor  # (n,) new tokens that occur in the text
    negatives: torch.Tensor  # (n, k, dim) vectors of tokens drawn from unigram^0.75

    @classmethod
    def build(cls, ctx: InitContext, window: int = 3, n_negatives: int = 10, max_pairs: int = 20_000):
        sequences = ctx.need("target_ids", "cw2v")
        n_old = ctx.old.shape[0]
        stream = torch.tensor([i for seq in sequences for i in [*seq, -1]], dtype=torch.long)
        centres, contexts = [], []
        for offset in [o for o in range(-window, window + 1) if o]:
            centre = stream[max(0, -offset): len(stream) - max(0, offset)]
            context = stream[max(0, offset): len(stream) - max(0, -offset)]
            keep = (centre >= n_old) & (context >= 0)
            centres.append(centre[keep] - n_old)
            contexts.append(context[keep])
        centres, contexts = torch.cat(centres), torch.cat(contexts)
        if not len(centres):
            raise LangadaptError("cw2v: no new token occurs in the target text",
                                 fix="pass the target text cut by the expanded tokenizer.")
        chosen = torch.randperm(len(centres), generator=ctx.generator)[:max_pairs]
        table = torch.cat([ctx.old, subword_mean_init(ctx)]).float()
        tokens = centres[chosen].unique()
        frequency = torch.bincount(stream[stream >= 0], minlength=table.shape[0]).float() ** 0.75
        negatives = torch.multinomial(frequency, len(tokens) * n_negatives, replacement=True,
                                      generator=ctx.generator).view(len(tokens), n_negatives)
        return cls(centres[chosen], table[contexts[chosen]], tokens, table[negatives])

    def loss(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.float()
        positive = (rows[self.centres] * self.contexts).sum(-1)
        negative = torch.einsum("nd,nkd->nk", rows[self.tokens], self.negatives)
        return -(F.logsigmoid(positive).mean() + F.logsigmoid(-negative).sum(-1).mean())


def cw2v_mixture(ctx: InitContext, neighbours: int = 16, steps: int = 50, lr: float = 0.1) -> Mixture:
    """CW2V: skip-gram-trained weights over the token's pieces and the old rows nearest their mean.

    Weights are a softmax, so every row stays in the convex hull of the old rows; they start
    on the pieces (near `subword-mean`) and move towards whatever predicts the target contexts.
    """
    objective = SkipGram.build(ctx)
    pieces = torch.nn.utils.rnn.pad_sequence([torch.tensor(p) for p in ctx.pieces], batch_first=True,
                                             padding_value=-1)
    _, near = topk_cosine(subword_mean_init(ctx), ctx.old, neighbours)
    index = torch.cat([pieces.clamp(min=0), near], dim=1)
    start = torch.cat([torch.where(pieces >= 0, 0.0, float("-inf")), torch.full(near.shape, -5.0)], dim=1)
    logits = start.clone().requires_grad_(True)
    gathered = ctx.old.float()[index]
    optimizer = torch.optim.Adam([logits], lr=lr)
    with torch.enable_grad():  # resize_and_init fills rows under no_grad
        for _ in range(steps):
            optimizer.zero_grad()
            objective.loss(torch.einsum("nk,nkd->nd", logits.softmax(-1), gathered)).backward()
            optimizer.step()
    return Mixture(index, logits.detach().softmax(-1))


def cw2v_init(ctx: InitContext) -> torch.Tensor:
    return cw2v_mixture(ctx).rows(ctx.old)


def resize_and_init(model: PreTrainedModel, pieces: list[list[int]], method: str, seed: int,
                    **context) -> None:
    """Grow the vocabulary by `len(pieces)` rows and fill them with initialiser `method`.

    `context` holds the optional InitContext fields (`static`, `target_ids`, `rank`).
    """
    if not pieces:
        return
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
            ctx = InitContext(weight[:old_size].detach().clone(), pieces, std, generator, **context)
            weight[old_size:] = INITIALISERS[method](ctx).to(weight.dtype)


def initialise(model: PreTrainedModel, expansion, method: str, seed: int, **context) -> None:
    """Give `model` one embedding row per id of `expansion.tokenizer`, new ones by initialiser `method`.

    The one call for both `vocab.mode`s. Extend: the new rows follow the old ones. Replace: the
    old matrix is grown by the new rows as for extend, then rebuilt in the new tokenizer's id
    order (`expansion.rows`), so a shared token keeps its old row and the special-token ids in
    the model's config follow their tokens. `context` is `vocab.build.init_context`'s.
    """
    resize_and_init(model, expansion.pieces, method, seed, **context)
    if expansion.rows is None:
        return
    rows = torch.tensor(expansion.rows)
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    untied = output is not None and output.weight is not embedding.weight
    with torch.no_grad():
        kept = [embedding.weight[rows].clone(), *([output.weight[rows].clone()] if untied else [])]
        model.resize_token_embeddings(len(rows), mean_resizing=False)
        model.get_input_embeddings().weight.copy_(kept[0])
        if untied:
            model.get_output_embeddings().weight.copy_(kept[1])
    moved = {old: new for new, old in enumerate(expansion.rows) if old < expansion.first_new_id}
    for config in filter(None, (model.config, getattr(model, "generation_config", None))):
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value in moved:
                setattr(config, name, moved[value])
