"""The inference-payoff measurement compares like with like: the base and the expanded model get the
same prompts and the same greedy decoding of exactly the same number of new tokens."""

import copy

import pytest
import torch

from langadapt.evaluate.speed import generation_speed, greedy, tokens_per_sentence
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.expand import expand_continued
from langadapt.vocab.init import initialise
from langadapt.vocab.tokenizer import end_of_text


@pytest.fixture(scope="module")
def base_and_adapted(tokenizers, sample_docs):
    source = tokenizers[0]
    target = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    expansion = expand_continued(source, target, 60)
    torch.manual_seed(0)
    base = build_model(ModelConfig(n_layer=1, n_embd=32, n_head=2, block_size=64, arch="llama"), source)
    adapted = copy.deepcopy(base)
    initialise(adapted, expansion, "subword-mean", 0)
    return {"base": (base, source), "adapted": (adapted, expansion.tokenizer)}, target


def test_both_models_decode_the_same_prompts_to_the_same_token_budget(base_and_adapted):
    models, target = base_and_adapted
    prompts, sentences = target[:3], target[3:40]
    rows = {row["model"]: row for row in generation_speed(models, prompts, sentences, new_tokens=6)}
    settings = ["prompts", "new_tokens", "decoding"]
    assert [rows["base"][key] for key in settings] == [rows["adapted"][key] for key in settings] == [3, 6,
                                                                                                     "greedy, batch 1"]
    for name, (model, tokenizer) in models.items():
        row = rows[name]
        assert row["generated_tokens"] == 3 * 6  # nobody stops early
        continuations = [tokenizer.decode(greedy(model, tokenizer, p, 6), skip_special_tokens=False) for p in prompts]
        assert row["generated_bytes"] == sum(len(c.encode("utf-8")) for c in continuations)
        assert row["bytes_per_s"] == pytest.approx(row["generated_bytes"] / row["seconds"])
        assert row["tokens_per_sentence"] == pytest.approx(tokens_per_sentence(tokenizer, sentences))
    assert rows["adapted"]["tokens_per_sentence"] < rows["base"]["tokens_per_sentence"]  # the expansion's payoff


def test_greedy_is_the_argmax_at_every_step_with_end_of_text_held_back(base_and_adapted):
    models, target = base_and_adapted
    model, tokenizer = models["adapted"]
    eos = end_of_text(tokenizer, model.config.eos_token_id)
    ids = tokenizer.encode(target[0], add_special_tokens=False).ids
    expected = []
    with torch.no_grad():
        for _ in range(5):  # no cache, one full forward pass per token
            logits = model(torch.tensor([ids + expected])).logits[0, -1]
            logits[eos] = float("-inf")
            expected.append(int(logits.argmax()))
    assert greedy(model, tokenizer, target[0], 5) == expected
