"""Vocabulary expansion by extending the tokenizer's own model (BPE merges, Unigram pieces).

New tokens are real model tokens, never "added tokens" that bypass the pre-tokenizer.
BPE: the target tokenizer's merges are appended (in their learned order) to the source
tokenizer's, so the model's pre-tokenizer and byte-level alphabet still apply and
`decode(encode(x)) == x` holds for any text. Appended merges rank below every source merge,
so they only fire where the source merges leave a pair unmerged.
Unigram: the target's most probable pieces that the source lacks join the piece list with
their target log-probabilities, and Viterbi segmentation picks them wherever they score best.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer

from langadapt.errors import LangadaptError


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


def expand_unigram(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """Add up to `max_new_tokens` of `target`'s most probable pieces that `base` lacks."""
    spec = json.loads(base.to_str())
    pieces_scores: list = spec["model"]["vocab"]
    known = {piece for piece, _ in pieces_scores}
    first_new_id = len(pieces_scores)
    candidates = sorted(json.loads(target.to_str())["model"]["vocab"], key=lambda item: -item[1])
    new = [[piece, score] for piece, score in candidates if piece not in known][:max_new_tokens]
    pieces_scores.extend(new)
    new_tokens = [piece for piece, _ in new]
    pieces = [[piece.id for piece in base.model.tokenize(token)] for token in new_tokens]
    return Expansion(Tokenizer.from_str(json.dumps(spec)), new_tokens, first_new_id, pieces)


EXPANDERS = {"BPE": expand_bpe, "Unigram": expand_unigram}


def expand(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """Expand `base` with tokens of `target`; both must be of the same model type."""
    kinds = [json.loads(t.to_str())["model"]["type"] for t in (base, target)]
    if kinds[0] != kinds[1] or kinds[0] not in EXPANDERS:
        raise LangadaptError(f"cannot expand a {kinds[0]} tokenizer with a {kinds[1]} one",
                             fix="train the source and target tokenizers with the same `vocab.tokenizer` kind.")
    return EXPANDERS[kinds[0]](base, target, max_new_tokens)
