"""The vocab stage as one function over texts and a folder: train, expand, measure, and the
context the initialisers need. The experiment pipeline and `langadapt vocab` both call it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from langadapt.atomic import write_json
from langadapt.errors import LangadaptError
from langadapt.registry import NEEDS
from langadapt.vocab.config import VocabConfig
from langadapt.vocab.expand import Expansion, expand, expand_continued, replace_tokenizer
from langadapt.vocab.metrics import expansion_metrics, measure, parity
from langadapt.vocab.static import load_static, token_ids, train_static
from langadapt.vocab.tokenizer import balance, save_tokenizer, train_tokenizer


@dataclass
class Vocab:
    source: Tokenizer
    target: Tokenizer | None  # the target-language tokenizer (`target-merges` only)
    expansion: Expansion


def bounded_sizes(sizes: Sequence[int], learnable: int) -> list[int]:
    """The candidate sizes the training text can yield (continued BPE stops at pairs seen fewer than
    `min_pair_frequency` times, so small data bounds the sweep); none is an error."""
    kept = sorted({size for size in sizes if size <= learnable})
    if not kept:
        raise LangadaptError(f"the target training text yields only {learnable} new tokens, fewer than every size in "
                             f"vocab.new_token_sizes ({', '.join(map(str, sorted(sizes)))})",
                             where="vocab.new_token_sizes",
                             fix=f"add sizes of {learnable} or fewer, lower vocab.min_pair_frequency, or add "
                                 "target-language text.")
    return kept


def build_vocab(cfg: VocabConfig, train_texts: dict[str, list[str]], source: list[str], target: str,
                out: Path, seed: int, base: Tokenizer | None = None) -> Vocab:
    """Train the source tokenizer (unless `base` is given), expand it for `target`, save to `out`.

    `continued` expansion learns on the base's own segmentation of the target text; only
    `target-merges` trains a target tokenizer. `mode: replace` trains a
    new tokenizer on source + target text instead and maps its tokens onto the base's.
    """
    if base is None:
        mixed = balance({lang: train_texts[lang] for lang in source}, cfg.alpha, seed)
        base = train_tokenizer(mixed, cfg.source_vocab_size, cfg.tokenizer)
    target_tok = None
    if cfg.mode == "replace":
        mixed = balance({lang: train_texts[lang] for lang in [*source, target]}, cfg.alpha, seed)
        new = train_tokenizer(mixed, cfg.replace_vocab_size or base.get_vocab_size(), cfg.tokenizer)
        expansion = replace_tokenizer(base, new)
    elif cfg.expansion == "continued":  # auto: the largest size swept, each smaller one learned again at `init`
        auto = cfg.max_new_tokens == "auto"
        expansion = expand_continued(base, train_texts[target], max(cfg.new_token_sizes) if auto else
                                     cfg.max_new_tokens, cfg.min_pair_frequency, strict=not auto)
    else:
        target_tok = train_tokenizer(train_texts[target], cfg.target_vocab_size, cfg.tokenizer)
        save_tokenizer(target_tok, out / "target" / "tokenizer.json")
        expansion = expand(base, target_tok, cfg.max_new_tokens)
    sizes = None
    if cfg.max_new_tokens == "auto":  # checked here, before a from-scratch base is pretrained
        sizes = bounded_sizes(cfg.new_token_sizes, len(expansion.new_tokens))
    save_tokenizer(base, out / "source" / "tokenizer.json")
    save_tokenizer(expansion.tokenizer, out / "expanded" / "tokenizer.json")
    first, n_new = expansion.first_new_id, len(expansion.new_tokens)
    write_json(out / "expansion.json", {
        "tokenizer": cfg.tokenizer,
        "mode": cfg.mode,
        "expansion": cfg.expansion if cfg.mode == "extend" else None,
        "source_vocab_size": base.get_vocab_size(),
        "target_vocab_size": target_tok.get_vocab_size() if target_tok else None,
        "new_tokens": n_new,
        "sizes": sizes,
        "first_new_id": first,
        "new_ids": expansion.new_ids if expansion.rows is not None else None,
        "examples": [expansion.tokenizer.decode([i]) for i in expansion.new_ids[:20]],
        "tokens": expansion.new_tokens, "pieces": expansion.pieces, "rows": expansion.rows,  # for load_expansion
    })
    return Vocab(base, target_tok, expansion)


def tokenizer_metrics(tokenizers: dict[str, Tokenizer], texts: dict[str, dict[str, str]], pivot: str,
                      expansion: Expansion | None = None) -> list[dict]:
    """One row per (tokenizer, language, metric); `texts[lang]` maps document id to text, and
    parity is taken on the ids a language shares with `pivot` (parallel held-out text).

    With `expansion` (whose tokenizer is one of `tokenizers`, the first being its base), the
    expanded tokenizer also gets `expansion_metrics` rows: how much of the new vocabulary the
    text uses, and how bytes per token moved against the base, in every language.
    """
    rows = []
    for name, tokenizer in tokenizers.items():
        for lang, by_id in texts.items():
            values = measure(tokenizer, list(by_id.values())).as_dict()
            shared = [i for i in by_id if i in texts[pivot]]
            if shared:
                values["parity"] = parity(tokenizer, [by_id[i] for i in shared], [texts[pivot][i] for i in shared])
            if expansion is not None and tokenizer is expansion.tokenizer:
                base = next(iter(tokenizers.values()))
                values |= expansion_metrics(base, tokenizer, expansion.new_ids, list(by_id.values()))
            rows += [{"tokenizer": name, "language": lang, "metric": metric, "value": float(value)}
                     for metric, value in values.items() if metric != "unit"]
    return rows


def init_context(cfg: VocabConfig, expansion: Expansion, target_texts: list[str], methods: list[str],
                 seed: int) -> dict:
    """The optional InitContext fields that `methods` read, computed once for all of them.

    Vectors and ids are computed on `expansion.tokenizer`; for `mode: replace` they are then
    re-indexed by embedding row (old rows, then new), the space the initialisers work in.
    """
    needs = {need for method in methods for need in NEEDS.get(method, ())}
    context: dict = {"rank": cfg.ofa_rank}
    if "static" in needs and cfg.static_vectors is not None:
        if expansion.rows is not None:
            raise LangadaptError("vocab.static_vectors cannot be read for vocab.mode: replace yet",
                                 where="vocab.static_vectors",
                                 fix="leave static_vectors out (vectors are then trained on the target text), "
                                     "or use vocab.mode: extend.")
        dim = cfg.static_dim if "static_dim" in cfg.model_fields_set else None  # checked only when set
        context["static"] = load_static(expansion.tokenizer, cfg.static_vectors, target_texts,
                                        expansion.first_new_id, dim)
    elif "static" in needs:
        context["static"] = train_static(expansion.tokenizer, target_texts, cfg.static_dim, seed=seed)
    if "target_ids" in needs:
        context["target_ids"] = token_ids(expansion.tokenizer, target_texts)
    if expansion.rows is not None:
        size = expansion.first_new_id + len(expansion.new_tokens)
        if "static" in context:
            context["static"] = context["static"].by_row(expansion.rows, size)
        if "target_ids" in context:
            context["target_ids"] = [[expansion.rows[i] for i in seq] for seq in context["target_ids"]]
    return context


def load_expansion(folder: Path) -> Expansion:
    """The expansion `build_vocab` saved in `folder` (a later stage reads it from there)."""
    saved = json.loads((folder / "expansion.json").read_text(encoding="utf-8"))
    expanded = Tokenizer.from_file(str(folder / "expanded" / "tokenizer.json"))
    return Expansion(expanded, saved["tokens"], saved["first_new_id"], saved["pieces"], saved["rows"])
