"""Per-language filter thresholds: FineWeb2's published values, or derived from reference text.

FineWeb2 publishes one YAML per language but not how the numbers were chosen. `derive` makes
them for any language from clean reference text of it, with a rule stated as a pass rate. The text is
grouped into documents as short as the shortest the Gopher filter keeps (50 words), where a ratio
spreads most, and each metric is measured on them. A threshold is the quantile of the metric's
distribution (upper tail for metrics that flag junk when high, lower tail for those that flag junk
when low) or Tukey's fence (Q3 + 1.5·IQR, Q1 − 1.5·IQR) where that is looser, never stricter than
the English Gopher/FineWeb value; the tail level is the smallest at which that threshold, fitted on
one half of the documents, passes `pass_rate` of the other half, and is then applied to all of them.
The English floor means a threshold only loosens where the language needs it
(Chinese words are one character; Finnish words are long; some scripts end lines without ".").

Held-out text of the same domain is a weak check: a user's corpus is never the register of the
reference, and clean text of another domain spreads beyond its tail (dialogue has more punctuation
per word than news, a charter more headings; `benchmarks/curate_clean.py --cross-domain` measures
thresholds derived from one source on others). So every threshold then moves `margin` interquartile
ranges of the reference further out, never past what junk is by construction (`LOOSEST`); a document
with no line ending in terminal punctuation is left to the other rules; and a tail is only estimated
from `MIN_REFERENCE_DOCS` documents or more. Stopwords are the language's most frequent words,
compared without case and diacritics and listed in every spelling the reference has, as many as it
takes for the held-out half to hold `STOP_MARGIN` more than the two-stopword rule asks (FineWeb2's
published lists are tuned to web text). The language-ID cutoff is max(0.3, min(0.9, median − σ)) of
the scores of documents identified as the language, as the FineWeb2 paper reports.
`benchmarks/curate_thresholds.py` compares derived with published values over many languages;
`langadapt curate --check-thresholds` measures them.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_all_duplicate,
    find_duplicates,
    find_top_duplicate,
    get_n_grams,
)
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

from langadapt.corpus.document import read_lines
from langadapt.corpus.lid import LidBackend
from langadapt.corpus.words import word_tokenizer
from langadapt.errors import LangadaptError
from langadapt.languages import equivalent

TOP_N = (2, 3, 4)
DUP_N = (5, 6, 7, 8, 9, 10)
# The share of held-out clean reference text each derived threshold must pass (configurable), the
# tail levels tried to reach it, and the stopword list sizes tried (FineWeb2's lists are ~15-100).
PASS_RATE = 0.99
LEVELS = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
STOPWORD_COUNTS = (15, 30, 60, 120, 240)
MIN_STOP_WORDS = 2  # FineWeb2's GopherQualityFilter setting
MIN_DOC_WORDS = 50  # Gopher's shortest document (`filters.min_doc_words`' default)
MIN_REFERENCE_DOCS = 50  # fewer reference documents than this is too little to estimate a 1 % tail from
MARGIN = 3.0  # interquartile ranges a threshold moves out (`curate_clean.py --cross-domain` measured 0, 1.5, 3)
# ... but never past what junk looks like by construction: a comma-separated word list has one word
# with letters in two (0.5), so the words-with-letters floor stays above it.
LOOSEST = {"max_non_alpha_words_ratio": 0.55}
STOP_MARGIN = 2  # held-out documents must hold this many stopwords more than the rule asks
# The English values of Gopher and FineWeb, the floor of every derived threshold: a quantile of clean
# sentences (no layout, menus or lists) is a tight bound, so only a language's own needs loosen one.
ENGLISH_DEFAULTS = {
    "dup_line_frac": 0.3, "top_2_gram": 0.2, "top_3_gram": 0.18, "top_4_gram": 0.16,
    **{f"dup_{n}_gram": round(0.15 - 0.01 * i, 2) for i, n in enumerate(DUP_N)},
    "line_punct_thr": 0.12, "new_line_ratio": 0.3, "min_avg_word_length": 3, "max_avg_word_length": 10,
    "max_non_alpha_words_ratio": 0.8,
}


@dataclass(frozen=True)
class Thresholds:
    """FineWeb2's filter thresholds for one language (the keys of its YAML files)."""

    language: str
    language_score: float
    dup_line_frac: float
    top_n_grams: tuple[tuple[int, float], ...]
    dup_n_grams: tuple[tuple[int, float], ...]
    line_punct_thr: float  # FineWeb2 writes -1 for "disabled"
    new_line_ratio: float
    min_avg_word_length: float
    max_avg_word_length: float
    max_non_alpha_words_ratio: float  # despite the name: the minimum fraction of words with a letter
    stopwords: tuple[str, ...]
    source: str = "published"  # or "derived"
    # derived: a document with no line ending in terminal punctuation is left to the other rules (datatrove's
    # `line_punct_exclude_zero`): headings, verse, a charter's preamble of comma-ended clauses, and scripts
    # or spellings whose full stop datatrove does not know (Amharic news ending sentences in "፡፡").
    line_punct_exclude_zero: bool = False
    quantiles: dict[str, float] = field(default_factory=dict, compare=False)  # derived: before the English floor
    notes: dict[str, str] = field(default_factory=dict, compare=False)  # derived: the level and held-out pass rate

    def to_dict(self) -> dict:
        return asdict(self)

    def flat(self) -> dict[str, float]:
        """One number per metric, keyed like `metrics()` returns them (for comparisons)."""
        return {
            "language_score": self.language_score, "dup_line_frac": self.dup_line_frac,
            **{f"top_{n}_gram": v for n, v in self.top_n_grams}, **{f"dup_{n}_gram": v for n, v in self.dup_n_grams},
            "line_punct_thr": self.line_punct_thr, "new_line_ratio": self.new_line_ratio,
            "min_avg_word_length": self.min_avg_word_length, "max_avg_word_length": self.max_avg_word_length,
            "max_non_alpha_words_ratio": self.max_non_alpha_words_ratio,
        }


