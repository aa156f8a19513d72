"""Linear probes on frozen states: what a model's representations already encode.

A logistic-regression classifier (scikit-learn) is trained on mean-pooled states of one
language's labelled data and scored on another's, so the accuracy measures the model, not the
probe (the model is never trained here). Probes live in one registry:

- `sib200` — SIB-200 topic classification (7 topics): train on language A, test on each B.
  One row per B with metric `sib200_acc:A` (so a set of B's is one row of a transfer matrix).
- `pos` — universal POS tags on a UD treebank (CoNLL-U): train on its train file, test on its
  test file; each word is the mean of its tokens' states. Metric `pos_acc`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.data.labelled import read_conllu, treebank_file
from langadapt.data.sib200 import read_topics
from langadapt.evaluate import require
from langadapt.evaluate.embed import hidden_states, mean_pooled


@dataclass
class ProbeTask:
    """Where a probe's data is and which languages it uses (all inputs; nothing is hard-coded)."""

    data: Path
    train_language: str = ""
    test_languages: list[str] = field(default_factory=list)
    layer: int = -1
    limit: int | None = None  # at most this many training (and, for POS, test) sentences: quick runs


Probe = Callable[[PreTrainedModel, Tokenizer, ProbeTask], list[dict]]


def linear_probe_accuracy(train_x: np.ndarray, train_y: list[str], test_x: np.ndarray, test_y: list[str]) -> float:
    """Fit a standardised logistic regression on train, return accuracy on test."""
    require("sklearn", "eval")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(train_x, train_y)
    return float((classifier.predict(test_x) == np.asarray(test_y)).mean())


def sib200(model: PreTrainedModel, tokenizer: Tokenizer, task: ProbeTask) -> list[dict]:
    texts, labels = read_topics(task.data, task.train_language, "train")
    train_texts, train_labels = texts[: task.limit], labels[: task.limit]
    train_x = mean_pooled(model, tokenizer, train_texts, task.layer)
    rows = []
    for language in task.test_languages or [task.train_language]:
        test_texts, test_labels = read_topics(task.data, language, "test")
        test_x = mean_pooled(model, tokenizer, test_texts, task.layer)
        accuracy = linear_probe_accuracy(train_x, train_labels, test_x, test_labels)
        rows.append({"language": language, "metric": f"sib200_acc:{task.train_language}", "value": accuracy})
    return rows


def word_states(model: PreTrainedModel, tokenizer: Tokenizer, sentences: list[list[str]], layer: int) -> np.ndarray:
    """One vector per word: the mean of the states of the tokens that overlap it (words joined by spaces)."""
    texts, owners = [], []
    for words in sentences:
        text, owner = "", []
        for index, word in enumerate(words):
            if text:
                text += " "
                owner.append(-1)
            text += word
            owner += [index] * len(word)
        texts.append(text)
        owners.append(np.asarray(owner))
    vectors = []
    states = hidden_states(model, tokenizer, texts, layer)
    for text, words, owner, state in zip(texts, sentences, owners, states, strict=True):
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        token_word = np.asarray([owner[max(start, end - 1)] for start, end in offsets])
        sums, counts = np.zeros((len(words), state.shape[1])), np.zeros(len(words))
        inside = token_word >= 0  # a lone leading-space token belongs to no word
        np.add.at(sums, token_word[inside], state[inside])
        np.add.at(counts, token_word[inside], 1)
        vectors.append(sums / np.maximum(counts, 1)[:, None])
    return np.concatenate(vectors)


def pos(model: PreTrainedModel, tokenizer: Tokenizer, task: ProbeTask) -> list[dict]:
    folder = Path(task.data)
    data = {split: read_conllu(treebank_file(folder, split))[: task.limit] for split in ("train", "test")}
    features = {split: word_states(model, tokenizer, [[w for w, _ in s] for s in sentences], task.layer)
                for split, sentences in data.items()}
    labels = {split: [tag for s in sentences for _, tag in s] for split, sentences in data.items()}
    accuracy = linear_probe_accuracy(features["train"], labels["train"], features["test"], labels["test"])
    return [{"language": task.train_language or folder.name, "metric": "pos_acc", "value": accuracy}]
