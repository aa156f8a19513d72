"""Word splitting per language, as datatrove's filters need it.

datatrove assigns a tokenizer per language (spaCy blank models, pythainlp for Thai, …). Where
that tokenizer's package is missing, scripts written without spaces (Chinese, Japanese, Khmer,
…) fall back to one word per grapheme cluster (a letter with its combining marks), which keeps
word-level metrics meaningful; any other language falls back to datatrove's whitespace
tokenizer (with one memoised spaCy for all of them, `MemoisedWhitespace`). Never one word per sentence.

spaCy's rule-based tokenizer (every language that separates words with spaces) is memoised per
whitespace-separated chunk (`ChunkedSpacy`): the same words and sentences, several times faster.
"""

from __future__ import annotations

import re
from functools import cache

import regex
from datatrove.utils.word_tokenizers import (
    SpaCyTokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    load_word_tokenizer,
)

NO_SPACE_SCRIPTS = {"Hani", "Hans", "Hant", "Jpan", "Thai", "Khmr", "Laoo", "Mymr", "Tibt", "Bali", "Java"}
# Word separators other than spaces, per script: formal and older Ethiopic text (the Amharic UDHR)
# separates words with the wordspace "፡", which spaCy leaves inside one "word" per phrase.
WORD_SEPARATORS = {"Ethi": str.maketrans({"\u1361": " "})}


class CharacterTokenizer(WhitespaceTokenizer):
    """One word per grapheme cluster; runs of Latin, Cyrillic, Greek letters or digits stay whole."""

    _words = regex.compile(r"[\p{Latin}\p{Cyrillic}\p{Greek}\p{N}]+|\X")

    def word_tokenize(self, text: str) -> list[str]:
        return [word for word in self._words.findall(text) if not word.isspace()]


class ChunkedSpacy(WordTokenizer):
    """datatrove's `SpaCyTokenizer` for a rule-based spaCy tokenizer, memoised per chunk.

    spaCy splits a text at whitespace and tokenizes each chunk on its own (prefix, suffix and
    infix rules, special cases), so a text's tokens are its chunks' tokens in order. Most chunks
    of a corpus recur (Zipf), so a dict lookup replaces spaCy for them, and the new chunks of a
    text go through spaCy in one call, separated by new lines (a chunk of its own, which no rule
    joins). datatrove instead tokenizes each text in a `memory_zone`, which drops spaCy's own
    cache after every call. Sentences are the `sentencizer`'s rule replayed on the same tokens.

    A text that contains a special case with a space (Spanish "EE. UU.", Russian "т. е.") goes to
    spaCy whole. The words and sentences equal datatrove's on the test languages' text
    (`tests/test_words.py`); spaCy could still differ where a special case's tokens recur across a
    space next to one within a chunk, which no test text shows."""

    _runs = re.compile(r"\s+|\S+")  # the same whitespace as spaCy's `str.isspace` loop

    def __init__(self, spacy: SpaCyTokenizer, max_chunks: int = 200_000):
        super().__init__(spacy.language)
        self.spacy, self.max_chunks = spacy, max_chunks
        self.punct_chars = frozenset(spacy.tokenizer.get_pipe("sentencizer").punct_chars)
        spaced = [rule for rule in spacy.tokenizer.tokenizer.rules if not rule.isspace() and rule.split() != [rule]]
        self._spaced = re.compile("|".join(map(re.escape, spaced))) if spaced else None
        self._chunks: dict[str, tuple[tuple[str, bool], ...]] = {}

    def _whole(self, text: str) -> bool:
        """Whether `text` must go to spaCy whole (it holds a special case with a space)."""
        return self._spaced is not None and self._spaced.search(text) is not None

    def _tokens(self, chunks: list[str]) -> list[tuple[tuple[str, bool], ...]]:
        """(text, is_punct) of each spaCy token, per chunk of one text."""
        new = [chunk for chunk in dict.fromkeys(chunks) if chunk not in self._chunks]
        if new and len(self._chunks) + len(new) > self.max_chunks:  # ~0.7 KB a chunk with its lexemes: ≤ 140 MB
            self._chunks.clear()
            self.spacy = SpaCyTokenizer(self.spacy.language, self.spacy.config)  # and a fresh spaCy vocab
            new = list(dict.fromkeys(chunks))
        words = [chunk for chunk in new if not chunk.isspace()]
        if words:
            tokens, done = [], iter(words)
            for token in self.spacy.tokenizer.tokenizer("\n".join(words)):
                if token.text == "\n":
                    self._chunks[next(done)], tokens = tuple(tokens), []
                else:
                    tokens.append((token.text, token.is_punct))
            self._chunks[next(done)] = tuple(tokens)
        for space in (chunk for chunk in new if chunk.isspace()):
            self._chunks[space] = tuple((t.text, t.is_punct) for t in self.spacy.tokenizer.tokenizer(space))
        return [self._chunks[chunk] for chunk in chunks]

    def word_tokenize(self, text: str) -> list[str]:
        if self._whole(text):
            return self.spacy.word_tokenize(text)
        return [word for tokens in self._tokens(text.split()) for word, _ in tokens]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        """Sentence spans as spaCy's `sentencizer` sets them: a sentence ends after a token in
        `punct_chars` and any punctuation that follows it."""
        if self._whole(text):
            return self.spacy.span_tokenize(text)
        runs = []
        for match in self._runs.finditer(text):
            pos, run = match.start(), match.group()
            if run[0] == " " and pos > 0:  # spaCy keeps one space after a token as its trailing space
                pos, run = pos + 1, run[1:]
            if run:
                runs.append((pos, run))
        spans: list[tuple[int, int]] = []
        start = end = -1
        seen_period = False
        for (pos, _), tokens in zip(runs, self._tokens([run for _, run in runs]), strict=True):
            for word, is_punct in tokens:
                in_chars = word in self.punct_chars
                if start < 0:
                    start = pos
                elif seen_period and not is_punct and not in_chars:
                    spans.append((start, end))
                    start, seen_period = pos, False
                if in_chars:
                    seen_period = True
                pos += len(word)
                end = pos
        if start >= 0:
            spans.append((start, end))
        return spans

    def sent_tokenize(self, text: str) -> list[str]:
        return [sentence for a, b in self.span_tokenize(text) if (sentence := text[a:b].strip())]


