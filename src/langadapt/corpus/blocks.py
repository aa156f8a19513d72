"""datatrove blocks the curation pipeline adds around datatrove's own: language ID through a
backend registry, datatrove's quality filters with per-language thresholds, cluster sizes after
dedup, and rehydration.

Every removed document carries `filter_reason` (set by datatrove) and `filter_value` (the metric
that crossed its threshold), so `removed/<filter>/` says both why and by how much.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.text import TextNormConfig, simplify_text

from langadapt.atomic import write_json
from langadapt.corpus.lid import LidBackend, make_backend
from langadapt.corpus.thresholds import Thresholds, metrics
from langadapt.corpus.words import word_tokenizer
from langadapt.errors import LangadaptError
from langadapt.languages import equivalent, match, normalise
from langadapt.registry import QUALITY_FILTERS


def gopher_repetition(th: Thresholds, options: dict) -> BaseFilter:
    """FineWeb2's use of Gopher's repetition filter: duplicate lines, top and duplicated n-grams."""
    return GopherRepetitionFilter(
        dup_line_frac=th.dup_line_frac, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
        top_n_grams=th.top_n_grams, dup_n_grams=th.dup_n_grams, language=word_tokenizer(th.language),
    )


def fineweb_quality(th: Thresholds, options: dict) -> BaseFilter:
    """Line-ending punctuation and new-line ratio per language; FineWeb2 disables the short-line rule."""
    return FineWebQualityFilter(
        line_punct_thr=th.line_punct_thr, line_punct_exclude_zero=th.line_punct_thr < 0 or th.line_punct_exclude_zero,
        short_line_thr=999, char_duplicates_ratio=options.get("char_duplicates_ratio", 0.1),
        new_line_ratio=th.new_line_ratio, language=word_tokenizer(th.language),
    )


def gopher_quality(th: Thresholds, options: dict) -> BaseFilter:
    """Word-length bounds, words with letters, and at least two of the language's stopwords."""
    return GopherQualityFilter(
        min_doc_words=options.get("min_doc_words", 50), max_doc_words=None,
        min_avg_word_length=th.min_avg_word_length, max_avg_word_length=th.max_avg_word_length,
        max_non_alpha_words_ratio=th.max_non_alpha_words_ratio,
        stop_words=list(th.stopwords), min_stop_words=2 if th.stopwords else 0,
        language=word_tokenizer(th.language),
    )


def c4_lines(th: Thresholds, options: dict) -> BaseFilter:
    """C4's line rules (javascript, policy, lorem ipsum, curly brackets, citations) as FineWeb uses them:
    lines without terminal punctuation are kept."""
    return C4QualityFilter(filter_no_terminal_punct=False, min_num_sentences=options.get("min_lines", 5),
                           language=word_tokenizer(th.language))


# datatrove's reasons → the key of `thresholds.metrics()` that crossed its threshold.
_REASON_METRIC = [
    (re.compile(r"^dup_line_frac$"), "dup_line_frac"),
    (re.compile(r"^top_(\d+)_gram$"), "top_{}_gram"),
    (re.compile(r"^duplicated_(\d+)_n_grams$"), "dup_{}_gram"),
    (re.compile(r"^line_punct_ratio$"), "line_punct_thr"),
    (re.compile(r"^list_ratio$"), "new_line_ratio"),
    (re.compile(r"^gopher_(below|above)_avg_threshold$"), "avg_word_length"),
    (re.compile(r"^gopher_below_alpha_threshold$"), "max_non_alpha_words_ratio"),
]


def metric_value(reason: str, text: str, lang: str) -> float | None:
    for pattern, key in _REASON_METRIC:
        if match := pattern.match(reason):
            number = match.group(1) if "{}" in key else None
            value = metrics(text, word_tokenizer(lang).word_tokenize(text))[key.format(number)]
            return round(value, 4)
    return None


class LanguageFilters(BaseFilter):
    """One datatrove quality filter, instantiated per language with that language's thresholds.

    The per-language filters are built lazily in the worker, so the block pickles small."""

    def __init__(self, kind: str, thresholds: dict[str, Thresholds], options: dict,
                 exclusion_writer: DiskWriter | None = None):
        self.name = f"🌐 {kind} per language"  # before datatrove's __init__, which names the stats with it
        super().__init__(exclusion_writer)
        self.kind, self.thresholds, self.options = kind, thresholds, options
        self._filters: dict[str, BaseFilter] = {}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang = doc.metadata.get("language")
        if lang not in self.thresholds:
            return True
        if lang not in self._filters:
            self._filters[lang] = QUALITY_FILTERS[self.kind](self.thresholds[lang], self.options)
        result = self._filters[lang].filter(doc)
        if isinstance(result, tuple) and not result[0]:
            doc.metadata["filter_value"] = metric_value(result[1], doc.text, lang)
        elif result is False:
            return False, self.kind
        return result


