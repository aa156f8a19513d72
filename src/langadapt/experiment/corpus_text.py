"""The experiment's input text: its corpus files (hashed into the manifest), read as documents,
and a curated corpus folder's splits as texts by language."""

from __future__ import annotations

from pathlib import Path

from langadapt.config import ExperimentConfig
from langadapt.corpus import document
from langadapt.corpus.document import SPLITS, Document, read_curated
from langadapt.corpus.sources import (
    code_files,
    read_jsonl_files,
    read_sample,
    read_text_corpus,
    sample_input_files,
)

TRAIN_FILE, HELDOUT_FILE = "train.jsonl", "heldout.jsonl"  # a curated corpus folder's two splits


def corpus_files(cfg: ExperimentConfig) -> list[Path]:
    languages = cfg.languages.all
    heldout = [path for lang in languages for path in cfg.corpus.heldout.get(lang, [])]
    if cfg.corpus.source == "sample":
        return sample_input_files(languages) + heldout
    if cfg.corpus.source == "text":
        return [path for lang in languages for path in cfg.corpus.texts.get(lang, [])] + heldout
    if cfg.corpus.source == "curated":
        return [cfg.corpus.files[0] / f"{split}.jsonl" for split in SPLITS] + heldout
    return list(cfg.corpus.files) + heldout



def input_files(cfg: ExperimentConfig) -> list[Path]:
    """The files an experiment reads, whose hashes its manifest records."""
    other = code_files(cfg.adapt.mix.code_files) if cfg.adapt.mix.code else []
    vectors = cfg.vocab.static_vectors
    return corpus_files(cfg) + other + ([vectors] if vectors and Path(vectors).is_file() else [])



def read_corpus(cfg: ExperimentConfig) -> list[Document]:
    languages = cfg.languages.all
    if cfg.corpus.source == "sample":
        return list(read_sample(languages))
    if cfg.corpus.source == "text":
        return list(read_text_corpus(cfg.corpus.texts, languages))
    if cfg.corpus.source == "curated":  # its held-out split stands (corpus.curate.split_heldout)
        return read_curated(cfg.corpus.files[0], languages)
    return list(read_jsonl_files(cfg.corpus.files, languages))



def read_split(corpus: Path, split: str, languages: list[str]) -> dict[str, dict[str, str]]:
    """One split (`train` or `heldout`) of the corpus folder `corpus` as texts by language and id."""
    texts: dict[str, dict[str, str]] = {lang: {} for lang in languages}
    for doc in document.read_corpus(corpus, split, languages):
        texts[doc.lang][doc.id] = doc.text
    return texts




def split_texts(corpus: Path, split: str, languages: list[str]) -> dict[str, list[str]]:
    """The texts of one split (`train` or `heldout`) of the corpus folder `corpus`, by language."""
    return {lang: list(by_id.values()) for lang, by_id in read_split(corpus, split, languages).items()}
