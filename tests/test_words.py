"""The memoised spaCy tokenizer gives datatrove's words and sentences, on real text."""

from __future__ import annotations

import pickle

import pytest
from datatrove.utils.word_tokenizers import SpaCyTokenizer

from langadapt.corpus.words import ChunkedSpacy, chunked, word_tokenizer

# NTREX-128 file code → spaCy language; Spanish and Russian have special cases with a space.
LANGUAGES = {"ces": "cs", "deu": "de", "fra": "fr", "spa": "es", "rus": "ru", "tur": "tr", "ell": "el"}


@pytest.mark.parametrize("code", LANGUAGES)
def test_memoised_words_and_sentences_equal_spacy(shared, code):
    lines = shared("ntrex128", f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()[:200]
    docs = ["\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)]
    reference, fast = SpaCyTokenizer(LANGUAGES[code]), chunked(SpaCyTokenizer(LANGUAGES[code]))
    assert isinstance(fast, ChunkedSpacy)
    for text in docs + lines[:60]:  # documents as the filters see them, single lines as C4 does
        assert fast.word_tokenize(text) == reference.word_tokenize(text)
        assert fast.span_tokenize(text) == reference.span_tokenize(text)
        assert fast.sent_tokenize(text) == reference.sent_tokenize(text)


def test_special_case_with_a_space_stays_one_token(shared):
    lines = shared("ntrex128", "newstest2019-ref.spa.txt").read_text(encoding="utf-8").splitlines()
    line = next(line.replace("EE.\xa0UU.", "EE. UU.") for line in lines  # the cut's lines write a no-break space
                if "EE. UU." in line.replace("EE.\xa0UU.", "EE. UU."))
    assert "EE. UU." in chunked(SpaCyTokenizer("es")).word_tokenize(line)


def test_a_full_chunk_cache_starts_over_with_the_same_words(shared):
    lines = shared("ntrex128", "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()[:200]
    small = ChunkedSpacy(SpaCyTokenizer("cs"), max_chunks=500)
    reference = SpaCyTokenizer("cs")
    assert [small.word_tokenize(line) for line in lines] == [reference.word_tokenize(line) for line in lines]
    assert len(small._chunks) <= 500


def test_languages_with_spaces_use_the_memoised_tokenizer():
    assert isinstance(word_tokenizer("ces_Latn").inner, ChunkedSpacy)
    assert not isinstance(word_tokenizer("jpn_Jpan").inner, ChunkedSpacy)  # not split at spaces


def test_languages_without_a_tokenizer_share_one_memoised_fallback(shared):
    """Gujarati and Hindi fall back to datatrove's whitespace tokenizer: the same words, one spaCy."""
    from datatrove.utils.word_tokenizers import WhitespaceTokenizer

    from langadapt.corpus.words import MemoisedWhitespace, _xx

    gujarati, hindi = word_tokenizer("guj_Gujr").inner, word_tokenizer("hin_Deva").inner
    assert isinstance(gujarati, MemoisedWhitespace) and isinstance(hindi, MemoisedWhitespace)
    reference = WhitespaceTokenizer()
    for code, tokenizer in (("guj", gujarati), ("hin", hindi)):
        lines = shared("ntrex128", f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()[:100]
        for text in ["\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)]:
            assert tokenizer.word_tokenize(text) == reference.word_tokenize(text)
            assert tokenizer.sent_tokenize(text) == reference.sent_tokenize(text)
    assert _xx.cache_info().currsize == 1  # built once, however the languages alternate


def test_ethiopic_wordspace_separates_words(shared):
    """The Amharic UDHR separates words with "፡", not spaces: each is a word of its own (spaCy alone
    returns one "word" per phrase, and the word-length rule removed every page of it)."""
    body = shared("udhr", "udhr_amh.txt").read_text(encoding="utf-8").split("\n---\n", 1)[1]
    line = next(line.strip() for line in body.splitlines() if line.count("\u1361") >= 5)
    tokenizer = pickle.loads(pickle.dumps(word_tokenizer("amh_Ethi")))  # as a pipeline worker gets it
    words = tokenizer.word_tokenize(line)
    assert not any("\u1361" in word for word in words)
    assert len(words) >= line.count("\u1361") + 1
    assert "".join(words) == "".join(line.replace("\u1361", " ").split())  # nothing else changes
