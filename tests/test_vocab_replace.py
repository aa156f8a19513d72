"""`vocab.mode: replace`: a new tokenizer, the model transplanted onto it row by row."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.registry import INITIALISERS
from langadapt.vocab.build import init_context
from langadapt.vocab.config import VocabConfig
from langadapt.vocab.expand import replace_tokenizer
from langadapt.vocab.init import initialise
from langadapt.vocab.static import train_static
from langadapt.vocab.tokenizer import EOS, train_bpe


@pytest.fixture(scope="module")
def replaced(sample_docs):
    source = [d.text for d in sample_docs if d.lang != "hsb_Latn"]
    target = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    base = train_bpe(source, 800)
    return base, replace_tokenizer(base, train_bpe(source + target, 800)), target


def _model(vocab: int, tied: bool) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                      tie_word_embeddings=tied, eos_token_id=0, bos_token_id=0))


def test_shared_tokens_map_to_their_old_ids_and_the_rest_are_new(replaced):
    base, expansion, _ = replaced
    new = expansion.tokenizer
    assert len(expansion.rows) == new.get_vocab_size()
    shared = [j for j in range(new.get_vocab_size()) if j not in set(expansion.new_ids)]
    assert len(shared) > 400  # related languages: most tokens are the base's
    assert all(base.id_to_token(expansion.rows[j]) == new.id_to_token(j) for j in shared)
    assert [new.id_to_token(j) for j in expansion.new_ids] == expansion.new_tokens
    for j, pieces in zip(expansion.new_ids, expansion.pieces, strict=True):
        assert base.decode(pieces) == new.decode([j])


@pytest.mark.parametrize("tied", [True, False])
def test_initialise_rebuilds_every_row_from_the_old_model(replaced, tied):
    base, expansion, _ = replaced
    model = _model(base.get_vocab_size(), tied)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    model.config.eos_token_id = base.token_to_id(EOS)
    initialise(model, expansion, "subword-mean", seed=0)
    new_in, new_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert new_in.shape[0] == new_out.shape[0] == model.config.vocab_size == expansion.tokenizer.get_vocab_size()
    assert (new_in.data_ptr() == new_out.data_ptr()) == tied
    new_ids = set(expansion.new_ids)
    for j, row in enumerate(expansion.rows):
        if j not in new_ids:
            assert torch.equal(new_in[j], old_in[row]) and torch.equal(new_out[j], old_out[row])
    for j, pieces in zip(expansion.new_ids, expansion.pieces, strict=True):
        assert torch.allclose(new_in[j], old_in[pieces].mean(0))
        assert torch.allclose(new_out[j], old_out[pieces].mean(0))
    assert model.config.eos_token_id == expansion.tokenizer.token_to_id(EOS)


def test_static_context_moves_to_embedding_rows_for_focus_and_omp(replaced):
    base, expansion, target = replaced
    cfg = VocabConfig(mode="replace", static_dim=16)
    context = init_context(cfg, expansion, target, ["focus", "omp", "cw2v"], seed=0)
    trained = train_static(expansion.tokenizer, target, 16, seed=0)
    static = context["static"]
    assert len(static.vectors) == expansion.first_new_id + len(expansion.new_tokens)
    for j, row in enumerate(expansion.rows):
        assert torch.equal(static.vectors[row], trained.vectors[j]) and static.counts[row] == trained.counts[j]
    assert max(max(seq) for seq in context["target_ids"] if seq) < len(static.vectors)
    for method in ("focus", "omp", "cw2v"):
        model = _model(base.get_vocab_size(), tied=True)
        initialise(model, expansion, method, seed=0, **context)
        rows = model.get_input_embeddings().weight[expansion.new_ids]
        assert torch.isfinite(rows).all() and method in INITIALISERS
