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
from langadapt.corpus.document import slices

Batch = dict[str, torch.Tensor]  # "input_ids" and "labels" (-100: no loss) at least, one row per sequence


def pack(texts: Iterable[str], tokenizer: Tokenizer, eos_id: int, seed: int) -> np.ndarray:
    return pack_masked(texts, None, tokenizer, eos_id, seed)[0]


BATCH_CHARS = 1 << 20  # characters tokenised at a time (texts in slices), so memory stays flat


def pack_masked(texts: Iterable[str], loss_from: list[int | None] | None, tokenizer: Tokenizer, eos_id: int,
                seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Pack `texts` (shuffled by `seed`); with `loss_from` (a character offset per text, None: all of
    it), also a 0/1 mask beside the tokens: 1 where a token takes loss, i.e. it ends after the offset,
    and on each end-of-text. Prompt tokens thus stay out of the loss wherever a window cuts.

    Texts are tokenised in slices (`slices`) and batches of about `BATCH_CHARS` characters, so
    memory stays flat whatever the length of a line or of the corpus."""
    texts = list(texts)
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= np.iinfo(np.uint16).max + 1 else np.int32
    ids: list[np.ndarray] = []
    mask: list[np.ndarray] = []
    batch: list[tuple[int, int, str, bool]] = []  # (text index, offset, piece, last piece of its text)

    def flush() -> None:
        for (index, offset, _, last), encoding in zip(
                batch, tokenizer.encode_batch([piece for _, _, piece, _ in batch], add_special_tokens=False),
                strict=True):
            ids.append(np.asarray(encoding.ids + ([eos_id] if last else []), dtype=dtype))
            if loss_from is not None:
                ends = np.asarray([end for _, end in encoding.offsets], dtype=np.int64) + offset
                piece_mask = (ends > (loss_from[index] or 0)).astype(np.uint8)
                mask.append(np.append(piece_mask, np.uint8(1)) if last else piece_mask)
        batch.clear()

    size = 0
    for index in order:
        pieces = list(slices(texts[index]))
        for number, (offset, piece) in enumerate(pieces):
            batch.append((index, offset, piece, number == len(pieces) - 1))
            size += len(piece)
            if size >= BATCH_CHARS:
                flush()
                size = 0
    flush()
    tokens = np.concatenate(ids) if ids else np.zeros(0, dtype=dtype)
    return tokens, (np.concatenate(mask) if mask else np.zeros(0, dtype=np.uint8)) if loss_from is not None else None


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
    """Draws batches of random windows from a packed token stream. With a loss `mask` beside it
    (`pack_masked`), labels of the tokens it marks 0 are -100, and each window starts at the
    end-of-text before a prompt, so a target is always seen after its prompt, as at inference."""

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, seed: int,
                 mask: np.ndarray | None = None):
        if len(tokens) <= block_size + 1:
            raise ValueError(f"only {len(tokens)} tokens: need more than block_size + 1 = {block_size + 1}")
        self.tokens, self.mask = tokens, mask
        self.block_size, self.batch_size = block_size, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.starts = None
        if mask is not None:  # a prompt begins where the mask turns from 1 (the end-of-text) to 0
            flags = np.asarray(mask[: len(tokens) - block_size - 1], dtype=np.int8)
            starts = np.flatnonzero((flags[1:] == 0) & (flags[:-1] == 1))
            self.starts = torch.from_numpy(starts) if len(starts) else None

    def __call__(self) -> Batch:
        if self.starts is not None:
            starts = self.starts[torch.randint(len(self.starts), (self.batch_size,), generator=self.generator)]
        else:
            starts = torch.randint(len(self.tokens) - self.block_size - 1, (self.batch_size,), generator=self.generator)
        windows = np.stack([self.tokens[s : s + self.block_size + 1] for s in starts.tolist()])
        windows = torch.from_numpy(windows.astype(np.int64))
        labels = windows[:, 1:]
        if self.mask is not None:
            keep = np.stack([self.mask[s + 1 : s + self.block_size + 1] for s in starts.tolist()])
            labels = labels.masked_fill(torch.from_numpy(keep == 0), -100)
        return {"input_ids": windows[:, :-1], "labels": labels}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