def load_published(folder: Path, lang: str) -> Thresholds | None:
    """FineWeb2's thresholds for `lang` from `folder/<lang>.yml`, or None if it has none."""
    path = Path(folder) / f"{lang}.yml"
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Thresholds(
            language=lang, language_score=float(raw["language_score"]), dup_line_frac=float(raw["dup_line_frac"]),
            top_n_grams=tuple((int(n), float(v)) for n, v in raw.get("top_n_grams") or ()),
            dup_n_grams=tuple((int(n), float(v)) for n, v in raw.get("dup_n_grams") or ()),
            line_punct_thr=float(raw["line_punct_thr"]), new_line_ratio=float(raw["new_line_ratio"]),
            min_avg_word_length=float(raw["min_avg_word_length"]),
            max_avg_word_length=float(raw["max_avg_word_length"]),
            max_non_alpha_words_ratio=float(raw["max_non_alpha_words_ratio"]),
            stopwords=tuple(str(w) for w in raw.get("stopwords") or ()),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise LangadaptError(
            f"not a FineWeb2 threshold config ({err!r})", where=str(path),
            fix="use the files of FineWeb2's configs/ folder, or derive thresholds from text.",
        ) from None


def metrics(text: str, words: list[str]) -> dict[str, float]:
    """The quantities the filters threshold, with datatrove's definitions (its helper functions)."""
    lines = [line for line in text.split("\n") if line.strip()]
    size = max(len(text), 1)
    real_words = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    values = {
        "dup_line_frac": find_duplicates(lines)[0] / max(len(lines), 1),
        "line_punct_thr": sum(line.endswith(tuple(TERMINAL_PUNCTUATION)) for line in lines) / max(len(lines), 1),
        "new_line_ratio": text.count("\n") / max(len(words), 1),
        "avg_word_length": float(np.mean([len(w) for w in real_words])) if real_words else 0.0,
        "max_non_alpha_words_ratio": sum(any(c.isalpha() for c in w) for w in words) / max(len(words), 1),
    }
    for n in TOP_N:
        grams = get_n_grams(words, n)
        values[f"top_{n}_gram"] = find_top_duplicate(grams) / size if grams else 0.0
    for n in DUP_N:
        values[f"dup_{n}_gram"] = find_all_duplicate(words, n) / size
    return values


def reference_documents(lines: Iterable[str], lang: str, min_words: int = MIN_DOC_WORDS) -> list[str]:
    """Consecutive lines grouped into documents of at least `min_words` words (punctuation aside, as
    Gopher counts them), so line- and n-gram-level metrics have content. The default is the shortest
    document the Gopher filter keeps: a ratio spreads most on short documents, so a bound that holds
    there holds on longer pages too (8-sentence groups bounded 3-sentence pages too tightly)."""
    tokenizer = word_tokenizer(lang)
    docs, group, count = [], [], 0
    for line in (line.strip() for line in lines):
        if not line:
            continue
        group.append(line)
        count += sum(any(ch not in PUNCTUATION_SET for ch in w) for w in tokenizer.word_tokenize(line))
        if count >= min_words:
            docs.append("\n".join(group))
            group, count = [], 0
    return docs + (["\n".join(group)] if group and not docs else [])


def derive(
    lang: str,
    documents: list[str],
    lid: LidBackend | None = None,
    pass_rate: float = PASS_RATE,
    margin: float = MARGIN,
) -> Thresholds:
    """Thresholds for `lang` from clean reference `documents` of it (see the module docstring)."""
    if len(documents) < MIN_REFERENCE_DOCS:
        raise LangadaptError(f"too little reference text to derive thresholds for {lang} ({len(documents)} "
                             f"documents of {MIN_DOC_WORDS} words; {MIN_REFERENCE_DOCS} are needed to estimate a tail)",
                             fix=f"give at least {MIN_REFERENCE_DOCS * MIN_DOC_WORDS} words (a few hundred sentences) "
                                 "of clean text in the language.")
    tokenizer = word_tokenizer(lang)
    split = [tokenizer.word_tokenize(doc) for doc in documents]
    table = [metrics(doc, words) for doc, words in zip(documents, split, strict=True)]
    notes: dict[str, str] = {}
    quantiles: dict[str, float] = {}

    def bound(name: str, key: str, upper: bool) -> float:
        values = np.array([row[key] for row in table])
        default = ENGLISH_DEFAULTS[name]
        level, passed = _level(values[0::2], values[1::2], upper, pass_rate, default)
        value, wider = _cut(values, level, upper)
        quantiles[name] = round(value, 3)
        spread = margin * float(np.subtract(*np.quantile(values, (0.75, 0.25))))
        final = _floor(value, default, upper) + (spread if upper else -spread)
        if name in LOOSEST:
            final = min(final, LOOSEST[name]) if upper else max(final, LOOSEST[name])
        notes[name] = (f"{'upper' if upper else 'lower'} {level} quantile{', widened to Tukey fence' if wider else ''}"
                       f", {margin} IQR further for other domains{' (off: below the range)' if final < 0 else ''}"
                       f"; held-out half passes {passed:.3f}")
        return round(final, 3)

    return Thresholds(
        language=lang,
        language_score=_language_score(lang, documents, lid, notes),
        dup_line_frac=bound("dup_line_frac", "dup_line_frac", True),
        top_n_grams=tuple((n, bound(f"top_{n}_gram", f"top_{n}_gram", True)) for n in TOP_N),
        dup_n_grams=tuple((n, bound(f"dup_{n}_gram", f"dup_{n}_gram", True)) for n in DUP_N),
        line_punct_thr=bound("line_punct_thr", "line_punct_thr", False),
        new_line_ratio=bound("new_line_ratio", "new_line_ratio", True),
        min_avg_word_length=bound("min_avg_word_length", "avg_word_length", False),
        max_avg_word_length=bound("max_avg_word_length", "avg_word_length", True),
        max_non_alpha_words_ratio=bound("max_non_alpha_words_ratio", "max_non_alpha_words_ratio", False),
        stopwords=derive_stopwords(split, pass_rate, notes),
        source="derived",
        line_punct_exclude_zero=True,
        quantiles=quantiles,
        notes=notes,
    )


def _cut(values: np.ndarray, level: float, upper: bool) -> tuple[float, bool]:
    """The quantile of `values` at tail `level`, or Tukey's fence (1.5 interquartile ranges beyond the
    quartile) where that is looser; and whether the fence was."""
    q1, q3 = np.quantile(values, (0.25, 0.75))
    quantile = float(np.quantile(values, level if upper else 1 - level))
    fence = float(q3 + 1.5 * (q3 - q1) if upper else q1 - 1.5 * (q3 - q1))
    wider = fence > quantile if upper else fence < quantile
    return (fence if wider else quantile), wider


def _floor(value: float, default: float, upper: bool) -> float:
    """`value`, or the English `default` where that is looser."""
    return max(value, default) if upper else min(value, default)


def _level(fit: np.ndarray, held: np.ndarray, upper: bool, pass_rate: float, default: float) -> tuple[float, float]:
    """The smallest tail level whose threshold (the cut, floored at the English `default`) on `fit`
    passes `pass_rate` of `held`, and that share (1.0, the most extreme reference document, when no
    level reaches the rate)."""
    for level in LEVELS:
        cut = _floor(_cut(fit, level, upper)[0], default, upper)
        passed = float(np.mean(held <= cut) if upper else np.mean(held >= cut))
        if passed >= pass_rate:
            return level, passed
    return 1.0, passed


def derive_stopwords(split: list[list[str]], pass_rate: float = PASS_RATE,
                     notes: dict[str, str] | None = None) -> tuple[str, ...]:
    """The language's most frequent words (by documents they occur in), as few as let `pass_rate` of
    the held-out half of the reference documents `split` (their words) contain `MIN_STOP_WORDS` +
    `STOP_MARGIN` different ones. A word counts under its spelling without case or diacritics (`unmarked`),
    and the list holds every spelling the reference has of it (datatrove compares words as written): a
    text that writes tones, accents or capitals differently from the reference (Yoruba news often drops
    its tone marks) still finds its function words."""
    def frequent(docs: list[list[str]], k: int) -> tuple[str, ...]:
        spellings: dict[str, Counter] = {}
        counts = Counter()
        for words in docs:
            seen = {w for w in words if any(c.isalpha() for c in w)}
            for word in seen:
                spellings.setdefault(unmarked(word), Counter())[word] += 1
            counts.update({unmarked(w) for w in seen})
        return tuple(word for bare, _ in counts.most_common(k) for word, _ in spellings[bare].most_common())

    fit, held = split[0::2], split[1::2]
    for k in STOPWORD_COUNTS:
        stop = set(frequent(fit, k))
        passed = float(np.mean([len(stop.intersection(words)) >= MIN_STOP_WORDS + STOP_MARGIN for words in held]))
        if passed >= pass_rate:
            break
    if notes is not None:
        notes["stopwords"] = (f"{k} most frequent words in every spelling, {MIN_STOP_WORDS + STOP_MARGIN} per "
                              f"document; held-out half passes {passed:.3f}")
    return frequent(split, k)


def unmarked(word: str) -> str:
    """`word` without case and combining diacritics (U+0300-U+036F: tones, accents; not the vowel
    signs of Indic or Ethiopic scripts, which are letters of the word)."""
    return "".join(c for c in unicodedata.normalize("NFD", word.casefold()) if not 0x300 <= ord(c) <= 0x36F)


def _language_score(lang: str, documents: list[str], lid: LidBackend | None, notes: dict[str, str]) -> float:
    """max(0.3, min(0.9, median − σ)) over the scores of reference documents identified as `lang`."""
    if lid is None or not lid.knows(lang):
        notes["language_score"] = "the language-ID model does not know this language: floor 0.3"
        return 0.3
    scores = [score for label, score in map(lid.predict, documents) if equivalent(label, lang)]
    if len(scores) < 2:
        notes["language_score"] = "too few reference documents identified as the language: floor 0.3"
        return 0.3
    return round(max(0.3, min(0.9, statistics.median(scores) - statistics.stdev(scores))), 3)


def read_reference(lang: str, paths: list[Path], lid: LidBackend | None) -> list[str]:
    """The lines of `lang`'s reference files; a file that is missing, empty or (by `lid`, when it
    knows the language) mostly in another language is an error naming it."""
    lines: list[str] = []
    for path in map(Path, paths):
        where = f"thresholds.reference.{lang}"
        if not path.is_file():
            raise LangadaptError(f"reference text not found: {path}", where=where, fix="check the path.")
        own = read_lines(path)
        if not own:
            raise LangadaptError(f"reference text {path} is empty", where=where,
                                 fix=f"give clean {lang} text, one sentence or paragraph a line.")
        if lid is not None and lid.knows(lang):
            labels = Counter(lid.predict(doc)[0] for doc in reference_documents(own, lang))
            share = sum(n for label, n in labels.items() if equivalent(label, lang)) / labels.total()
            if share < 0.5:
                raise LangadaptError(
                    f"reference text {path} is not {lang}: language ID finds it {labels.most_common(1)[0][0]} "
                    f"(only {share:.0%} of its documents are {lang})", where=where,
                    fix=f"list clean text of {lang} under `{where}`.")
        lines += own
    return lines


def resolve(lang: str, published_dir: Path | None, reference: list[str] | None, lid: LidBackend | None,
            prefer: str = "published", pass_rate: float = PASS_RATE, stopwords: str = "derived",
            margin: float = MARGIN) -> Thresholds:
    """Published thresholds when the folder has the language (or `prefer="derived"` and text is given),
    else derived ones; neither is a user error that says what to add. With reference text and
    `stopwords="derived"`, published thresholds take the stopwords derived from that text."""
    published = load_published(published_dir, lang) if published_dir else None
    if reference and (published is None or prefer == "derived"):
        return derive(lang, reference_documents(reference, lang), lid, pass_rate, margin)
    if published is not None:
        if reference and stopwords == "derived":
            split = [word_tokenizer(lang).word_tokenize(doc) for doc in reference_documents(reference, lang)]
            return replace(published, stopwords=derive_stopwords(split, pass_rate),
                           notes={"stopwords": "derived from reference text"})
        return published
    raise LangadaptError(
        f"no filter thresholds for {lang}: no published config"
        + (f" in {published_dir}" if published_dir else "") + " and no reference text",
        fix=f"add `{lang}.yml` to `thresholds.published_dir`, or list clean text files of the language under "
            f"`thresholds.reference.{lang}`.",
    )
