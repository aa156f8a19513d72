"""Vocabulary expansion by extending the base tokenizer's own model (BPE merges, Unigram pieces).

New tokens are real model tokens, never "added tokens" that bypass the pre-tokenizer, so the
base's normaliser, pre-tokenizer and decoder still apply and `decode(encode(x)) == x` holds
wherever it held for the base. Two ways to choose them (`vocab.expansion`):

- `continued` (the default): continue BPE on the base's *own* segmentation. The target text is
  normalised and pre-tokenized by the base, each word is cut by the base model, and greedy pair
  merges over those base tokens are appended in order after the base's merges. A merge joins
  two tokens the base actually produces next to each other, so every new token is reachable.
  BPE bases (byte-level like GPT-2 / SmolLM2 / Llama-3, or SentencePiece-style with `▁` and byte
  fallback like Llama-2 / Mistral) get merges; a character the base only spells in fallback bytes
  (or `<unk>`) first joins the vocabulary as a token of its own. Unigram bases get the merged
  tokens as pieces scored just above the two pieces they join, so Viterbi prefers them wherever
  the base chose that pair.
- `target-merges`: append the merges of a separately trained target tokenizer (the earlier
  method, kept for comparison). They often join pieces the base never produces, and then they
  rarely fire on a large base.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import Tokenizer

from langadapt.errors import LangadaptError
from langadapt.vocab.merges import learn_merges

SUPPORTED = {"BPE": "byte-level, or SentencePiece-style with ▁ and byte fallback", "Unigram": "SentencePiece-style"}
UNIGRAM_MARGIN = 1.0  # a merged piece scores this much above the two pieces it replaces
BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
DIGIT = re.compile(r"\d")
WORD_START = re.compile(r"(?<=[^▁])(?=▁)")  # SentencePiece words begin at each run of ▁


@dataclass
class Expansion:
    """The tokenizer a model moves to, and what its embedding rows are made of.

    Extend (`rows` is None): the old ids keep their rows and new token i gets id
    `first_new_id + i`. Replace: `rows[j]` says where id j of the new tokenizer takes its row
    from: an old id (the base has the same token), or `first_new_id + i` for new token i, in
    the old matrix grown by the new rows (`vocab.init.initialise` builds it that way).
    """

    tokenizer: Tokenizer
    new_tokens: list[str]  # in order of their new rows, starting at row `first_new_id`
    first_new_id: int  # the old vocabulary size (embedding rows)
    pieces: list[list[int]]  # for each new token, the ids the *old* tokenizer splits it into
    rows: list[int] | None = None  # replace: the old-or-new row of every id of `tokenizer`

    @property
    def new_ids(self) -> list[int]:
        """The ids, in `tokenizer`, of the tokens whose rows are new (to train, to report)."""
        if self.rows is None:
            return list(range(self.first_new_id, self.first_new_id + len(self.new_tokens)))
        return [i for i, row in enumerate(self.rows) if row >= self.first_new_id]


def _spec(tokenizer: Tokenizer) -> dict:
    return json.loads(tokenizer.to_str())


def _next_id(spec: dict) -> int:
    model = spec["model"]
    ids = model["vocab"].values() if isinstance(model["vocab"], dict) else range(len(model["vocab"]))
    return max([*ids, *(t["id"] for t in spec.get("added_tokens", []))]) + 1


def _finish(base: Tokenizer, spec: dict, new_tokens: list[str], first_new_id: int) -> Expansion:
    pieces = [[piece.id for piece in base.model.tokenize(token)] for token in new_tokens]
    return Expansion(Tokenizer.from_str(json.dumps(spec)), new_tokens, first_new_id, pieces)


def check_supported(base: Tokenizer) -> str:
    """The base's model type, or a LangadaptError naming it and the supported ones."""
    model = _spec(base)["model"]
    kind = model["type"]
    supported = ", ".join(f"{name} ({what})" for name, what in SUPPORTED.items())
    if kind not in SUPPORTED:
        raise LangadaptError(f"cannot expand a {kind} tokenizer: vocabulary expansion supports {supported}",
                             where="vocab.expansion",
                             fix="use a base model with a BPE or Unigram tokenizer, or vocab.mode: replace "
                                 "to train a new tokenizer for it.")
    affixes = [model.get("continuing_subword_prefix"), model.get("end_of_word_suffix")]
    if any(affixes):
        raise LangadaptError("cannot expand a BPE tokenizer with a continuing-subword prefix or end-of-word "
                             f"suffix {affixes}", where="vocab.expansion", fix=f"expansion supports {supported}.")
    return kind


