"""Tokenizer kinds (BPE, Unigram, bytes), temperature sampling and Unigram expansion."""

import pytest

from langadapt.errors import LangadaptError
from langadapt.vocab.expand import expand
from langadapt.vocab.tokenizer import EOS, balance, byte_tokenizer, train_tokenizer


def _udhr_texts(shared) -> list[str]:
    return [f.read_text(encoding="utf-8") for f in sorted(shared("udhr").glob("udhr_*.txt"))]


@pytest.fixture(scope="module")
def unigrams(sample_docs):
    source = train_tokenizer([d.text for d in sample_docs if d.lang != "hsb_Latn"], 800, "unigram")
    target = train_tokenizer([d.text for d in sample_docs if d.lang == "hsb_Latn"], 600, "unigram")
    return source, target, expand(source, target, 200)


def test_byte_tokenizer_is_256_bytes_and_eos_with_no_merges(shared):
    tokenizer = byte_tokenizer()
    assert tokenizer.get_vocab_size() == 257 and tokenizer.token_to_id(EOS) == 0
    for text in _udhr_texts(shared)[::20]:
        ids = tokenizer.encode(text).ids
        assert len(ids) == len(text.encode("utf-8")) and tokenizer.decode(ids) == text


def test_unigram_and_its_expansion_round_trip_udhr_languages(unigrams, shared):
    source, _, expansion = unigrams
    for tokenizer in (source, expansion.tokenizer):
        assert tokenizer.token_to_id(EOS) is not None
        failures = [t[:40] for t in _udhr_texts(shared)[::4] if tokenizer.decode(tokenizer.encode(t).ids) != t]
        assert not failures


def test_unigram_expansion_adds_pieces_used_on_target_text(unigrams, sample_docs):
    source, _, expansion = unigrams
    assert expansion.tokenizer.get_vocab_size() == source.get_vocab_size() + len(expansion.new_tokens) == 1000
    hsb = " ".join(d.text for d in sample_docs if d.lang == "hsb_Latn")
    assert len(expansion.tokenizer.encode(hsb).ids) < 0.9 * len(source.encode(hsb).ids)
    for token_id, pieces in zip(range(expansion.first_new_id, 10**9), expansion.pieces[:50], strict=False):
        assert source.decode(pieces) == expansion.tokenizer.decode([token_id])


def test_expanding_across_model_kinds_is_a_user_error(unigrams, tokenizers):
    with pytest.raises(LangadaptError, match="Unigram"):
        expand(tokenizers[0], unigrams[1], 10)


def test_temperature_sampling_flattens_language_shares():
    texts = {"big": [f"big text number {i}" for i in range(900)], "small": [f"small text {i}" for i in range(100)]}

    def share(alpha):  # of the bytes
        out = balance(texts, alpha, seed=0)
        return sum(len(t) for t in out if t.startswith("small")) / sum(len(t) for t in out)

    natural, balanced, uniform = share(1.0), share(0.3), share(0.0)
    small_bytes = sum(map(len, texts["small"]))
    assert natural == pytest.approx(small_bytes / (small_bytes + sum(map(len, texts["big"]))), abs=0.01)
    assert natural < balanced < uniform
    assert uniform == pytest.approx(0.5, abs=0.01)
    assert set(balance(texts, 0.0, seed=0)) >= set(texts["small"])  # small language repeated, none lost
