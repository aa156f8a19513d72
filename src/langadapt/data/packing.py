"""Pack documents into one token stream (documents separated by EOS) and sample blocks.

nanoGPT's recipe: the corpus is one array; a batch is `batch_size` random windows of
`block_size + 1` tokens, handed to the loop as a `Batch` mapping: `input_ids` and `labels` (the
same window shifted by one token). A mapping rather than a pair, so a sampler can add what an
objective needs beyond token ids (a loss mask, a language, a teacher's inputs) without touching
the loop. The array can be a memory-mapped token file (`write_tokens` /
`read_tokens`), so a run tokenises its data once and a corpus larger than memory costs
nothing extra. The sampler is seeded and its state is saved with every checkpoint, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from langadapt.atomic import write_json, write_with

Batch = dict[str, torch.Tensor]  # "input_ids" and "labels" (-100: no loss) at least, one row per sequence


def pack(texts: Iterable[str], tokenizer: Tokenizer, eos_id: int, seed: int) -> np.ndarray:
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(encoding.ids)
        ids.append(eos_id)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= np.iinfo(np.uint16).max + 1 else np.int32
    return np.asarray(ids, dtype=dtype)


def write_tokens(path: Path, tokens: np.ndarray) -> Path:
    """Write a token array as raw binary plus a `.json` sidecar (dtype, length), atomically."""
    path = Path(path)
    write_with(path, lambda tmp: tokens.tofile(tmp))
    write_json(path.with_suffix(".json"), {"dtype": str(tokens.dtype), "tokens": int(len(tokens))})
    return path


def read_tokens(path: Path) -> np.ndarray:
    """Memory-map a token file written by `write_tokens` (read-only; pages load on demand)."""
    meta = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    return np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["tokens"],))


class BlockSampler:
    """Draws batches of random windows from a packed token stream."""

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, seed: int):
        if len(tokens) <= block_size + 1:
            raise ValueError(f"only {len(tokens)} tokens: need more than block_size + 1 = {block_size + 1}")
        self.tokens = tokens
        self.block_size, self.batch_size = block_size, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> Batch:
        starts = torch.randint(len(self.tokens) - self.block_size - 1, (self.batch_size,), generator=self.generator)
        windows = np.stack([self.tokens[s : s + self.block_size + 1] for s in starts.tolist()])
        windows = torch.from_numpy(windows.astype(np.int64))
        return {"input_ids": windows[:, :-1], "labels": windows[:, 1:]}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
