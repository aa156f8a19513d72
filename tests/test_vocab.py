import re

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.registry import INITIALISERS
from langadapt.vocab.init import InitContext, resize_and_init


def _udhr_texts(shared) -> list[tuple[str, str]]:
    files = sorted(shared("udhr").glob("udhr_*.txt"))
    assert len(files) >= 50  # the fixture cut: 51 pages in over 20 scripts
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


def test_expansion_round_trips_every_udhr_language(tokenizers, shared):
    _, _, expansion = tokenizers
    failures = [name for name, text in _udhr_texts(shared)
                if expansion.tokenizer.decode(expansion.tokenizer.encode(text).ids) != text]
    assert not failures


def test_expansion_adds_real_bpe_merges_used_on_target_text(tokenizers, sample_docs):
    source, _, expansion = tokenizers
    assert expansion.first_new_id == source.get_vocab_size()
    assert expansion.tokenizer.get_vocab_size() == source.get_vocab_size() + len(expansion.new_tokens)
    hsb = " ".join(d.text for d in sample_docs if d.lang == "hsb_Latn")
    old_ids, new_ids = source.encode(hsb).ids, expansion.tokenizer.encode(hsb).ids
    assert len(new_ids) < 0.95 * len(old_ids)
    assert any(i >= expansion.first_new_id for i in new_ids)
    # Not "added tokens": a new token inside a longer word is still found by the BPE model.
    assert expansion.tokenizer.get_added_tokens_decoder().keys() == source.get_added_tokens_decoder().keys()
    # Pieces decode to the new token's text under the old tokenizer.
    for token_id, pieces in list(zip(range(expansion.first_new_id, 10**9), expansion.pieces, strict=False))[:50]:
        assert source.decode(pieces) == expansion.tokenizer.decode([token_id])


def _ctx(dim=16, vocab=50, seed=0) -> InitContext:
    generator = torch.Generator().manual_seed(seed)
    old = torch.randn(vocab, dim, generator=generator)
    pieces = [[1, 2], [3], [4, 5, 6]]
    return InitContext(old, pieces, 0.02, generator)


def test_mean_init_equals_the_mean_of_old_rows():
    ctx = _ctx()
    rows = INITIALISERS["mean"](ctx)
    assert torch.allclose(rows, ctx.old.mean(0).expand(3, -1))


def test_subword_mean_is_the_mean_of_the_pieces():
    ctx = _ctx()
    rows = INITIALISERS["subword-mean"](ctx)
    for row, ids in zip(rows, ctx.pieces, strict=True):
        assert torch.allclose(row, ctx.old[ids].mean(0))


def test_random_and_multivariate_have_the_expected_spread():
    ctx = InitContext(torch.randn(4000, 8) * 3 + 1, [[0]] * 4000, 0.02, torch.Generator().manual_seed(0))
    assert INITIALISERS["random"](ctx).std().item() == pytest.approx(0.02, rel=0.05)
    sample = INITIALISERS["multivariate"](ctx)
    assert sample.mean().item() == pytest.approx(1.0, abs=0.15)
    assert sample.std().item() == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("tied", [True, False])
def test_resize_and_init_fills_input_and_untied_output_rows(tied):
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                       tie_word_embeddings=tied))
    old_in = model.get_input_embeddings().weight[:40].detach().clone()
    old_out = model.get_output_embeddings().weight[:40].detach().clone()
    resize_and_init(model, [[1, 2], [3]], "subword-mean", seed=0)
    new_in, new_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert new_in.shape[0] == new_out.shape[0] == 42
    assert torch.allclose(new_in[40], old_in[[1, 2]].mean(0))
    assert torch.allclose(new_out[41], old_out[3])
    assert (new_in.data_ptr() == new_out.data_ptr()) == tied


def test_registry_names_are_config_keys():
    assert {"random", "mean", "multivariate", "subword-mean"} <= set(INITIALISERS)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", name) for name in INITIALISERS)
