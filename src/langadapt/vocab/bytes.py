"""A byte-level tokenizer: the 256 bytes and EOS, no merges (MonoByte-style, tokenizer-free).

No text is ever out of vocabulary, and no tokenizer is trained: every language gets the same
units, at the cost of longer sequences.
"""

from __future__ import annotations

from tokenizers import Tokenizer

from langadapt.vocab.train import train_bpe

BYTES = 256


def byte_tokenizer() -> Tokenizer:
    """Byte-level BPE with no merges: ids are EOS (0) and one id per byte."""
    return train_bpe([], BYTES + 1)