class LanguageIdFilter(BaseFilter):
    """Identify each document's language with a registered backend; keep it when the language is
    one of `languages` and its score reaches that language's cutoff (FineWeb2's `language_score`).

    A document that declares a language (`lang` in the input) is checked against it; a declared
    language the model does not know is kept unchecked (`language_score` null), not dropped. A label
    that is a macrolanguage equivalent of a configured code (`swa_Latn` for `swh_Latn`) counts as it:
    `language` is the configured code, `lid_label` what the model said."""

    name = "🗣 Language ID"

    def __init__(self, backend: str, model_path: Path | None, cutoffs: dict[str, float],
                 exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.backend_name, self.model_path, self.cutoffs = backend, model_path, cutoffs
        self._backend: LidBackend | None = None

    @property
    def backend(self) -> LidBackend:
        if self._backend is None:
            self._backend = make_backend(self.backend_name, self.model_path)
        return self._backend

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        declared = doc.metadata.get("lang")
        if declared:
            try:
                declared = normalise(str(declared))
            except LangadaptError:
                return self._drop(doc, "unknown_declared_language", None)
            declared = match(declared, self.cutoffs) or declared
            if not self.backend.knows(declared):
                doc.metadata.update(language=declared, language_score=None, lid="unchecked")
                return True if declared in self.cutoffs else self._drop(doc, "not_a_target_language", None)
        label, score = self.backend.predict(doc.text)
        language = declared or match(label, self.cutoffs) or label
        doc.metadata.update(language=language, language_script=language.partition("_")[2],
                            language_score=round(score, 4), lid_label=label)
        if language not in self.cutoffs:
            return self._drop(doc, "not_a_target_language", score)
        if not equivalent(label, language):
            return self._drop(doc, "identified_as_other_language", score)
        if score < self.cutoffs[language]:
            return self._drop(doc, "language_score", score)
        return True

    @staticmethod
    def _drop(doc: Document, reason: str, value: float | None) -> tuple[bool, str]:
        doc.metadata["filter_value"] = None if value is None else round(value, 4)
        return False, reason


class QualitySignals(PipelineStep):
    """Each kept document's quality signals in `metadata["quality"]`: the quantities the filters
    threshold (`thresholds.metrics`), so an ablation can filter the curated corpus again, at other
    thresholds, without running the pipeline again."""

    name = "📏 quality signals"
    type = "📊 - STATS"

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            if lang := doc.metadata.get("language"):
                with self.track_time():
                    values = metrics(doc.text, word_tokenizer(lang).word_tokenize(doc.text))
                doc.metadata["quality"] = {key: round(value, 4) for key, value in values.items()}
            yield doc


def normalised_text(doc: Document) -> bytes:
    """Exact-dedup key: datatrove's text normalisation (case, punctuation, whitespace, digits)."""
    return simplify_text(doc.text, TextNormConfig()).encode("utf-8")


class ExactCounts(PipelineStep):
    """Records each exact-dedup survivor's copies (`duplicate_count`) under its index in this
    task's stream, the index MinHash's signature stage gives it, so that `ClusterSize` can count
    the exact copies of every member of a MinHash cluster, not only of the one that survives."""

    name = "🔢 exact copies"
    type = "🫂 - DEDUP"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data, rank: int = 0, world_size: int = 1):
        counts = {}
        for index, doc in enumerate(data):
            if count := int(doc.metadata.get("duplicate_count", 0)):
                counts[index] = count
            yield doc
        write_json(Path(self.folder) / f"{rank:06d}.json", counts)


class ClusterSize(PipelineStep):
    """`cluster_size` on each survivor: every document of its MinHash cluster plus their exact copies.

    datatrove records the exact copies of a survivor (`duplicate_count`) and the MinHash cluster
    of the survivors of exact dedup (`minhash_cluster_size`); a cluster member that had exact
    copies of its own adds them through `ExactCounts` (`counts`) and the cluster ids datatrove
    saved (`clusters`)."""

    name = "🔢 cluster size"
    type = "🫂 - DEDUP"

    def __init__(self, clusters: str | None = None, counts: str | None = None):
        super().__init__()
        self.clusters, self.counts = clusters, counts
        self._totals: Counter | None = None

    @property
    def totals(self) -> Counter:
        """Documents per MinHash cluster id, each member counted with its exact copies."""
        if self._totals is None:
            self._totals = Counter()
            for path in sorted(Path(self.clusters).glob("*.clusters")):
                counts = {}
                if self.counts and (counts_path := Path(self.counts) / f"{path.stem}.json").is_file():
                    counts = json.loads(counts_path.read_text(encoding="utf-8"))
                for index, cluster in np.fromfile(path, dtype="<u4").reshape(-1, 2).tolist():
                    self._totals[cluster] += 1 + counts.get(str(index), 0)
        return self._totals

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            cluster = doc.metadata.get("minhash_cluster_id", -1)
            if self.clusters is not None and cluster != -1:
                doc.metadata["cluster_size"] = self.totals[cluster]
            else:
                doc.metadata["cluster_size"] = 1 + int(doc.metadata.get("duplicate_count", 0))
            self.stat_update(f"cluster_size_{doc.metadata['cluster_size']}")
            yield doc


class Rehydrate(PipelineStep):
    """Upsample each document by its cluster size (FineWeb2's rehydration), optionally times a
    quality score: `weights` maps the smallest cluster size of each band to a number of copies."""

    name = "💧 rehydrate"
    type = "🔢 - SAMPLER"

    def __init__(self, weights: list[tuple[int, int]], quality_key: str | None = None):
        super().__init__()
        self.weights = sorted(weights)
        self.quality_key = quality_key

    def copies(self, doc: Document) -> int:
        size = int(doc.metadata.get("cluster_size", 1))
        copies = next((n for low, n in reversed(self.weights) if size >= low), 1)
        if self.quality_key is not None:
            copies = max(1, round(copies * float(doc.metadata.get(self.quality_key, 1.0))))
        return copies

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            copies = self.copies(doc)
            doc.metadata["rehydration_copies"] = copies
            self.stat_update("copies", value=copies)
            yield doc
            for k in range(1, copies):
                yield Document(text=doc.text, id=f"{doc.id}#copy{k}", metadata=dict(doc.metadata))
