"""Pack documents into one token stream (documents separated by EOS) and sample blocks.

nanoGPT's recipe: the corpus is one array; a batch is `batch_size` random windows of
`block_size + 1` tokens. The sampler is seeded, so a run draws the same batches every time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np
import torch
from tokenizers import Tokenizer


def pack(texts: Iterable[str], tokenizer: Tokenizer, eos_id: int, seed: int) -> np.ndarray:
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(encoding.ids)
        ids.append(eos_id)
    return np.asarray(ids, dtype=np.int32)


class BlockSampler:
    """Draws (inputs, targets) batches of random windows from a packed token stream."""

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, seed: int):
        if len(tokens) <= block_size + 1:
            raise ValueError(f"only {len(tokens)} tokens: need more than block_size + 1 = {block_size + 1}")
        self.tokens = torch.from_numpy(tokens.astype(np.int64))
        self.block_size, self.batch_size = block_size, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(self.tokens) - self.block_size - 1, (self.batch_size,), generator=self.generator)
        windows = torch.stack([self.tokens[s : s + self.block_size + 1] for s in starts.tolist()])
        return windows[:, :-1], windows[:, 1:]
