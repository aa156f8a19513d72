"""The tokenizer part of a GGUF file: a folder's own `tokenizer.json` (the vocabulary langadapt
grew included) as llama.cpp's metadata: tokens, scores and types, merges, the pre-tokenizer's
name, special ids and the chat template."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoTokenizer, PretrainedConfig

from langadapt.errors import LangadaptError

log = logging.getLogger("langadapt")


# llama.cpp's pre-tokenizer names, by the split regex transformers' GGUF loader maps each to;
# the first name listed for a regex is llama.cpp's own spelling of it.
PREFERRED_PRE = ("llama-bpe", "qwen2", "gpt-4o", "tekken", "qwen35")


def _pre_tokenizer(spec: dict) -> str:
    """llama.cpp's `tokenizer.ggml.pre` for a byte-level tokenizer: found by its split regex in
    transformers' table (so the loader splits text the same way), else GPT-2's own split."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    text = json.dumps(spec.get("pre_tokenizer"))
    for name in (*PREFERRED_PRE, *GGUF_PRE_TOKENIZER_SPLITS):
        if name in GGUF_PRE_TOKENIZER_SPLITS and json.dumps(GGUF_PRE_TOKENIZER_SPLITS[name])[1:-1] in text:
            return name
    if '"Digits"' in text and '"individual_digits": true' in text and '"Split"' not in text:
        return "smollm"  # GPT-2's split after one digit per piece (SmolLM); transformers reads it as GPT-2's
    if '"Split"' in text:
        log.warning("gguf: the tokenizer's split regex is not one llama.cpp names; writing `default`, "
                    "which splits text as GPT-2 does")
    return "gpt2" if '"Split"' not in text else "default"


def _merge_scores(tokens: Sequence[str], merges: list[str]) -> list[float]:
    """SentencePiece-style scores for llama.cpp's `llama` tokenizer, which merges the pair with
    the highest-scoring result first: a merge's result scores -rank, so the order is the
    tokenizer's merge order; tokens no merge makes score below every merge."""
    rank = {}
    for index, merge in enumerate(merges):
        rank.setdefault(merge.replace(" ", "", 1), -float(index))
    return [rank.get(token, 0.0 if len(token) == 1 else -float(len(merges) + 1)) for token in tokens]


def _adds_space_prefix(spec: dict) -> bool:
    """Whether a SentencePiece-style tokenizer puts `▁` before the text (Llama 2, Mistral) or not (Gemma)."""
    def parts(node):
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from parts(value)
        elif isinstance(node, list):
            for value in node:
                yield from parts(value)

    steps = [*parts(spec.get("normalizer")), *parts(spec.get("pre_tokenizer"))]
    return any(step.get("type") == "Metaspace" and step.get("prepend_scheme", "always") != "never" or
               step.get("type") == "Prepend" for step in steps)


def write_tokenizer(writer, folder: Path, config: PretrainedConfig) -> None:
    """The folder's tokenizer as GGUF metadata: tokens, types, merges (and scores for
    SentencePiece-style vocabularies), special ids, BOS/EOS behaviour and the chat template."""
    from gguf import TokenType

    tokenizer = AutoTokenizer.from_pretrained(folder)
    backend = tokenizer.backend_tokenizer
    spec = json.loads(backend.to_str())
    model = spec["model"]
    if model["type"] != "BPE":
        raise LangadaptError(f"cannot write a {model['type']} tokenizer to GGUF: export supports BPE tokenizers "
                             "(byte-level, or SentencePiece-style with byte fallback)",
                             where=str(folder / "tokenizer.json"), fix="export with `--to merged` instead.")
    by_id = {index: token for token, index in backend.get_vocab(with_added_tokens=True).items()}
    if max(by_id) >= config.vocab_size:
        raise LangadaptError(f"the tokenizer has {max(by_id) + 1} tokens but the model only {config.vocab_size} rows",
                             where=str(folder), fix="resize the model's embeddings to the tokenizer.")
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(config.vocab_size)]  # rows no token uses
    added = {token["id"]: token for token in spec.get("added_tokens", [])}
    unk = model.get("unk_token")

    def kind(index: int, token: str) -> int:
        if index in added:
            return TokenType.CONTROL if added[index]["special"] else TokenType.USER_DEFINED
        if index not in by_id:
            return TokenType.UNUSED
        if token == unk:
            return TokenType.UNKNOWN
        if model.get("byte_fallback") and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            return TokenType.BYTE
        return TokenType.NORMAL

    merges = [" ".join(merge) if isinstance(merge, list) else merge for merge in model["merges"]]
    byte_level = '"ByteLevel"' in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
    writer.add_tokenizer_model("gpt2" if byte_level else "llama")
    if byte_level:
        writer.add_tokenizer_pre(_pre_tokenizer(spec))
    writer.add_token_list(tokens)
    writer.add_token_types([kind(i, token) for i, token in enumerate(tokens)])
    if not byte_level:
        writer.add_token_scores(_merge_scores(tokens, merges))
        writer.add_add_space_prefix(_adds_space_prefix(spec))
    writer.add_token_merges(merges)
    ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "unk": tokenizer.unk_token_id,
           "pad": tokenizer.pad_token_id}
    ids["bos"] = ids["bos"] if ids["bos"] is not None else config.bos_token_id
    eos = ids["eos"] if ids["eos"] is not None else config.eos_token_id
    ids["eos"] = eos[0] if isinstance(eos, list) else eos
    # a file without a padding id reloads with its config class's default (Phi-3: 32000, past a smaller vocabulary)
    ids["pad"] = next((i for i in (ids["pad"], config.pad_token_id, ids["eos"]) if i is not None), None)
    for role, index in ids.items():
        if index is not None:
            getattr(writer, f"add_{role}_token_id")(index)
    probe = tokenizer("a").input_ids
    writer.add_add_bos_token(bool(probe) and probe[0] == ids["bos"] and ids["bos"] is not None)
    writer.add_add_eos_token(bool(probe) and probe[-1] == ids["eos"] and ids["eos"] is not None)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
