"""Thin curation: length filter, language-ID check, exact and MinHash near-duplicate removal,
and decontamination against the held-out evaluation text.

Each step is a small function over a list of documents that returns (kept, removed), so
`stats.json` can say how many documents each step removed, per language, and
`removed.jsonl` says why each one went.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from langadapt.atomic import write_json, write_jsonl
from langadapt.corpus import lid
from langadapt.corpus.config import CurateConfig
from langadapt.corpus.document import Document, write_corpus
from langadapt.errors import LangadaptError
from langadapt.languages import equivalent, parse_label

Removed = tuple[Document, str]  # the document and why it was removed
Step = Callable[[list[Document]], tuple[list[Document], list[Removed]]]


@dataclass
class CurateResult:
    train: list[Document]
    heldout: list[Document]
    stats: dict = field(default_factory=dict)


def _normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def length_filter(min_chars: int) -> Step:
    def step(docs: list[Document]):
        kept = [d for d in docs if len(d.text.strip()) >= min_chars]
        removed = [(d, f"{len(d.text.strip())} chars < {min_chars}") for d in docs if len(d.text.strip()) < min_chars]
        return kept, removed

    return step


def language_id_filter(threshold: float, min_chars: int, unchecked: set[str]) -> Step:
    """Remove a document when py3langid is ≥ `threshold` sure it is another language (a
    macrolanguage and its individual languages count as one)."""

    def step(docs: list[Document]):
        kept, removed = [], []
        for doc in docs:
            if lid.model_label(doc.lang) is None:
                unchecked.add(doc.lang)
            elif len(doc.text) >= min_chars:
                label, prob = lid.identify(doc.text)
                doc.metadata["lid"] = {"label": label, "score": round(prob, 4)}
                if not equivalent(parse_label(label), doc.lang) and prob >= threshold:
                    removed.append((doc, f"identified as {label} with p={prob:.3f}"))
                    continue
            kept.append(doc)
        return kept, removed

    return step


def exact_dedup(docs: list[Document]):
    """Keep the first document of each (language, normalised text); count the copies."""
    first: dict[tuple[str, str], Document] = {}
    removed = []
    for doc in docs:
        key = (doc.lang, hashlib.sha1(_normalise_text(doc.text).encode()).hexdigest())
        if key in first:
            keeper = first[key]
            keeper.metadata["cluster_size"] = keeper.metadata.get("cluster_size", 1) + 1
            removed.append((doc, f"exact duplicate of {keeper.id}"))
        else:
            doc.metadata.setdefault("cluster_size", 1)
            first[key] = doc
    return list(first.values()), removed


def near_dedup(threshold: float, num_perm: int, shingle: int) -> Step:
    """MinHash-LSH over character shingles, per language: keep one document per cluster."""

    def signature(text: str) -> MinHash:
        norm = _normalise_text(text)
        grams = {norm[i : i + shingle] for i in range(max(1, len(norm) - shingle + 1))}
        minhash = MinHash(num_perm=num_perm, seed=1)
        minhash.update_batch([g.encode("utf-8") for g in grams])
        return minhash

    def step(docs: list[Document]):
        kept, removed = [], []
        indexes: dict[str, MinHashLSH] = defaultdict(lambda: MinHashLSH(threshold=threshold, num_perm=num_perm))
        by_id: dict[tuple[str, str], Document] = {}
        for doc in docs:
            minhash = signature(doc.text)
            index = indexes[doc.lang]
            matches = index.query(minhash)
            if matches:
                keeper = by_id[(doc.lang, sorted(matches)[0])]
                keeper.metadata["cluster_size"] = keeper.metadata.get("cluster_size", 1) + doc.metadata.get(
                    "cluster_size", 1
                )
                removed.append((doc, f"near duplicate of {keeper.id}"))
                continue
            index.insert(doc.id, minhash)
            by_id[(doc.lang, doc.id)] = doc
            kept.append(doc)
        return kept, removed

    return step


def decontaminate(heldout: list[Document]) -> Step:
    """Remove training documents whose text equals a held-out text of the same language."""
    banned = {(d.lang, _normalise_text(d.text)) for d in heldout}

    def step(docs: list[Document]):
        leaked = [(d.lang, _normalise_text(d.text)) in banned for d in docs]
        kept = [d for d, bad in zip(docs, leaked, strict=True) if not bad]
        removed = [(d, "text equals a held-out evaluation string") for d, bad in zip(docs, leaked, strict=True) if bad]
        return kept, removed

    return step


def id_bucket(doc_id: str, seed: int) -> float:
    """A document id's place in [0, 1], the same in every run with `seed`: ids below a fraction are held out."""
    return int(hashlib.sha1(f"{seed}:{doc_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_heldout(docs: list[Document], fraction: float, languages: list[str], seed: int):
    """Split by document id, so a held-out id is held out in every language (parallel text).

    Only ids translated in *all* languages are held out, so every language is scored on the
    same content and bpb is comparable across languages. Documents marked with a `split` (a
    corpus artifact read back with `read_curated`) keep theirs.
    """
    if any("split" in d.metadata for d in docs):  # a corpus artifact read back: its split stands
        return ([d for d in docs if d.metadata.get("split") != "heldout"],
                [d for d in docs if d.metadata.get("split") == "heldout"])
    langs_per_id: dict[str, set[str]] = defaultdict(set)
    for doc in docs:
        langs_per_id[doc.id].add(doc.lang)

    heldout_ids = {i for i, langs in langs_per_id.items() if id_bucket(i, seed) < fraction and langs >= set(languages)}
    train = [d for d in docs if id_bucket(d.id, seed) >= fraction]
    heldout = [d for d in docs if d.id in heldout_ids]
    return train, heldout


def training_and_heldout(cfg: CurateConfig, docs: list[Document], languages: list[str], seed: int,
                         heldout: list[Document] | None = None) -> tuple[list[Document], list[Document]]:
    """The documents to clean and the held-out text: `heldout` evaluation text when given, else a
    split of `docs` (`split_heldout`)."""
    if not docs:
        raise LangadaptError("the corpus is empty: the reader yielded no documents",
                             fix="check the corpus source and language list in your config.")
    docs = [replace(d, metadata=dict(d.metadata)) for d in docs]  # steps annotate metadata
    if heldout is None:
        return split_heldout(docs, cfg.heldout_fraction, languages, seed)
    return docs, heldout


def curate(cfg: CurateConfig, docs: list[Document], languages: list[str], out: Path, seed: int,
           heldout: list[Document] | None = None) -> CurateResult:
    """The in-memory engine: split off held-out text (unless `heldout` evaluation text is given),
    clean the rest, write the corpus artifact (`train.jsonl`, `heldout.jsonl`), `removed.jsonl`
    and `stats.json` to `out`. The datatrove engine is `curation.curate_documents`."""
    train, heldout = training_and_heldout(cfg, docs, languages, seed, heldout)
    input_counts = Counter(d.lang for d in train)
    unchecked: set[str] = set()
    steps: list[tuple[str, Step]] = [
        ("length", length_filter(cfg.min_chars)),
        ("language_id", language_id_filter(cfg.lid_threshold, cfg.lid_min_chars, unchecked)),
        ("exact_dedup", exact_dedup),
        ("near_dedup", near_dedup(cfg.near_dup_threshold, cfg.minhash_perms, cfg.shingle_chars)),
        ("decontaminate", decontaminate(heldout)),
    ]
    removed_rows, removed_counts = [], {}
    for name, step in steps:
        train, removed = step(train)
        removed_counts[name] = dict(Counter(d.lang for d, _ in removed))
        removed_rows += [{"step": name, "reason": why, **d.to_dict()} for d, why in removed]

    kept_counts = Counter(d.lang for d in train)
    heldout_counts = Counter(d.lang for d in heldout)
    for lang in languages:
        if not kept_counts[lang] or not heldout_counts[lang]:
            which = "training" if not kept_counts[lang] else "held-out"
            raise LangadaptError(
                f"no {which} documents left for {lang} after curation "
                f"(input {input_counts[lang]}, removed per step: "
                f"{ {k: v.get(lang, 0) for k, v in removed_counts.items()} })",
                fix="lower `curate.min_chars`, raise `curate.lid_threshold`, or give more text for this language.",
            )
    stats = {
        "input": dict(input_counts),
        "removed": removed_counts,
        "kept": dict(kept_counts),
        "heldout": dict(heldout_counts),
        "language_id_unchecked": sorted(unchecked),
    }
    write_corpus(out, train, heldout)
    write_jsonl(out / "removed.jsonl", removed_rows)
    write_json(out / "stats.json", stats)
    return CurateResult(train=train, heldout=heldout, stats=stats)
