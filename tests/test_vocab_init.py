"""The initialisers that learn from target text: focus, ofa, cw2v (and sparsemax under focus)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.errors import LangadaptError
from langadapt.registry import INITIALISERS, NEEDS
from langadapt.vocab.init import (
    InitContext,
    SkipGram,
    cw2v_mixture,
    focus_mixture,
    ofa_mixture,
    orthogonal_matching_pursuit,
    resize_and_init,
    sparsemax,
)
from langadapt.vocab.static import token_ids, train_static


@pytest.fixture(scope="module")
def hsb_context(tokenizers, sample_docs):
    """An old embedding matrix for the source tokenizer and the real hsb context of the expansion."""
    source, _, expansion = tokenizers
    texts = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    static = train_static(expansion.tokenizer, texts, dim=32, seed=0)
    generator = torch.Generator().manual_seed(0)
    old = torch.randn(source.get_vocab_size(), 24, generator=generator)
    ids = token_ids(expansion.tokenizer, texts)
    return InitContext(old, expansion.pieces, 0.02, generator, static=static, target_ids=ids)


def _assert_convex(mixture, ctx, rows):
    assert (mixture.weight >= 0).all()
    assert torch.allclose(mixture.weight.sum(-1), torch.ones(len(ctx.pieces)), atol=1e-5)
    assert (mixture.index < ctx.old.shape[0]).all()  # only old rows, never another new one
    expected = torch.einsum("nk,nkd->nd", mixture.weight, ctx.old[mixture.index])
    assert torch.allclose(rows, expected, atol=1e-5)


def test_sparsemax_projects_onto_the_simplex_with_exact_zeros():
    z = torch.tensor([[0.9, 0.8, 0.1, -0.5], [2.0, 0.0, 0.0, 0.0]])
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(2))
    assert torch.allclose(p[0], torch.tensor([0.55, 0.45, 0.0, 0.0]))  # tau = 0.35
    assert torch.equal(p[1], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_focus_rows_are_sparse_convex_combinations_of_overlapping_tokens(hsb_context):
    ctx = hsb_context
    mixture = focus_mixture(ctx)
    rows = INITIALISERS["focus"](ctx)
    _assert_convex(mixture, ctx, rows)
    used = mixture.index[mixture.weight > 0]
    assert (ctx.static.counts[used] > 0).all()  # only old tokens that occur in the target text
    assert ((mixture.weight > 0).sum(-1) < mixture.weight.shape[1]).all()  # sparse, so the top-k cut is exact


def test_focus_weights_follow_static_similarity(hsb_context):
    ctx = hsb_context
    mixture = focus_mixture(ctx)
    best = mixture.index[torch.arange(len(ctx.pieces)), mixture.weight.argmax(-1)]
    cos = torch.nn.functional.cosine_similarity(ctx.static.vectors[ctx.new_ids], ctx.static.vectors[best])
    overlap = (ctx.static.counts[: ctx.old.shape[0]] > 0).nonzero().squeeze(1)
    top = torch.nn.functional.normalize(ctx.static.vectors[ctx.new_ids], dim=-1) @ \
        torch.nn.functional.normalize(ctx.static.vectors[overlap], dim=-1).T
    assert torch.allclose(cos, top.max(-1).values, atol=1e-5)  # heaviest weight = most similar old token


def test_ofa_full_rank_is_convex_and_low_rank_lies_in_the_top_singular_subspace(hsb_context):
    ctx = hsb_context
    mixture = ofa_mixture(ctx)
    _assert_convex(mixture, ctx, INITIALISERS["ofa"](ctx))
    low = INITIALISERS["ofa"](InitContext(**{**ctx.__dict__, "rank": 4}))
    basis = torch.linalg.svd(ctx.old, full_matrices=False).Vh[:4]
    assert torch.allclose(low @ basis.T @ basis, low, atol=1e-4)
    assert torch.linalg.matrix_rank(low).item() == 4


def test_cw2v_rows_stay_in_the_hull_and_fit_target_contexts_better(hsb_context):
    seeded = lambda: InitContext(**{**hsb_context.__dict__, "generator": torch.Generator().manual_seed(1)})  # noqa: E731
    ctx = seeded()
    mixture = cw2v_mixture(ctx)
    rows = mixture.rows(ctx.old)
    _assert_convex(mixture, ctx, rows)
    objective = SkipGram.build(seeded())  # the pairs and negatives cw2v was trained on
    learned = objective.loss(rows).item()
    start = objective.loss(INITIALISERS["subword-mean"](ctx)).item()
    assert learned < 0.8 * start, (learned, start)


def test_methods_name_the_context_they_need():
    assert NEEDS["focus"] == NEEDS["ofa"] == ("static",)
    assert NEEDS["cw2v"] == ("target_ids",)
    ctx = InitContext(torch.randn(10, 4), [[1]], 0.02, torch.Generator())
    with pytest.raises(LangadaptError, match="static"):
        INITIALISERS["focus"](ctx)


@pytest.mark.parametrize("method", ["focus", "ofa", "cw2v"])
def test_resize_and_init_passes_context_to_untied_output_rows(method, hsb_context):
    ctx = hsb_context
    vocab = ctx.old.shape[0]
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=16, n_embd=24, n_layer=1, n_head=2,
                                       tie_word_embeddings=False))
    old_out = model.get_output_embeddings().weight.detach().clone()
    resize_and_init(model, ctx.pieces, method, seed=0, static=ctx.static, target_ids=ctx.target_ids)
    new_out = model.get_output_embeddings().weight.detach()[vocab:]
    assert new_out.shape[0] == len(ctx.pieces) and torch.isfinite(new_out).all()
    # inside the hull of the old output rows: no coordinate beyond their range
    assert (new_out.min(0).values >= old_out.min(0).values - 1e-5).all()
    assert (new_out.max(0).values <= old_out.max(0).values + 1e-5).all()


def test_orthogonal_matching_pursuit_recovers_a_sparse_combination():
    generator = torch.Generator().manual_seed(0)
    atoms = torch.randn(200, 32, generator=generator)
    truth = torch.tensor([[3, 50, 120], [7, 8, 199]])
    weights = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, -0.3]])
    targets = torch.einsum("nk,nkd->nd", weights, atoms[truth])
    chosen, coefficients = orthogonal_matching_pursuit(targets, atoms, k=3)
    for row in range(2):
        order = chosen[row].argsort()
        assert chosen[row][order].tolist() == truth[row].sort().values.tolist()
        assert torch.allclose(coefficients[row][order].float(), weights[row][truth[row].argsort()], atol=1e-5)


def test_omp_rows_combine_few_old_tokens_seen_in_the_target_text(hsb_context):
    ctx = hsb_context
    static = ctx.static
    overlap = ((static.counts[: ctx.old.shape[0]] > 0) & static.known[: ctx.old.shape[0]]).nonzero().squeeze(1)
    chosen, coefficients = orthogonal_matching_pursuit(static.vectors[ctx.new_ids], static.vectors[overlap], 8)
    fitted = torch.einsum("nk,nkd->nd", coefficients.float(), static.vectors[overlap[chosen]])
    targets = static.vectors[ctx.new_ids]
    # Eight atoms explain most of each new token's static vector.
    assert ((targets - fitted).norm(dim=-1) < 0.7 * targets.norm(dim=-1)).float().mean() > 0.9
    rows = INITIALISERS["omp"](ctx)
    expected = torch.einsum("nk,nkd->nd", coefficients.to(ctx.old.dtype), ctx.old[overlap[chosen]])
    assert torch.allclose(rows, expected, atol=1e-4) and NEEDS["omp"] == ("static",)
