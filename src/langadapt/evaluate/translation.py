"""Translation quality through sacrebleu: chrF (the headline: robust for morphologically rich,
low-resource languages) and BLEU, for a causal LM prompted to translate.

Each source line is put into `prompt` (`{source}` marks where), the model continues greedily
until EOS, a newline or `max_new_tokens`, and the continuation is the hypothesis.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.evaluate import require

DEFAULT_PROMPT = "{source} = "


@torch.no_grad()
def translate(
    model: PreTrainedModel, tokenizer: Tokenizer, sources: list[str], eos_id: int,
    prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 64,
) -> list[str]:
    if "{source}" not in prompt:
        raise LangadaptError(f"translation prompt {prompt!r} has no {{source}} placeholder",
                             fix="write the prompt with {source} where the sentence goes, e.g. '{source} = '.")
    context = model.config.max_position_embeddings
    device = next(model.parameters()).device
    model.eval()
    hypotheses = []
    for source in sources:
        ids = [eos_id, *tokenizer.encode(prompt.format(source=source), add_special_tokens=False).ids]
        ids = ids[-max(1, context - max_new_tokens):]  # keep room for the answer in the context
        room = min(max_new_tokens, context - len(ids))
        output = model.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids),
                                device=device, dtype=torch.long), max_new_tokens=max(room, 1), do_sample=False,
                                eos_token_id=eos_id, pad_token_id=eos_id)
        new = [t for t in output[0, len(ids):].tolist() if t != eos_id]
        hypotheses.append(tokenizer.decode(new).split("\n")[0].strip())
    return hypotheses


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus chrF and BLEU (sacrebleu defaults), 0–100."""
    sacrebleu = require("sacrebleu", "eval")
    if len(hypotheses) != len(references):
        raise LangadaptError(f"{len(hypotheses)} hypotheses but {len(references)} references",
                             fix="pass line-parallel source and reference files.")
    return {"chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
            "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score}