class MemoisedWhitespace(WhitespaceTokenizer):
    """datatrove's fallback for languages without a tokenizer of their own (spaCy's language-neutral
    `xx` rules for words, a regex for sentences), with one memoised `xx` spaCy for every language.
    datatrove keeps its `xx` spaCy in a one-slot cache that all instances share, so two such languages
    alternating in a stream (Gujarati and Hindi) rebuild it at every switch (22 of 150 CPU seconds
    in `benchmarks/curate.py --corpus distinct` at 2,000 documents)."""

    def word_tokenize(self, text: str) -> list[str]:
        return _xx().word_tokenize(text)


@cache
def _xx() -> ChunkedSpacy:
    return ChunkedSpacy(SpaCyTokenizer("xx"))


class LanguageWords(WordTokenizer):
    """The tokenizer for one language, resolved on first use: a pipeline step that holds it pickles
    as the language code, not as a loaded spaCy model."""

    def __init__(self, lang: str):
        super().__init__(lang)
        self._inner: WordTokenizer | None = None
        self._spaces = WORD_SEPARATORS.get(lang.partition("_")[2], {})

    def __getstate__(self) -> dict:
        return {"language": self.language, "_inner": None, "_spaces": self._spaces}

    @property
    def inner(self) -> WordTokenizer:
        if self._inner is None:
            self._inner = _resolve(self.language)
        return self._inner

    def word_tokenize(self, text: str) -> list[str]:
        return self.inner.word_tokenize(text.translate(self._spaces))

    def sent_tokenize(self, text: str) -> list[str]:
        return self.inner.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self.inner.span_tokenize(text)


@cache
def word_tokenizer(lang: str) -> WordTokenizer:
    """The word tokenizer for `lang` (`xxx_Scrp`); cached so every filter shares one instance."""
    return LanguageWords(lang)


def _resolve(lang: str) -> WordTokenizer:
    alpha3, _, script = lang.partition("_")
    for key in (lang, alpha3):
        try:
            tokenizer = load_word_tokenizer(key)
            tokenizer.word_tokenize("probe")  # load the model now: a missing package fails here
        except (ValueError, ImportError, OSError):
            continue
        if script in NO_SPACE_SCRIPTS and type(tokenizer) is WhitespaceTokenizer:
            continue  # `zho` alone means Latin-script Chinese in datatrove's table, not `zho_Hans`
        return MemoisedWhitespace() if type(tokenizer) is WhitespaceTokenizer else chunked(tokenizer)
    return CharacterTokenizer() if script in NO_SPACE_SCRIPTS else MemoisedWhitespace()


def chunked(tokenizer: WordTokenizer) -> WordTokenizer:
    """`ChunkedSpacy` for a spaCy tokenizer that splits at spaces first (not jieba, Sudachi, pyvi …)."""
    from spacy.tokenizer import Tokenizer

    if isinstance(tokenizer, SpaCyTokenizer) and type(tokenizer.tokenizer.tokenizer) is Tokenizer:
        return ChunkedSpacy(tokenizer)
    return tokenizer
