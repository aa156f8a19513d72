"""OFA's factorised embedding (`embeddings-factorised`): what trains, that it starts from the expanded
model exactly, and that the result multiplies out into a stock transformers folder."""

import copy

import pytest
import torch

from langadapt.config import ExperimentConfig
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.adapters import export, trainable_parameters
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.factorise import low_rank_basis
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.static import train_static
from langadapt.vocab.tokenizer import EOS

TINY = ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32)
RANK = 8


def _expanded(tokenizers, sample_docs, tied=True, init="subword-mean"):
    source, _, expansion = tokenizers
    torch.manual_seed(0)
    model = build_model(TINY, source)
    if not tied:
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.02)
    static = None
    if init == "ofa":
        hsb = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
        static = train_static(expansion.tokenizer, hsb, dim=16, epochs=5)
    resize_and_init(model, expansion.pieces, init, seed=0, static=static, rank=RANK)
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    return model.eval(), new_ids, expansion.tokenizer


def _factorised(model, new_ids):
    return ADAPTERS["embeddings-factorised"](copy.deepcopy(model), LoraConfig(embedding_rank=RANK), new_ids)


@pytest.mark.parametrize("tied", [True, False])
def test_only_new_coordinates_and_primitives_train(tied, tokenizers, sample_docs):
    model, new_ids, _ = _expanded(tokenizers, sample_docs, tied=tied)
    factorised = _factorised(model, new_ids)
    n_new, d = len(new_ids), TINY.n_embd
    per_matrix = n_new * RANK + RANK * d
    assert trainable_parameters(factorised) == per_matrix * (1 if tied else 2)
    assert per_matrix < n_new * d  # fewer than full new rows (peft's `embeddings`)
    trained = {name.rsplit(".", 1)[-1] for name, p in factorised.named_parameters() if p.requires_grad}
    assert trained == {"new_coords", "primitives"}


@pytest.mark.parametrize("tied", [True, False])
def test_factorised_model_starts_exact_and_exports_to_stock_transformers(tied, tokenizers, sample_docs, tmp_path):
    model, new_ids, tokenizer = _expanded(tokenizers, sample_docs, tied=tied)
    ids = torch.tensor([tokenizer.encode("Witajće k nam, to je našo nowe słowo").ids])
    factorised = _factorised(model, new_ids)
    assert torch.allclose(factorised(ids).logits, model(ids).logits, atol=1e-5)  # same function at step 0

    hsb = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    sampler = BlockSampler(pack(hsb, tokenizer, tokenizer.token_to_id(EOS), 0), 32, 8, 0)
    train(factorised, sampler, TrainConfig(steps=4, lr=1e-2, warmup_steps=0), 0, tmp_path / "log.jsonl")
    expected = factorised(ids).logits.detach()
    assert not torch.allclose(expected, model(ids).logits, atol=1e-3)  # training changed the function

    stock = load_model(save_model(export(factorised), tokenizer, tmp_path / "final")).eval()
    assert type(stock.get_input_embeddings()) is torch.nn.Embedding
    assert (stock.lm_head.weight is stock.transformer.wte.weight) == tied
    assert torch.allclose(stock(ids).logits, expected, atol=1e-5)
    # old rows moved only inside the rank-r subspace the factorisation spans
    n_old = new_ids[0]
    before = model.get_input_embeddings().weight[:n_old].detach()
    moved = stock.get_input_embeddings().weight[:n_old].detach() - before
    assert moved.abs().max() > 0 and torch.linalg.matrix_rank(moved).item() <= RANK


def test_ofa_rows_of_the_same_rank_are_pure_factor_rows(tokenizers, sample_docs):
    """With `vocab.ofa_rank` = r the new rows lie in the factor space: nothing frozen is left of them."""
    model, new_ids, _ = _expanded(tokenizers, sample_docs, init="ofa")
    factors = _factorised(model, new_ids).get_input_embeddings()
    assert factors.residual[new_ids[0]:].abs().max() < 1e-5
    assert factors.residual[: new_ids[0]].abs().max() > 1e-3  # old rows keep what rank r misses
    basis = low_rank_basis(model.get_input_embeddings().weight[: new_ids[0]].detach(), RANK)
    assert torch.allclose(factors.primitives, basis)


def test_rank_comes_from_vocab_ofa_rank_and_must_be_given(tokenizers, sample_docs):
    assert ExperimentConfig(vocab={"ofa_rank": 12}).adapt.lora.embedding_rank == 12
    explicit = ExperimentConfig(vocab={"ofa_rank": 12}, adapt={"lora": {"embedding_rank": 4}})
    assert explicit.adapt.lora.embedding_rank == 4
    model, new_ids, _ = _expanded(tokenizers, sample_docs)
    with pytest.raises(LangadaptError, match="needs the rank"):
        ADAPTERS["embeddings-factorised"](model, LoraConfig(), new_ids)


def test_checkpoint_restores_the_trained_factors(tokenizers, sample_docs, tmp_path):
    """A resumed run loads the factors from the checkpoint (the frozen buffers are rebuilt, not stored)."""
    model, new_ids, tokenizer = _expanded(tokenizers, sample_docs)
    hsb = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    tokens = pack(hsb, tokenizer, tokenizer.token_to_id(EOS), 0)
    cfg = TrainConfig(steps=4, lr=1e-2, warmup_steps=0, checkpoint_every=4)
    trained = _factorised(model, new_ids)
    train(trained, BlockSampler(tokens, 32, 8, 0), cfg, 0, tmp_path / "log.jsonl", checkpoint_dir=tmp_path / "ckpt")
    resumed = _factorised(model, new_ids)  # a rerun: fresh factors, then the finished checkpoint
    train(resumed, BlockSampler(tokens, 32, 8, 0), cfg, 0, tmp_path / "log.jsonl", checkpoint_dir=tmp_path / "ckpt")
    for name in ("new_coords", "primitives"):
        after = getattr(resumed.get_input_embeddings(), name)
        assert torch.equal(after, getattr(trained.get_input_embeddings(), name))
        assert not torch.equal(after, getattr(_factorised(model, new_ids).get_input_embeddings(), name))
