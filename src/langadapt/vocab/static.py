"""Static token vectors trained locally on the user's text (gensim fastText), for FOCUS and OFA.

The text is cut by the *expanded* tokenizer, so old and new tokens share one vector space and
an old token's vector says how it is used in the target text. fastText's character n-grams
(over the token strings) give a vector to every token, also to those the text never shows;
`counts` says which tokens the text actually holds. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from langadapt.errors import LangadaptError


@dataclass
class StaticVectors:
    vectors: torch.Tensor  # (expanded vocab, dim), row i = token id i
    counts: torch.Tensor  # (expanded vocab,) occurrences of each token in the training text


def token_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


def train_static(tokenizer: Tokenizer, texts: list[str], dim: int = 64, epochs: int | None = None,
                 seed: int = 0) -> StaticVectors:
    """Skip-gram fastText over token strings; one worker, so the vectors depend on `seed` only.

    By default the epochs are chosen so training sees about a million tokens (5 to 50 passes):
    on a small target text a few passes leave every vector near one common direction. The
    returned vectors are centred (their mean over the tokens the text holds is removed), which
    makes cosine similarity reflect use rather than that shared direction.
    """
    try:
        from gensim.models import FastText
    except ImportError:
        raise LangadaptError("the focus and ofa initialisers need gensim for static token vectors",
                             fix="pip install 'langadapt[vocab]'") from None

    ids = token_ids(tokenizer, texts)
    n_tokens = sum(len(seq) for seq in ids)
    epochs = epochs or min(50, max(5, 1_000_000 // max(n_tokens, 1)))
    names = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    model = FastText(vector_size=dim, window=5, min_count=1, sg=1, negative=5, min_n=2, max_n=4,
                     bucket=1 << 17, epochs=epochs, workers=1, seed=seed)
    sentences = [[names[i] for i in seq] for seq in ids if seq]
    model.build_vocab(corpus_iterable=sentences)
    model.train(corpus_iterable=sentences, total_examples=len(sentences), epochs=epochs)
    vectors = torch.from_numpy(np.stack([model.wv[name] for name in names])).float()
    counts = torch.bincount(torch.tensor([i for seq in ids for i in seq], dtype=torch.long),
                            minlength=len(names))
    return StaticVectors(vectors - vectors[counts > 0].mean(dim=0), counts)
