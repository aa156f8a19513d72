"""Vocabulary expansion by extending the BPE merge list.

New tokens are real BPE tokens: the target tokenizer's merges are appended (in their learned
order) to the source tokenizer's, so the model's pre-tokenizer and byte-level alphabet still
apply and `decode(encode(x)) == x` holds for any text. Appended merges rank below every
source merge, so they only fire where the source merges leave a pair unmerged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer


@dataclass
class Expansion:
    tokenizer: Tokenizer
    new_tokens: list[str]  # in id order, starting at `first_new_id`
    first_new_id: int
    pieces: list[list[int]]  # for each new token, the ids the *old* tokenizer splits it into


def _as_pair(merge) -> tuple[str, str]:
    return tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1))


def expand_bpe(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """Add up to `max_new_tokens` of `target`'s merged tokens that `base` lacks."""
    spec = json.loads(base.to_str())
    if spec["model"]["type"] != "BPE" or json.loads(target.to_str())["model"]["type"] != "BPE":
        raise ValueError("vocabulary expansion needs two BPE tokenizers")
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges: list = spec["model"]["merges"]
    first_new_id = max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))]) + 1
    new_tokens: list[str] = []
    for merge in json.loads(target.to_str())["model"]["merges"]:
        if len(new_tokens) >= max_new_tokens:
            break
        left, right = _as_pair(merge)
        token = left + right
        if token in vocab or left not in vocab or right not in vocab:
            continue
        vocab[token] = first_new_id + len(new_tokens)
        merges.append([left, right])
        new_tokens.append(token)
    pieces = [[piece.id for piece in base.model.tokenize(token)] for token in new_tokens]
    return Expansion(Tokenizer.from_str(json.dumps(spec)), new_tokens, first_new_id, pieces)
