"""Train byte-level BPE tokenizers with HF `tokenizers`.

Byte-level BPE shares one 256-symbol alphabet across every script, so any text round-trips
and a tokenizer trained on one language can be extended with merges learned on another.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from langadapt.atomic import write_text

EOS = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> Path:
    return write_text(Path(path), tokenizer.to_str(pretty=True))


def load_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def as_transformers(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap for `save_pretrained`, so a model folder loads with stock `AutoTokenizer`."""
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, bos_token=EOS, unk_token=None)
