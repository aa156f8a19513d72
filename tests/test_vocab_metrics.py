"""Tokenizer fairness metrics on real text: UDHR and the line-parallel NTREX-128."""

import pytest

from langadapt.vocab.metrics import is_unspaced, measure, parity, word_spans
from langadapt.vocab.tokenizer import byte_tokenizer, train_bpe


def _udhr(shared, code: str) -> list[str]:
    text = shared("udhr", f"udhr_{code}.txt").read_text(encoding="utf-8")
    return [line for line in text.split("---", 1)[1].splitlines() if line.strip()]


TRAIN = 350  # NTREX lines the Czech tokenizer learns from; the lines after them are held out


def _ntrex(shared, code: str) -> list[str]:
    name = "newstest2019-src.eng.txt" if code == "eng" else f"newstest2019-ref.{code}.txt"
    return shared("ntrex128", name).read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def ces_tokenizer(shared):
    return train_bpe(_ntrex(shared, "ces")[:TRAIN], 2000)


def test_words_split_on_spaces_and_letters_in_unspaced_scripts(shared):
    ces = " ".join(_udhr(shared, "ces"))
    spaced = [w for w in ces.split() if any(c.isalpha() for c in w)]
    assert len(word_spans(ces)) == pytest.approx(len(spaced), rel=0.05)  # punctuation inside splits
    for code in ("tha", "jpn", "cmn_hans", "khm"):
        text = " ".join(_udhr(shared, code))
        assert is_unspaced(text), code
        letters = sum(c.isalnum() for c in text)
        # one unit per letter or number (marks join their letter), far more than space-separated chunks
        assert len(text.split()) < len(word_spans(text)) <= letters
    assert not is_unspaced(" ".join(_udhr(shared, "hin")))  # Devanagari separates words with spaces


def test_fertility_and_fallback_reflect_what_the_tokenizer_was_trained_on(shared, ces_tokenizer):
    held_out = _ntrex(shared, "ces")[TRAIN:]
    ces = measure(ces_tokenizer, held_out)
    assert 1 < ces.fertility < 3 and ces.unit == "word"
    assert ces.fallback_rate < 0.005
    assert 0 < ces.continued_word_ratio < 1
    hin = measure(ces_tokenizer, _ntrex(shared, "hin")[TRAIN:])
    assert hin.fallback_rate > 0.5  # Devanagari never seen: cut into bytes of split characters
    assert hin.fertility > 2 * ces.fertility and hin.bytes_per_token < ces.bytes_per_token
    assert measure(ces_tokenizer, _ntrex(shared, "tha")[:200]).unit == "letter"  # never trained on


def test_byte_tokenizer_metrics_are_exact(shared):
    texts = _udhr(shared, "pol")
    m = measure(byte_tokenizer(), texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    multibyte = sum(len(c.encode("utf-8")) for t in texts for c in t if len(c.encode("utf-8")) > 1)
    assert m.bytes_per_token == 1.0 and m.tokens == n_bytes
    assert m.fallback_rate == pytest.approx(multibyte / n_bytes)


def test_parity_against_a_pivot_on_parallel_text(shared, ces_tokenizer):
    ces, slk, eng = (_ntrex(shared, code)[TRAIN:] for code in ("ces", "slk", "eng"))
    assert parity(ces_tokenizer, eng, eng) == 1.0
    assert parity(ces_tokenizer, slk, ces) > 1.0  # a related language pays more than the trained one
    assert parity(ces_tokenizer, _ntrex(shared, "hin")[TRAIN:], ces) > 3
    with pytest.raises(ValueError, match="parallel"):
        parity(ces_tokenizer, ces, eng[:10])
