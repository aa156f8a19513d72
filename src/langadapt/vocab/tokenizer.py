"""Train tokenizers with HF `tokenizers`: byte-level BPE, byte-level Unigram, or bytes only.

All three share one 256-symbol byte alphabet across every script, so any text round-trips
and a tokenizer trained on one language can be extended with tokens learned on another. The
`bytes` kind has the 256 byte tokens and the specials and no merges (MonoByte-style models).
Multilingual tokenizers see their languages through temperature sampling (`balance`), so a
large language does not take over the vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from langadapt.atomic import write_text
from langadapt.corpus.document import slices
from langadapt.data.mixing import mixture_probabilities
from langadapt.errors import LangadaptError

EOS = "<|endoftext|>"  # the end-of-text token of the tokenizers trained here
# End-of-text tokens of real bases: GPT-2 / Qwen2 / SmolLM2, Llama-3, Llama-2 / Mistral, Gemma
END_OF_TEXT = (EOS, "<|end_of_text|>", "</s>", "<eos>")
KINDS = ("bpe", "unigram", "bytes")


def _byte_level(model) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _train(model, trainer_class, texts: Iterable[str], vocab_size: int, special_tokens: list[str]) -> Tokenizer:
    tokenizer = _byte_level(model)
    trainer = trainer_class(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    pieces = (piece for text in texts for _, piece in slices(text))  # a 50 MB line costs what 50 MB of lines do
    tokenizer.train_from_iterator(pieces, trainer=trainer)
    return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: list[str] | None = None) -> Tokenizer:
    """Byte-level BPE; `special_tokens` (default: the end-of-text token) take the first ids."""
    return _train(models.BPE(), trainers.BpeTrainer, texts, vocab_size, special_tokens or [EOS])


def train_unigram(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Unigram LM over byte-level symbols: every byte stays in the vocabulary, so no `<unk>`."""
    return _train(models.Unigram(), trainers.UnigramTrainer, texts, vocab_size, [EOS])


def byte_tokenizer() -> Tokenizer:
    """EOS (id 0) and the 256 byte symbols, no merges: every text is its UTF-8 bytes."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {EOS: 0, **{symbol: i + 1 for i, symbol in enumerate(alphabet)}}
    tokenizer = _byte_level(models.BPE(vocab=vocab, merges=[]))
    tokenizer.add_special_tokens([EOS])
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int, kind: str = "bpe") -> Tokenizer:
    """One entry point for the config's `vocab.tokenizer` switch (`vocab_size` is unused for `bytes`)."""
    if kind == "bytes":
        return byte_tokenizer()
    return {"bpe": train_bpe, "unigram": train_unigram}[kind](texts, vocab_size)


def balance(texts: dict[str, list[str]], alpha: float, seed: int) -> list[str]:
    """Resample languages to shares proportional to (bytes of the language) ** alpha.

    alpha = 1 keeps the natural mix, alpha = 0 gives every language the same share, values
    in between (0.3 is XLM-R's choice) upsample small languages. The total size is kept;
    a language is repeated when its share is larger than its text.
    """
    sizes = {lang: sum(len(t.encode("utf-8")) for t in items) for lang, items in texts.items() if items}
    shares = mixture_probabilities(sizes, sizes, alpha)
    total_bytes = sum(sizes.values())
    rng = random.Random(seed)
    out: list[str] = []
    for lang in sizes:
        budget = total_bytes * shares[lang]
        pool = list(texts[lang])
        rng.shuffle(pool)
        taken, i = 0, 0
        while taken < budget:
            out.append(pool[i % len(pool)])
            taken += len(out[-1].encode("utf-8"))
            i += 1
    rng.shuffle(out)
    return out


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> Path:
    return write_text(Path(path), tokenizer.to_str(pretty=True))


def load_tokenizer(path: Path) -> Tokenizer:
    """A `tokenizer.json`, or the tokenizer inside a `.gguf` model file (as transformers reads it)."""
    path = Path(path)
    if path.suffix != ".gguf":
        return Tokenizer.from_file(str(path))
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).backend_tokenizer
    except ImportError as err:
        raise LangadaptError(f"reading the tokenizer of {path} needs the gguf package ({err})", where=str(path),
                             fix="pip install 'langadapt[gguf]'") from None


def end_of_text(tokenizer: Tokenizer, eos_token_id: int | list[int] | None = None) -> int:
    """The id that ends a document (packing, bits per byte, generation).

    The tokenizer's end-of-text token by its known names comes first, the model config's
    `eos_token_id` second: an instruct model's config names the end of a chat turn
    (`<|im_end|>`), while its pretraining documents ended with end-of-text."""
    for name in END_OF_TEXT:
        if (token_id := tokenizer.token_to_id(name)) is not None:
            return token_id
    first = eos_token_id[0] if isinstance(eos_token_id, list) and eos_token_id else eos_token_id
    if isinstance(first, int) and 0 <= first < tokenizer.get_vocab_size():
        return first
    raise LangadaptError(f"the tokenizer has no end-of-text token (none of {', '.join(END_OF_TEXT)}) and the "
                         "model config names no eos_token_id", fix="use a tokenizer with an end-of-text token, "
                         "or set eos_token_id in the model folder's config.json.")


def as_transformers(tokenizer: Tokenizer, like: PreTrainedTokenizerBase | None = None) -> PreTrainedTokenizerFast:
    """Wrap for `save_pretrained`, so a model folder loads with stock `AutoTokenizer`.

    `like`, the base model's own tokenizer, lends its special-token roles and chat template,
    so an adapted folder chats like its base; without it the end-of-text token is eos and bos."""
    if like is not None:
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, chat_template=like.chat_template,
                                       **like.special_tokens_map)
    eos = tokenizer.id_to_token(end_of_text(tokenizer))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos, bos_token=eos, unk_token=None)
