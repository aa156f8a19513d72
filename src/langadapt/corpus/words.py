"""Word splitting per language, as datatrove's filters need it.

datatrove assigns a tokenizer per language (spaCy blank models, pythainlp for Thai, …). Where
that tokenizer's package is missing, scripts written without spaces (Chinese, Japanese, Khmer,
…) fall back to one word per grapheme cluster (a letter with its combining marks), which keeps
word-level metrics meaningful; any other language falls back to datatrove's whitespace
tokenizer. Never one word per sentence.
"""

from __future__ import annotations

from functools import cache

import regex
from datatrove.utils.word_tokenizers import WhitespaceTokenizer, WordTokenizer, load_word_tokenizer

NO_SPACE_SCRIPTS = {"Hani", "Hans", "Hant", "Jpan", "Thai", "Khmr", "Laoo", "Mymr", "Tibt", "Bali", "Java"}


class CharacterTokenizer(WhitespaceTokenizer):
    """One word per grapheme cluster; runs of Latin, Cyrillic, Greek letters or digits stay whole."""

    _words = regex.compile(r"[\p{Latin}\p{Cyrillic}\p{Greek}\p{N}]+|\X")

    def word_tokenize(self, text: str) -> list[str]:
        return [word for word in self._words.findall(text) if not word.isspace()]


class LanguageWords(WordTokenizer):
    """The tokenizer for one language, resolved on first use: a pipeline step that holds it pickles
    as the language code, not as a loaded spaCy model."""

    def __init__(self, lang: str):
        super().__init__(lang)
        self._inner: WordTokenizer | None = None

    def __getstate__(self) -> dict:
        return {"language": self.language, "_inner": None}

    @property
    def inner(self) -> WordTokenizer:
        if self._inner is None:
            self._inner = _resolve(self.language)
        return self._inner

    def word_tokenize(self, text: str) -> list[str]:
        return self.inner.word_tokenize(text)

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
            return tokenizer
        except (ValueError, ImportError, OSError):
            continue
    return CharacterTokenizer() if script in NO_SPACE_SCRIPTS else WhitespaceTokenizer()
