"""How fairly a tokenizer treats each language: fertility, bytes per token, parity, fallback.

- fertility: tokens per word. Words are whitespace-separated runs without punctuation; in
  scripts written without spaces (Han, Japanese kana, Thai, Lao, Khmer, Myanmar, Tibetan)
  there is no word boundary to split on without a dictionary, so every letter (with its
  combining marks) counts as a unit there and the `unit` field says so (compare those
  languages with each other only).
- continued_word_ratio: share of words cut into two or more tokens.
- bytes_per_token: UTF-8 bytes per token (higher = more compression).
- fallback_rate: share of tokens that are `<unk>` or bytes of a character split across
  tokens (they decode to U+FFFD alone): the text the vocabulary does not cover.
- parity: tokens for a text over tokens for its translation in a pivot language
  (1.0 = parity; 2.0 = the language pays twice as many tokens for the same content).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass

from tokenizers import Tokenizer

UNSPACED = {"Hani": "CJK", "Hans": "CJK", "Hant": "CJK", "Jpan": "CJK", "Hira": "HIRAGANA", "Kana": "KATAKANA",
            "Thai": "THAI", "Laoo": "LAO", "Khmr": "KHMER", "Mymr": "MYANMAR", "Tibt": "TIBETAN"}
_UNSPACED_PREFIXES = tuple(set(UNSPACED.values()))


def _is_unspaced_char(char: str) -> bool:
    return unicodedata.name(char, "").startswith(_UNSPACED_PREFIXES)


def is_unspaced(text: str) -> bool:
    """True when most letters of `text` belong to a script written without spaces between words."""
    letters = [c for c in text if c.isalpha()]
    return sum(map(_is_unspaced_char, letters)) > len(letters) / 2 if letters else False


def word_spans(text: str, unspaced: bool | None = None) -> list[tuple[int, int]]:
    """(start, end) character spans of the words (or letters, for unspaced scripts) of `text`."""
    unspaced = is_unspaced(text) if unspaced is None else unspaced
    spans, start = [], None
    for i, char in enumerate(text):
        category = unicodedata.category(char)[0]
        inside = not (char.isspace() or category in "PSZC")  # marks (M) stay with their letter
        new_unit = unspaced and category == "L" and _is_unspaced_char(char)
        if start is not None and (not inside or new_unit):
            spans.append((start, i))
            start = None
        if inside and start is None:
            start = i
    if start is not None:
        spans.append((start, len(text)))
    return spans


@dataclass
class TokenizerMetrics:
    fertility: float
    continued_word_ratio: float
    bytes_per_token: float
    fallback_rate: float
    words: int
    tokens: int
    unit: str  # "word", or "letter" for scripts without spaces

    def as_dict(self) -> dict:
        return asdict(self)


def _fallback_ids(tokenizer: Tokenizer, ids: Counter) -> int:
    unk = tokenizer.token_to_id("<unk>")
    return sum(n for i, n in ids.items() if i == unk or "\ufffd" in tokenizer.decode([i]))


def measure(tokenizer: Tokenizer, texts: list[str]) -> TokenizerMetrics:
    """Fertility, continued-word ratio, bytes per token and fallback rate over `texts`."""
    unspaced = is_unspaced(" ".join(texts[:50]))
    words = continued = tokens = 0
    ids: Counter = Counter()
    for text, encoding in zip(texts, tokenizer.encode_batch(texts), strict=True):
        tokens += len(encoding.ids)
        ids.update(encoding.ids)
        starts = sorted(start for start, end in encoding.offsets if end > start)
        spans = word_spans(text, unspaced)
        words += len(spans)
        for start, end in spans:  # a word is continued when a token starts strictly inside it
            continued += _starts_inside(starts, start, end)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return TokenizerMetrics(
        fertility=tokens / max(words, 1),
        continued_word_ratio=continued / max(words, 1),
        bytes_per_token=n_bytes / max(tokens, 1),
        fallback_rate=_fallback_ids(tokenizer, ids) / max(tokens, 1),
        words=words,
        tokens=tokens,
        unit="letter" if unspaced else "word",
    )


def _starts_inside(starts: list[int], start: int, end: int) -> bool:
    after = bisect_right(starts, start)
    return after < len(starts) and starts[after] < end


def _count_tokens(tokenizer: Tokenizer, texts: list[str]) -> int:
    return sum(len(encoding.ids) for encoding in tokenizer.encode_batch(texts))


def parity(tokenizer: Tokenizer, texts: list[str], pivot_texts: list[str]) -> float:
    """Tokens for `texts` over tokens for their line-parallel translations `pivot_texts`."""
    if len(texts) != len(pivot_texts):
        raise ValueError(f"parity needs parallel texts: {len(texts)} vs {len(pivot_texts)} lines")
    return _count_tokens(tokenizer, texts) / max(_count_tokens(tokenizer, pivot_texts), 1)


def expansion_metrics(base: Tokenizer, expanded: Tokenizer, new_ids: Collection[int],
                      texts: list[str]) -> dict[str, float]:
    """How an expansion's new tokens (ids `new_ids`) serve `texts`, against the `base` tokenizer.

    - new_tokens_used: share of the new tokens that occur at least once (an added token that
      never fires is a wasted embedding row);
    - new_token_rate: share of the expanded tokenizer's tokens that are new ones;
    - bytes_per_token_change: relative change of bytes per token, expanded over base, minus 1
      (on the target, the gain; on a source language, how much its segmentation moved).
    """
    ids = [i for encoding in expanded.encode_batch(texts) for i in encoding.ids]
    new_ids = set(new_ids)
    new = [i for i in ids if i in new_ids]
    return {
        "new_tokens_used": len(set(new)) / max(len(new_ids), 1),
        "new_token_rate": len(new) / max(len(ids), 1),
        "bytes_per_token_change": _count_tokens(base, texts) / max(len(ids), 1) - 1,
    }
