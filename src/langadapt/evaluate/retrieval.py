"""Sentence retrieval on parallel text: for each sentence, is its translation the nearest
candidate among all sentences on the other side? (Tatoeba / LASER style accuracy.)

Sentences are embedded by mean-pooled frozen states; each side's mean vector is subtracted
first, so the shared "which language is this" direction does not dominate the cosine."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.evaluate.embed import mean_pooled


def _unit(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)


def _accuracies(similarity: np.ndarray) -> dict[str, float]:
    """Both directions' share of lines whose most similar line on the other side is their translation."""
    gold = np.arange(len(similarity))
    return {"retrieval_src2tgt": float((similarity.argmax(axis=1) == gold).mean()),
            "retrieval_tgt2src": float((similarity.argmax(axis=0) == gold).mean())}


def retrieval_accuracy(
    model: PreTrainedModel, tokenizer: Tokenizer, source: list[str], target: list[str], layer: int = -1,
) -> dict[str, float]:
    """Accuracy of finding line i's translation, in both directions."""
    left, right = (_unit(mean_pooled(model, tokenizer, side, layer)) for side in (source, target))
    similarity = left @ right.T
    return _accuracies(similarity)


def lexical_retrieval(tokenizer: Tokenizer, source: list[str], target: list[str]) -> dict[str, float]:
    """`retrieval_accuracy` with nothing learnt: tf-idf over the tokenizer's tokens. The reference a
    model's retrieval is read against: an untrained model scores through the same overlap (shared
    names, numbers), blurred by its random embeddings."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=lambda text: tokenizer.encode(text, add_special_tokens=False).tokens)
    vectors = vectorizer.fit_transform(source + target)
    similarity = (vectors[: len(source)] @ vectors[len(source) :].T).toarray()
    return _accuracies(similarity)


def embedding_variance(vectors: np.ndarray) -> float:
    """Total variance of the unit-length embeddings (1 − ‖mean‖²): 0 when every sentence maps to one
    point (a collapsed contrastive model), near 1 when they spread over the sphere."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return float(unit.var(axis=0).sum())


def effective_dimensions(vectors: np.ndarray) -> float:
    """How many directions the sentences spread over, per dimension rather than in total: exp of
    the entropy of the covariance eigenvalues' shares (effective rank). Near 1 when a model
    squeezes its states onto a line even if their total variance looks healthy; the width when
    every direction carries the same variance."""
    eigenvalues = np.clip(np.linalg.eigvalsh(np.cov(vectors, rowvar=False)), 0, None)
    shares = eigenvalues / eigenvalues.sum()
    return float(np.exp(-(shares * np.log(np.where(shares > 0, shares, 1))).sum()))