def base_words(base: Tokenizer, texts: Iterable[str]) -> Counter:
    """Each distinct pre-tokenized word of `texts` (as the base's model sees it) and its count.

    SentencePiece-style tokenizers hand the model a whole line; it is cut before each `▁`, since
    SentencePiece pieces never run across a word start.
    """
    words: Counter = Counter()
    for text in texts:
        if base.normalizer is not None:
            text = base.normalizer.normalize_str(text)
        chunks = [piece for piece, _ in base.pre_tokenizer.pre_tokenize_str(text)] if base.pre_tokenizer else [text]
        for chunk in chunks:
            words.update(WORD_START.split(chunk))
    words.pop("", None)
    return words


def _fallback_chars(word: str, tokens, unk: str | None) -> list[tuple[str | None, bool]]:
    """The base's tokens of `word` as (symbol, missing): a run of fallback byte tokens (or an
    `<unk>`) becomes the characters it spells, flagged as missing from the vocabulary."""
    out: list[tuple[str | None, bool]] = []
    pending = bytearray()
    raw = word.encode("utf-8")
    for token in tokens:
        byte = BYTE_TOKEN.fullmatch(token.value)
        if byte:
            pending.append(int(byte.group(1), 16))
            continue
        if pending:
            out += [(c, True) for c in pending.decode("utf-8", errors="replace")]
            pending.clear()
        if unk is not None and token.value == unk:
            out += [(c, True) for c in raw[token.offsets[0]:token.offsets[1]].decode("utf-8", errors="replace")]
        else:
            out.append((token.value, False))
    if pending:
        out += [(c, True) for c in pending.decode("utf-8", errors="replace")]
    return [(None, True) if symbol == "\ufffd" else (symbol, missing) for symbol, missing in out]


def _unk_piece(model: dict) -> str | None:
    if model["type"] == "Unigram":
        return model["vocab"][model["unk_id"]][0] if model.get("unk_id") is not None else None
    return model.get("unk_token")


def learn_continued(base: Tokenizer, texts: Iterable[str], max_new_tokens: int,
                    min_pair_frequency: int = 2) -> tuple[list[str], list[tuple[str, str]], str, int]:
    """(missing characters to add, merges to append, why learning stopped, count of the last pair)
    for up to `max_new_tokens` new tokens on the base's own segmentation of `texts`."""
    model = _spec(base)["model"]
    kind = check_supported(base)
    vocab = set(model["vocab"]) if kind == "BPE" else {piece for piece, _ in model["vocab"]}
    unk = _unk_piece(model)
    words = base_words(base, texts)
    segmented = {word: _fallback_chars(word, base.model.tokenize(word), unk) for word in words}
    missing: Counter = Counter()
    for word, symbols in segmented.items():
        missing.update({symbol: words[word] for symbol, gap in symbols if gap and symbol is not None})
    chars = [c for c, n in missing.most_common() if n >= min_pair_frequency][:max_new_tokens]
    added = set(chars)
    units: Counter = Counter()
    for word, symbols in segmented.items():
        units[tuple(s if not gap or s in added else None for s, gap in symbols)] += words[word]
    known = vocab | added

    def allowed(token: str) -> bool:
        # Numbers are no language's own: a merged digit would change every language's segmentation
        # of numbers. A Unigram piece the base has cannot be made to win without changing its score.
        return not DIGIT.search(token) and (kind == "BPE" or token not in vocab)

    learned = learn_merges(units, max_new_tokens - len(chars), min_pair_frequency, known.__contains__, allowed)
    return chars, learned.merges, learned.stopped, learned.last_count


def expand_continued(base: Tokenizer, texts: Iterable[str], max_new_tokens: int,
                     min_pair_frequency: int = 2, strict: bool = True) -> Expansion:
    """Continued BPE on the base's own segmentation: up to `max_new_tokens` real model tokens;
    fewer learnable is an error unless not `strict` (a size sweep asks for the most it can get)."""
    texts = list(texts)
    chars, merges, stopped, last = learn_continued(base, texts, max_new_tokens, min_pair_frequency)
    spec = _spec(base)
    model = spec["model"]
    first_new_id = _next_id(spec)
    new_tokens = list(chars)
    if model["type"] == "BPE":
        vocab: dict[str, int] = model["vocab"]
        as_strings = bool(model["merges"]) and isinstance(model["merges"][0], str)
        made = set(new_tokens)
        for left, right in merges:
            if left + right not in vocab and left + right not in made:
                new_tokens.append(left + right)
                made.add(left + right)
            model["merges"].append(f"{left} {right}" if as_strings else [left, right])
        vocab.update({token: first_new_id + i for i, token in enumerate(new_tokens)})
    else:
        scores = dict(model["vocab"])
        floor = min(scores.values())
        scores.update(dict.fromkeys(chars, floor))  # above the <unk> penalty, so a char beats fallback bytes
        for left, right in merges:
            if left + right not in scores:
                scores[left + right] = scores[left] + scores[right] + UNIGRAM_MARGIN
                new_tokens.append(left + right)
        model["vocab"] += [[token, scores[token]] for token in new_tokens]
    if strict and len(new_tokens) < max_new_tokens:
        raise too_few(len(new_tokens), max_new_tokens, min_pair_frequency, stopped, last, sum(map(len, texts)))
    return _finish(base, spec, new_tokens, first_new_id)


