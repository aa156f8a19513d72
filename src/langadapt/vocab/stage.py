"""The vocab stage as one function over texts and a folder: train, expand, measure, and the
context the initialisers need. The experiment pipeline and `langadapt vocab` both call it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from langadapt.atomic import write_json
from langadapt.config import VocabConfig
from langadapt.vocab.expand import Expansion, expand
from langadapt.vocab.init import NEEDS
from langadapt.vocab.metrics import measure, parity
from langadapt.vocab.static import load_static, token_ids, train_static
from langadapt.vocab.train import balance, save_tokenizer, train_tokenizer


@dataclass
class Vocab:
    source: Tokenizer
    target: Tokenizer
    expansion: Expansion


def build_vocab(cfg: VocabConfig, train_texts: dict[str, list[str]], source: list[str], target: str,
                out: Path, seed: int, base: Tokenizer | None = None, target_tok: Tokenizer | None = None) -> Vocab:
    """Train the source and target tokenizers (unless given: `base`, `target_tok`), expand, save to `out`."""
    if base is None:
        mixed = balance({lang: train_texts[lang] for lang in source}, cfg.alpha, seed)
        base = train_tokenizer(mixed, cfg.source_vocab_size, cfg.tokenizer)
    if target_tok is None:
        target_tok = train_tokenizer(train_texts[target], cfg.target_vocab_size, cfg.tokenizer)
    expansion = expand(base, target_tok, cfg.max_new_tokens)
    save_tokenizer(base, out / "source" / "tokenizer.json")
    save_tokenizer(target_tok, out / "target" / "tokenizer.json")
    save_tokenizer(expansion.tokenizer, out / "expanded" / "tokenizer.json")
    first, n_new = expansion.first_new_id, len(expansion.new_tokens)
    write_json(out / "expansion.json", {
        "tokenizer": cfg.tokenizer,
        "source_vocab_size": base.get_vocab_size(),
        "target_vocab_size": target_tok.get_vocab_size(),
        "new_tokens": n_new,
        "first_new_id": first,
        "examples": [expansion.tokenizer.decode([i]) for i in range(first, first + min(20, n_new))],
    })
    return Vocab(base, target_tok, expansion)


def tokenizer_metrics(tokenizers: dict[str, Tokenizer], texts: dict[str, dict[str, str]], pivot: str) -> list[dict]:
    """One row per (tokenizer, language, metric); `texts[lang]` maps document id to text, and
    parity is taken on the ids a language shares with `pivot` (parallel held-out text)."""
    rows = []
    for name, tokenizer in tokenizers.items():
        for lang, by_id in texts.items():
            values = measure(tokenizer, list(by_id.values())).as_dict()
            shared = [i for i in by_id if i in texts[pivot]]
            if shared:
                values["parity"] = parity(tokenizer, [by_id[i] for i in shared], [texts[pivot][i] for i in shared])
            rows += [{"tokenizer": name, "language": lang, "metric": metric, "value": float(value)}
                     for metric, value in values.items() if metric != "unit"]
    return rows


def init_context(cfg: VocabConfig, expansion: Expansion, target_texts: list[str], methods: list[str],
                 seed: int) -> dict:
    """The optional InitContext fields that `methods` read, computed once for all of them."""
    needs = {need for method in methods for need in NEEDS[method]}
    context: dict = {"rank": cfg.ofa_rank}
    if "static" in needs and cfg.static_vectors is not None:
        dim = cfg.static_dim if "static_dim" in cfg.model_fields_set else None  # checked only when set
        context["static"] = load_static(expansion.tokenizer, cfg.static_vectors, target_texts,
                                        expansion.first_new_id, dim)
    elif "static" in needs:
        context["static"] = train_static(expansion.tokenizer, target_texts, cfg.static_dim, seed=seed)
    if "target_ids" in needs:
        context["target_ids"] = token_ids(expansion.tokenizer, target_texts)
    return context


def load_expansion(folder: Path) -> Expansion:
    """The expansion `build_vocab` saved in `folder`: the new tokens are the expanded tokenizer's
    ids from `first_new_id` on, each cut into pieces by the source tokenizer."""
    import json

    source = Tokenizer.from_file(str(folder / "source" / "tokenizer.json"))
    expanded = Tokenizer.from_file(str(folder / "expanded" / "tokenizer.json"))
    saved = json.loads((folder / "expansion.json").read_text(encoding="utf-8"))
    first = saved["first_new_id"]
    new_tokens = [expanded.id_to_token(i) for i in range(first, first + saved["new_tokens"])]
    pieces = [[piece.id for piece in source.model.tokenize(token)] for token in new_tokens]
    return Expansion(expanded, new_tokens, first, pieces)
