"""Labelled data for fine-tuned classifiers: SIB-200 topics (one label per text) and UD
part-of-speech tags (one label per word), read with checks and encoded for a classification head.

A bad input is an error naming the file (and line) rather than a quiet gap: a text without a
label, a language the SIB-200 folder lacks, or a test label the training split never shows would
otherwise score a model on labels it could not have learnt. A word's label sits on the word's
last token: in a causal model that is the first position that has read the whole word.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from langadapt.corpus.document import read_utf8
from langadapt.data.packing import Batch
from langadapt.errors import LangadaptError

IGNORE = -100  # the label of a position that takes no loss (padding, a word's inner tokens)


def read_conllu(path: Path) -> list[list[tuple[str, str]]]:
    """Sentences as (word form, UPOS) lists; multi-word token ranges and empty nodes are skipped."""
    sentences, words = [], []
    for line in read_utf8(path).splitlines():
        if not line.strip():
            if words:
                sentences.append(words)
            words = []
        elif not line.startswith("#"):
            columns = line.split("\t")
            if columns[0].isdigit():
                words.append((columns[1], columns[3]))
    if words:
        sentences.append(words)
    return sentences


def treebank_file(folder: Path, split: str) -> Path:
    """A UD treebank folder's `*-ud-<split>.conllu` (the first, by name); none is an error naming the folder."""
    paths = sorted(Path(folder).glob(f"*-ud-{split}.conllu"))
    if not paths:
        raise LangadaptError(f"no *-ud-{split}.conllu file", where=str(folder),
                             fix="point `task.data` (or `pos`) at a Universal Dependencies treebank folder.")
    return paths[0]


def read_pos(folder: Path, split: str) -> list[list[tuple[str, str]]]:
    """Sentences of (word, UPOS) from a UD treebank folder's `*-ud-<split>.conllu`."""
    path = treebank_file(folder, split)
    sentences = read_conllu(path)
    for number, sentence in enumerate(sentences, start=1):
        if any(not tag or tag == "_" for _, tag in sentence):
            raise LangadaptError(f"sentence {number} has a word without a UPOS tag", where=str(path),
                                 fix="fill column 4 (UPOS) of every word line.")
    return sentences


def label_list(train: list[str], tests: dict[str, list[str]], where: str) -> list[str]:
    """The sorted training labels; a test set with a label outside them is an error."""
    labels = sorted(set(train))
    for name, test in tests.items():
        unseen = sorted(set(test) - set(labels))
        if unseen:
            raise LangadaptError(
                f"test set {name} has labels the training set lacks: {', '.join(unseen)} "
                f"(training labels: {', '.join(labels)})", where=where,
                fix="train and test on the same label set (the same dataset's splits), or raise `task.limit` "
                    "so the training examples cover every label.")
    return labels


@dataclass
class Labelled:
    """Encoded examples: token ids, and one label id per example (sequence) or per token (token)."""

    ids: list[list[int]]
    labels: list[int] | list[list[int]]

    def __len__(self) -> int:
        return len(self.ids)


def encode_texts(tokenizer: Tokenizer, examples: list[tuple[str, str]], names: list[str],
                 max_tokens: int) -> Labelled:
    """(text, label) pairs as token ids (cut to `max_tokens`) and label ids."""
    encodings = tokenizer.encode_batch([text for text, _ in examples], add_special_tokens=False)
    index = {name: i for i, name in enumerate(names)}
    return Labelled([(e.ids or [0])[:max_tokens] for e in encodings], [index[label] for _, label in examples])


def encode_words(tokenizer: Tokenizer, sentences: list[list[tuple[str, str]]], names: list[str],
                 max_tokens: int) -> Labelled:
    """Words joined by spaces; each word's tag on its last token, -100 on the others (and on words
    cut off by `max_tokens`)."""
    index = {name: i for i, name in enumerate(names)}
    ids, labels = [], []
    for sentence in sentences:
        text = " ".join(word for word, _ in sentence)
        owner, at = [-1] * len(text), 0
        for number, (word, _) in enumerate(sentence):
            owner[at : at + len(word)] = [number] * len(word)
            at += len(word) + 1
        encoding = tokenizer.encode(text, add_special_tokens=False)
        last: dict[int, int] = {}
        for position, (start, end) in enumerate(encoding.offsets):
            word = owner[max(start, end - 1)] if end > 0 else -1
            if word >= 0:
                last[word] = position
        tags = [IGNORE] * len(encoding.ids)
        for word, position in last.items():
            tags[position] = index[sentence[word][1]]
        ids.append(encoding.ids[:max_tokens])
        labels.append(tags[:max_tokens])
    return Labelled(ids, labels)


def collate(data: Labelled, rows: list[int], pad_id: int) -> Batch:
    """Right-padded `input_ids`, `attention_mask` and `labels` of the chosen examples."""
    width = max(len(data.ids[row]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    per_token = isinstance(data.labels[0], list)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long) if per_token else torch.empty(
        len(rows), dtype=torch.long)
    for i, row in enumerate(rows):
        length = len(data.ids[row])
        ids[i, :length] = torch.tensor(data.ids[row])
        mask[i, :length] = 1
        if per_token:
            labels[i, :length] = torch.tensor(data.labels[row])
        else:
            labels[i] = data.labels[row]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def in_order(data: Labelled, pad_id: int, batch_size: int = 32) -> Iterator[Batch]:
    """Every example once, in order (for predictions)."""
    for start in range(0, len(data), batch_size):
        yield collate(data, list(range(start, min(start + batch_size, len(data)))), pad_id)


class LabelledSampler:
    """Random batches of labelled examples (with replacement), seeded and resumable like BlockSampler."""

    def __init__(self, data: Labelled, batch_size: int, pad_id: int, seed: int):
        if not len(data):
            raise ValueError("no labelled examples to sample from")
        self.data, self.batch_size, self.pad_id = data, batch_size, pad_id
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> Batch:
        rows = torch.randint(len(self.data), (self.batch_size,), generator=self.generator).tolist()
        return collate(self.data, rows, self.pad_id)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
