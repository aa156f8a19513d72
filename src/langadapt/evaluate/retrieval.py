"""Sentence retrieval on parallel text: for each sentence, is its translation the nearest
candidate among all sentences on the other side? (Tatoeba / LASER style accuracy.)

Sentences are embedded by mean-pooled frozen states; each side's mean vector is subtracted
first, so the shared "which language is this" direction does not dominate the cosine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.evaluate.embed import mean_pooled


def read_parallel(source: Path, target: Path, limit: int | None = None) -> tuple[list[str], list[str]]:
    """Two line-parallel files (line i of one translates line i of the other)."""
    left, right = (Path(p).read_text(encoding="utf-8").splitlines() for p in (source, target))
    if len(left) != len(right):
        raise LangadaptError(f"{source} has {len(left)} lines but {target} has {len(right)}",
                             fix="pass two line-parallel files (line i translates line i).")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if a.strip() and b.strip()][:limit]
    if not pairs:
        raise LangadaptError(f"no sentence pairs in {source} and {target}", fix="pass non-empty parallel files.")
    return [a for a, _ in pairs], [b for _, b in pairs]


def _unit(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)


def retrieval_accuracy(
    model: PreTrainedModel, tokenizer: Tokenizer, source: list[str], target: list[str], layer: int = -1,
) -> dict[str, float]:
    """Accuracy of finding line i's translation, in both directions."""
    left, right = (_unit(mean_pooled(model, tokenizer, side, layer)) for side in (source, target))
    similarity = left @ right.T
    gold = np.arange(len(source))
    return {"retrieval_src2tgt": float((similarity.argmax(axis=1) == gold).mean()),
            "retrieval_tgt2src": float((similarity.argmax(axis=0) == gold).mean())}
