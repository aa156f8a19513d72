"""Static token vectors for FOCUS and OFA: trained locally on the user's text (gensim fastText),
or read from a word2vec / fastText file the user has (`vocab.static_vectors`). Nothing is
downloaded.

Trained vectors: the text is cut by the *expanded* tokenizer, so old and new tokens share one
vector space and an old token's vector says how it is used in the target text. fastText's
character n-grams (over the token strings) give a vector to every token, also to those the text
never shows. Read vectors: each token is looked up by the word it stands for (`vector_keys`).
Either way `counts` says which tokens the target text actually holds, and `known` which tokens
have a vector at all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from langadapt.errors import LangadaptError

FORMATS = {".vec": "word2vec text", ".txt": "word2vec text", ".bin": "word2vec binary or fastText model"}
FASTTEXT_MAGIC = 793712314  # first int32 of a fastText .bin model (fastText's FILEFORMAT_MAGIC_INT32)
MIN_COVERAGE = 0.05  # the share of old and of new tokens read vectors must cover (catches a wrong language)


@dataclass
class StaticVectors:
    vectors: torch.Tensor  # (expanded vocab, dim), row i = token id i
    counts: torch.Tensor  # (expanded vocab,) occurrences of each token in the target text
    known: torch.Tensor | None = None  # (expanded vocab,) bool: the token has a vector; None: all have

    def __post_init__(self):
        if self.known is None:
            self.known = torch.ones(len(self.vectors), dtype=torch.bool)

    def by_row(self, rows: list[int], size: int) -> StaticVectors:
        """The vectors re-indexed by embedding row, id j at row `rows[j]` (`vocab.mode: replace`);
        a row no id points at (an old token the new tokenizer lacks) has no vector."""
        index = torch.tensor(rows)
        vectors = torch.zeros(size, self.vectors.shape[1], dtype=self.vectors.dtype)
        counts = torch.zeros(size, dtype=self.counts.dtype)
        known = torch.zeros(size, dtype=torch.bool)
        vectors[index], counts[index], known[index] = self.vectors, self.counts, self.known
        return StaticVectors(vectors, counts, known)


def token_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


def _counts(ids: list[list[int]], size: int) -> torch.Tensor:
    return torch.bincount(torch.tensor([i for seq in ids for i in seq], dtype=torch.long), minlength=size)


def _gensim():
    try:
        import gensim.models
    except ImportError:
        raise LangadaptError("the focus and ofa initialisers need gensim for static token vectors",
                             fix="pip install 'langadapt[vocab]'") from None
    return gensim.models


def train_static(tokenizer: Tokenizer, texts: list[str], dim: int = 64, epochs: int | None = None,
                 seed: int = 0) -> StaticVectors:
    """Skip-gram fastText over token strings; one worker, so the vectors depend on `seed` only.

    By default the epochs are chosen so training sees about a million tokens (5 to 50 passes):
    on a small target text a few passes leave every vector near one common direction. The
    returned vectors are centred (their mean over the tokens the text holds is removed), which
    makes cosine similarity reflect use rather than that shared direction.
    """
    models = _gensim()
    ids = token_ids(tokenizer, texts)
    n_tokens = sum(len(seq) for seq in ids)
    epochs = epochs or min(50, max(5, 1_000_000 // max(n_tokens, 1)))
    names = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    model = models.FastText(vector_size=dim, window=5, min_count=1, sg=1, negative=5, min_n=2, max_n=4,
                            bucket=1 << 17, epochs=epochs, workers=1, seed=seed)
    sentences = [[names[i] for i in seq] for seq in ids if seq]
    model.build_vocab(corpus_iterable=sentences)
    model.train(corpus_iterable=sentences, total_examples=len(sentences), epochs=epochs)
    vectors = torch.from_numpy(np.stack([model.wv[name] for name in names])).float()
    counts = _counts(ids, len(names))
    return StaticVectors(vectors - vectors[counts > 0].mean(dim=0), counts)


def vector_keys(tokenizer: Tokenizer) -> list[str | None]:
    """The word each token stands for, as word-vector files key words; None where there is none.

    A token is decoded by the tokenizer's own decoder, which maps the byte-level alphabet back
    to text (`Ġhouse` → " house", `Äĩ` → "ć") and drops special tokens. The leading space that
    marks a word start (byte-level `Ġ`, SentencePiece `▁`) is stripped, since vector files key
    words without it: the word-initial `Ġhouse` and the word-internal `house` share the vector
    of "house". A token that is only part of a UTF-8 character (decodes to U+FFFD), whitespace
    and special tokens have no key.
    """
    texts = tokenizer.decode_batch([[i] for i in range(tokenizer.get_vocab_size())])
    return [text.strip() if text.strip() and "\ufffd" not in text else None for text in texts]


def read_vectors(path: Path):
    """gensim KeyedVectors from a word2vec text (.vec/.txt) or binary (.bin) file, or a fastText
    .bin model (told apart by its magic number); a fastText model also answers words it never
    saw, from their character n-grams."""
    path = Path(path)
    where = f"vocab.static_vectors: {path}"
    if not path.is_file():
        raise LangadaptError(f"no static vectors file at {path}", where=where,
                             fix="give the path of a word2vec .vec/.txt/.bin file or a fastText .bin model.")
    if path.suffix.lower() not in FORMATS:
        raise LangadaptError(f"unknown static vectors format {path.suffix!r}", where=where,
                             fix=f"use one of: {', '.join(f'{s} ({f})' for s, f in FORMATS.items())}.")
    models = _gensim()
    binary = path.suffix.lower() == ".bin"
    with open(path, "rb") as file:
        fasttext = binary and file.read(4) == struct.pack("<i", FASTTEXT_MAGIC)
    try:
        if fasttext:
            return models.fasttext.load_facebook_vectors(str(path))
        return models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except (ValueError, UnicodeDecodeError, EOFError, struct.error, IndexError, KeyError) as err:
        kind = "fastText model" if fasttext else f"word2vec {'binary' if binary else 'text'} file"
        raise LangadaptError(f"cannot read {path} as a {kind}: {err}", where=where,
                             fix="write the vectors with gensim's save_word2vec_format or fastText's "
                                 "-saveOutput/.bin, with the 'count dim' header line.") from None


def _lookup(vectors, key: str | None) -> np.ndarray | None:
    """The vector of `key` (or of its lower-case form); fastText models answer any key that has
    character n-grams (a zero vector means it has none)."""
    if key is None:
        return None
    for candidate in (key, key.lower()):
        if candidate in vectors.key_to_index or getattr(vectors, "bucket", 0):
            vector = vectors[candidate]
            return vector if np.any(vector) else None
    return None


def load_static(tokenizer: Tokenizer, path: Path, texts: list[str], n_old: int,
                dim: int | None = None) -> StaticVectors:
    """Token vectors read from `path` (`read_vectors`), keyed by `vector_keys`, as given (not centred).

    `n_old` is the first new token id; at least MIN_COVERAGE of the old and of the new tokens
    must find a vector. `dim`, when given, must be the file's dimension.
    """
    vectors = read_vectors(path)
    where = f"vocab.static_vectors: {path}"
    if dim is not None and vectors.vector_size != dim:
        raise LangadaptError(f"the vectors in {path} have {vectors.vector_size} dimensions, not "
                             f"vocab.static_dim = {dim}", where=where,
                             fix=f"set vocab.static_dim: {vectors.vector_size}, or leave it out with static_vectors.")
    found = [_lookup(vectors, key) for key in vector_keys(tokenizer)]
    known = torch.tensor([v is not None for v in found], dtype=torch.bool)
    shares = {part: known[rows].float().mean().item() if len(known[rows]) else 0.0
              for part, rows in (("old", slice(0, n_old)), ("new", slice(n_old, None)))}
    if min(shares.values()) < MIN_COVERAGE:
        raise LangadaptError(f"the vectors in {path} cover {shares['old']:.1%} of the old tokens and "
                             f"{shares['new']:.1%} of the new ones; {MIN_COVERAGE:.0%} of each is needed",
                             where=where, fix="use vectors of the target language (a fastText .bin model "
                                              "covers subword tokens too), or leave static_vectors out to "
                                              "train vectors on the target text.")
    table = torch.zeros(len(found), vectors.vector_size)
    table[known] = torch.from_numpy(np.stack([v for v in found if v is not None])).float()
    return StaticVectors(table, _counts(token_ids(tokenizer, texts), len(found)), known)
