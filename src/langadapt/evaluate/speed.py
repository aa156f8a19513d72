"""The expansion's payoff at inference, measured: target-language bytes generated per second and
tokens per sentence, for several models (the base and the adapted one) side by side in one process.

Like with like: every model gets the same prompts (text, each encoded by the model's own
tokenizer), greedy decoding, batch 1 with the KV cache, and the same budget of exactly `new_tokens`
generated tokens per prompt (end-of-text is suppressed until then, so no model stops early). A
token of the expanded tokenizer carries more bytes, so the same token budget yields more text; bytes
per second = UTF-8 bytes of the decoded continuations / seconds spent in `generate`. The models take
turns prompt by prompt, so a change in the machine's load falls on all of them alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.vocab.tokenizer import end_of_text


def tokens_per_sentence(tokenizer: Tokenizer, sentences: Sequence[str]) -> float:
    """Mean tokens per sentence (no special tokens): how much context one sentence takes."""
    return statistics.fmean(len(e.ids) for e in tokenizer.encode_batch(list(sentences), add_special_tokens=False))


@torch.inference_mode()
def greedy(model: PreTrainedModel, tokenizer: Tokenizer, prompt: str, new_tokens: int) -> list[int]:
    """Exactly `new_tokens` greedy tokens after `prompt` (end-of-text suppressed until then)."""
    eos = end_of_text(tokenizer, model.config.eos_token_id)
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False).ids])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=eos, pad_token_id=eos)
    return out[0, ids.shape[1]:].tolist()


def generation_speed(models: dict[str, tuple[PreTrainedModel, Tokenizer]], prompts: Sequence[str],
                     sentences: Sequence[str], new_tokens: int) -> list[dict]:
    """One row per model: bytes and tokens generated per second over `prompts`, bytes per generated
    token, and tokens per sentence of `sentences` (e.g. FLORES), all under the settings in the row."""
    seconds = dict.fromkeys(models, 0.0)
    generated = {name: [0, 0] for name in models}  # bytes, tokens
    for model, tokenizer in models.values():  # warm-up: the first call pays one-off costs
        model.eval()
        greedy(model, tokenizer, prompts[0], 2)
    for prompt in prompts:
        for name, (model, tokenizer) in models.items():
            started = time.perf_counter()
            ids = greedy(model, tokenizer, prompt, new_tokens)
            seconds[name] += time.perf_counter() - started
            generated[name][0] += len(tokenizer.decode(ids, skip_special_tokens=False).encode("utf-8"))
            generated[name][1] += len(ids)
    return [{"model": name, "prompts": len(prompts), "new_tokens": new_tokens, "decoding": "greedy, batch 1",
             "seconds": seconds[name], "generated_tokens": generated[name][1], "generated_bytes": generated[name][0],
             "tokens_per_s": generated[name][1] / seconds[name], "bytes_per_s": generated[name][0] / seconds[name],
             "bytes_per_token": generated[name][0] / generated[name][1],
             "tokens_per_sentence": tokens_per_sentence(tokenizer, sentences)}
            for name, (_, tokenizer) in models.items()]
