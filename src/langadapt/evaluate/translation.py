"""Translation quality through sacrebleu: chrF (the headline: robust for morphologically rich,
low-resource languages), chrF++ and BLEU, for a causal LM prompted to translate.

Each source line is put into a prompt (`{source}` marks where; a model trained by langadapt keeps
its training template and language names in its card, `prompt_for` fills them), and the model
continues greedily (or by beam search) until end-of-text, a newline or `max_new_tokens`.
Decoding is batched: prompts sorted by length, left-padded, and generated together with the KV
cache, which is what makes scoring and back-translating whole test sets affordable on CPUs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.evaluate import require
from langadapt.model.card import ModelCard

DEFAULT_PROMPT = "{source} = "


def prompt_for(card: ModelCard | None, source_lang: str | None, target_lang: str | None,
               fallback: str = DEFAULT_PROMPT) -> str:
    """The prompt (with `{source}` left in) a model was trained to translate with, for one direction:
    its card's template with both language names filled; `fallback` for a model without one or an
    unnamed direction."""
    from langadapt.data.translation import fill

    template = card.translation.get("template") if card is not None and card.translation else None
    if template is None or source_lang is None or target_lang is None:
        return fallback
    return fill(template, "{source}", source_lang, target_lang, card.translation.get("names", {}))


@cache
def _newline_ids(tokenizer_json: str) -> tuple[int, ...]:
    tokenizer = Tokenizer.from_str(tokenizer_json)
    pieces = tokenizer.decode_batch([[i] for i in range(tokenizer.get_vocab_size())], skip_special_tokens=False)
    return tuple(i for i, piece in enumerate(pieces) if "\n" in piece)


def stop_ids(tokenizer: Tokenizer, eos_id: int) -> list[int]:
    """End-of-text and every token whose text holds a newline: a translation is one line."""
    return [eos_id, *(i for i in _newline_ids(tokenizer.to_str()) if i != eos_id)]


@torch.no_grad()
def translate(
    model: PreTrainedModel, tokenizer: Tokenizer, sources: list[str], eos_id: int,
    prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 64, batch_size: int = 16, num_beams: int = 1,
) -> list[str]:
    """The model's translation of each source sentence, in order (batched greedy or beam decoding)."""
    if "{source}" not in prompt:
        raise LangadaptError(f"translation prompt {prompt!r} has no {{source}} placeholder",
                             fix="write the prompt with {source} where the sentence goes, e.g. '{source} = '.")
    context = model.config.max_position_embeddings
    device = next(model.parameters()).device
    model.eval()
    stops = stop_ids(tokenizer, eos_id)
    encoded = [[eos_id, *enc.ids][-max(1, context - max_new_tokens):]  # keep room for the answer in the context
               for enc in tokenizer.encode_batch([prompt.replace("{source}", s) for s in sources],
                                                 add_special_tokens=False)]
    order = sorted(range(len(sources)), key=lambda i: len(encoded[i]))
    hypotheses = [""] * len(sources)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.tensor([[eos_id] * (width - len(encoded[i])) + encoded[i] for i in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk], device=device)
        output = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max(1, min(max_new_tokens,
                                context - width)), do_sample=False, num_beams=num_beams, eos_token_id=stops,
                                pad_token_id=eos_id)
        for index, row in zip(chunk, output[:, width:].tolist(), strict=True):
            end = next((at for at, token in enumerate(row) if token in stops), len(row))
            text = tokenizer.decode(row[: end + 1], skip_special_tokens=True)
            hypotheses[index] = text.split("\n")[0].strip()
    return hypotheses


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus chrF, chrF++ (word bigrams too) and BLEU, sacrebleu defaults, 0–100."""
    sacrebleu = require("sacrebleu", "eval")
    if len(hypotheses) != len(references):
        raise LangadaptError(f"{len(hypotheses)} hypotheses but {len(references)} references",
                             fix="pass line-parallel source and reference files.")
    return {"chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
            "chrf++": sacrebleu.CHRF(word_order=2).corpus_score(hypotheses, [references]).score,
            "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score}


def translate_with(folder: Path, sentences: list[str], source_lang: str, target_lang: str, max_new_tokens: int = 64,
                   batch_size: int = 16, num_beams: int = 1, fallback: str = DEFAULT_PROMPT) -> list[str]:
    """Load the model folder and translate `sentences` from `source_lang` into `target_lang`,
    prompted as its card says it was trained (`fallback` for a model without a template)."""
    from langadapt.model.build import default_device, load_model
    from langadapt.model.card import read_card
    from langadapt.vocab.tokenizer import end_of_text, load_tokenizer

    folder = Path(folder)
    model, tokenizer = load_model(folder).to(default_device()), load_tokenizer(folder / "tokenizer.json")
    prompt = prompt_for(read_card(folder), source_lang, target_lang, fallback)
    return translate(model, tokenizer, sentences, end_of_text(tokenizer, model.config.eos_token_id), prompt,
                     max_new_tokens, batch_size, num_beams)


def source_language(folder: Path, target_lang: str) -> str:
    """The language a model translates into `target_lang` from, by its card: the source of the
    one trained direction into it."""
    from langadapt.model.card import read_card

    card = read_card(folder)
    directions = (card.translation or {}).get("directions", []) if card is not None else []
    sources = [d.split("-", 1)[0] for d in directions if d.split("-", 1)[1] == target_lang]
    if len(sources) != 1:
        raise LangadaptError(f"cannot tell which language to translate into {target_lang} from "
                             f"(the model's trained directions: {', '.join(directions) or 'none'})",
                             where=str(folder), fix="name it with --from LANG.")
    return sources[0]
