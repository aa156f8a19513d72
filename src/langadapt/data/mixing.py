"""Mix several token sources into one batch stream, and shape documents before packing.

- **Weights or temperature.** Each batch row comes from one source, drawn with probability
  proportional to its weight, or to `tokens ** alpha` (temperature sampling: α = 1 samples in
  proportion to size, α → 0 uniformly, so small languages are up-sampled).
- **Replay** of the original languages during continual pretraining is one more source, with
  a small weight.
- **Parallel text** becomes bilingual pairs or interlinear documents (sentences of the two
  languages alternating), which teach alignment with little data.
- **Control tokens** (`<|lang=hsb_Latn|>`, `<|quality=high|>`) prefix each document from its
  metadata, for conditional training; they are added to the tokenizer as special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from tokenizers import Tokenizer

from langadapt.corpus.document import Document
from langadapt.data.packing import Batch, BlockSampler


def mixture_probabilities(tokens: dict[str, int], weights: dict[str, float], alpha: float | None) -> dict[str, float]:
    """Sampling probability of each source: ∝ `weights`, or ∝ tokens**alpha when `alpha` is set."""
    raw = {name: (tokens[name] ** alpha if alpha is not None else weights[name]) for name in tokens}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


class MixtureSampler:
    """Batches whose rows come from several `BlockSampler`s, each row's source drawn by probability."""

    def __init__(self, samplers: dict[str, BlockSampler], probabilities: dict[str, float], seed: int):
        self.samplers = samplers
        self.names = list(samplers)
        self.probabilities = torch.tensor([probabilities[name] for name in self.names], dtype=torch.float64)
        self.batch_size = next(iter(samplers.values())).batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> Batch:
        picks = torch.multinomial(self.probabilities, self.batch_size, replacement=True, generator=self.generator)
        parts = []
        for index, name in enumerate(self.names):
            rows = int((picks == index).sum())
            if rows:
                parts.append({key: value[:rows] for key, value in self.samplers[name]().items()})
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(),
                "sources": {name: sampler.state_dict() for name, sampler in self.samplers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        for name, sampler in self.samplers.items():
            sampler.load_state_dict(state["sources"][name])


def mixture_sampler(tokens: dict[str, np.ndarray], probabilities: dict[str, float], block_size: int,
                    batch_size: int, seed: int, masks: dict[str, np.ndarray] | None = None):
    """One `BlockSampler` per token stream (seeded `seed + i`, with its loss mask from `masks` if
    it has one), mixed by `probabilities`; a single stream is sampled directly."""
    masks = masks or {}
    samplers = {name: BlockSampler(stream, block_size, batch_size, seed + i, masks.get(name))
                for i, (name, stream) in enumerate(tokens.items())}
    if len(samplers) == 1:
        return next(iter(samplers.values()))
    return MixtureSampler(samplers, probabilities, seed)


def interlinear(pairs: Iterable[tuple[str, str]], pairs_per_document: int) -> Iterator[str]:
    """Documents whose lines alternate source sentence, its translation, next source sentence, ..."""
    lines: list[str] = []
    for source, target in pairs:
        lines += [source, target]
        if len(lines) == 2 * pairs_per_document:
            yield "\n".join(lines)
            lines = []
    if lines:
        yield "\n".join(lines)


def bilingual_pairs(pairs: Iterable[tuple[str, str]]) -> Iterator[str]:
    """One short document per translation pair: the sentence, a newline, its translation."""
    for source, target in pairs:
        yield f"{source}\n{target}"


def control_token(field: str, value: object) -> str:
    return f"<|{field}={value}|>"


def with_control_tokens(docs: Iterable[Document], fields: list[str]) -> Iterator[str]:
    """Each document's text prefixed by one control token per field (`lang` or a metadata key)."""
    for doc in docs:
        values = {"lang": doc.lang, **doc.metadata}
        prefix = "".join(control_token(field, values.get(field, "none")) for field in fields)
        yield prefix + doc.text


def add_control_tokens(tokenizer: Tokenizer, texts: list[str]) -> list[str]:
    """Register every control token found at the start of `texts` as a special token; return them."""
    found = sorted({token for text in texts for token in _prefix_tokens(text)})
    tokenizer.add_special_tokens(found)
    return found


def _prefix_tokens(text: str) -> list[str]:
    tokens = []
    while text.startswith("<|") and "|>" in text:
        end = text.index("|>") + 2
        tokens.append(text[:end])
        text = text[end:]
    return tokens