def too_few(learned: int, wanted: int, min_pair_frequency: int, stopped: str, last: int,
            n_chars: int) -> LangadaptError:
    why = (f"no remaining pair of adjacent tokens occurs {min_pair_frequency} or more times"
           if stopped == "min_pair_frequency" else "every word of it is already a single token")
    return LangadaptError(
        f"the target text ({n_chars:,} characters) yields only {learned} of the {wanted} new tokens asked "
        f"for: {why} (the last token learned joined a pair seen {last} times)",
        where="vocab.max_new_tokens",
        fix=f"set vocab.max_new_tokens: {learned} or lower, lower vocab.min_pair_frequency "
            f"(now {min_pair_frequency}), or add target-language text.")


def _as_pair(merge) -> tuple[str, str]:
    return tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1))


def expand_bpe(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """`target-merges`: add up to `max_new_tokens` of `target`'s merged tokens that `base` lacks."""
    spec = _spec(base)
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges: list = spec["model"]["merges"]
    first_new_id = _next_id(spec)
    new_tokens: list[str] = []
    for merge in _spec(target)["model"]["merges"]:
        if len(new_tokens) >= max_new_tokens:
            break
        left, right = _as_pair(merge)
        token = left + right
        if token in vocab or left not in vocab or right not in vocab:
            continue
        vocab[token] = first_new_id + len(new_tokens)
        merges.append([left, right])
        new_tokens.append(token)
    return _finish(base, spec, new_tokens, first_new_id)


def expand_unigram(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """`target-merges` for Unigram: add up to `max_new_tokens` of `target`'s most probable pieces."""
    spec = _spec(base)
    pieces_scores: list = spec["model"]["vocab"]
    known = {piece for piece, _ in pieces_scores}
    first_new_id = len(pieces_scores)
    candidates = sorted(_spec(target)["model"]["vocab"], key=lambda item: -item[1])
    new = [[piece, score] for piece, score in candidates if piece not in known][:max_new_tokens]
    pieces_scores.extend(new)
    return _finish(base, spec, [piece for piece, _ in new], first_new_id)


EXPANDERS = {"BPE": expand_bpe, "Unigram": expand_unigram}


def expand(base: Tokenizer, target: Tokenizer, max_new_tokens: int) -> Expansion:
    """`target-merges`: expand `base` with tokens of `target`; both must be of the same model type."""
    kinds = [_spec(t)["model"]["type"] for t in (base, target)]
    if kinds[0] != kinds[1] or kinds[0] not in EXPANDERS:
        raise LangadaptError(f"cannot expand a {kinds[0]} tokenizer with a {kinds[1]} one",
                             fix="train the source and target tokenizers with the same `vocab.tokenizer` kind.")
    return EXPANDERS[kinds[0]](base, target, max_new_tokens)


def _byte_level(tokenizer: Tokenizer) -> bool:
    return '"ByteLevel"' in json.dumps(_spec(tokenizer).get("pre_tokenizer"))


def replace_tokenizer(base: Tokenizer, new: Tokenizer) -> Expansion:
    """`vocab.mode: replace`: move from `base` to `new`, keeping the old row of every token
    `new` shares with `base` (same string; FOCUS's overlap) and a new row for each other one.

    A new token's pieces are the base's cut of it: of its byte-level string when both are
    byte-level, otherwise of the text it decodes to.
    """
    old = base.get_vocab(with_added_tokens=True)
    n_old = _next_id(_spec(base))
    same_alphabet = _byte_level(base) and _byte_level(new)
    rows, new_tokens, pieces = [], [], []
    for token_id in range(new.get_vocab_size(with_added_tokens=True)):
        token = new.id_to_token(token_id)
        if token in old:
            rows.append(old[token])
            continue
        rows.append(n_old + len(new_tokens))
        new_tokens.append(token)
        pieces.append([t.id for t in base.model.tokenize(token)] if same_alphabet else
                      base.encode(new.decode([token_id], skip_special_tokens=False), add_special_tokens=False).ids)
    return Expansion(new, new_tokens, n_old, pieces, rows)
