import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bits_per_byte, sliding_windows
from langadapt.vocab.tokenizer import EOS


def _uniform_model(vocab_size: int, context: int) -> GPT2LMHeadModel:
    """All weights zero → every logit is 0 → the next-token distribution is uniform."""
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=context, n_embd=8, n_layer=1, n_head=1))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def test_bpb_matches_a_hand_computed_uniform_model(tokenizers, sample_docs):
    source, _, _ = tokenizers
    texts = [d.text for d in sample_docs if d.lang == "hsb_Latn"][:40]
    vocab = source.get_vocab_size()
    result = bits_per_byte(_uniform_model(vocab, 64), source, texts, source.token_to_id(EOS))
    n_tokens = sum(len(source.encode(t).ids) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    # Each text token costs log2(V) bits; the EOS the text starts from is context, not a target.
    assert result.tokens == n_tokens and result.bytes == n_bytes
    assert math.isclose(result.bpb, n_tokens * math.log2(vocab) / n_bytes, rel_tol=1e-6)


def test_long_texts_are_scored_once_per_token_across_windows(tokenizers, sample_docs):
    source, _, _ = tokenizers
    long_text = " ".join(d.text for d in sample_docs if d.lang == "ces_Latn")[:3000]
    n_tokens = len(source.encode(long_text).ids)
    assert n_tokens > 3 * 16
    result = bits_per_byte(_uniform_model(source.get_vocab_size(), 16), source, [long_text], source.token_to_id(EOS))
    expected = n_tokens * math.log2(source.get_vocab_size()) / len(long_text.encode("utf-8"))
    assert math.isclose(result.bpb, expected, rel_tol=1e-6)


def test_padding_does_not_change_the_score(tokenizers, sample_docs):
    source, _, _ = tokenizers
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=source.get_vocab_size(), n_positions=64, n_embd=16,
                                       n_layer=1, n_head=2)).eval()
    texts = [d.text for d in sample_docs if d.lang == "pol_Latn"][:12]
    eos = source.token_to_id(EOS)
    one_by_one = sum(bits_per_byte(model, source, [t], eos).bits for t in texts)
    batched = bits_per_byte(model, source, texts, eos, batch_size=12).bits
    assert math.isclose(one_by_one, batched, rel_tol=1e-4)


@pytest.mark.parametrize("stride", [1, 5, 8, 16])
def test_sliding_windows_score_every_token_once_with_enough_context(stride):
    context, n = 16, 61
    ids = list(range(n + 1))  # [EOS, t1..tn] as distinct ids
    windows = sliding_windows(ids, context, stride)
    scored = [t for w in windows for t in w.ids[len(w.ids) - w.scored :]]
    assert scored == ids[1:]  # each target exactly once, in order
    assert all(len(w.ids) <= context + 1 for w in windows)
    # after the first window, every scored token sees at least context - stride tokens before it
    assert all(len(w.ids) - 1 - w.scored >= context - stride for w in windows[1:])


def test_a_stride_outside_the_context_is_a_user_error():
    with pytest.raises(LangadaptError, match="stride 40 is outside 1..32"):
        sliding_windows(list(range(100)), 32, 40)
