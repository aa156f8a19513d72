"""Data mixing, parallel-text formats, control tokens and memory-mapped token files."""

import numpy as np
import pytest
import torch

from langadapt.corpus.document import Document
from langadapt.data.mixing import (
    MixtureSampler,
    add_control_tokens,
    interlinear,
    mixture_probabilities,
    with_control_tokens,
)
from langadapt.data.packing import BlockSampler, pack, read_tokens, write_tokens
from langadapt.vocab.tokenizer import EOS


@pytest.fixture(scope="module")
def sources(tokenizers, sample_docs):
    source, _, _ = tokenizers
    return {lang: pack([d.text for d in sample_docs if d.lang == lang], source, source.token_to_id(EOS), 0)
            for lang in ("ces_Latn", "hsb_Latn")}


def test_temperature_sampling_upsamples_the_smaller_source(sources):
    sizes = {name: len(tokens) for name, tokens in sources.items()}
    small = min(sizes, key=sizes.get)
    proportional = mixture_probabilities(sizes, {}, alpha=1.0)
    assert proportional[small] == pytest.approx(sizes[small] / sum(sizes.values()))
    flattened = mixture_probabilities(sizes, {}, alpha=0.3)
    assert proportional[small] < flattened[small] < 0.5
    assert mixture_probabilities(sizes, {"ces_Latn": 3, "hsb_Latn": 1}, alpha=None)["ces_Latn"] == 0.75


def test_mixture_rows_come_from_each_source_at_its_rate(sources):
    block = 16
    windows = {name: {tuple(tokens[i : i + block].tolist()) for i in range(len(tokens) - block)}
               for name, tokens in sources.items()}
    samplers = {name: BlockSampler(tokens, block, 8, seed) for seed, (name, tokens) in enumerate(sources.items())}
    mixture = MixtureSampler(samplers, {"ces_Latn": 0.75, "hsb_Latn": 0.25}, seed=0)
    counts = {"ces_Latn": 0, "hsb_Latn": 0}
    for _ in range(100):
        batch = mixture()
        inputs, targets = batch["input_ids"], batch["labels"]
        assert inputs.shape == (8, block) and torch.equal(inputs[:, 1:], targets[:, :-1])
        for row in inputs.tolist():
            counts[next(name for name, seen in windows.items() if tuple(row) in seen)] += 1
    assert 0.68 < counts["ces_Latn"] / 800 < 0.82


def test_interlinear_documents_alternate_aligned_translations(shared):
    english = shared("ntrex128", "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()[:40]
    czech = shared("ntrex128", "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()[:40]
    docs = list(interlinear(zip(english, czech, strict=True), pairs_per_document=8))
    assert len(docs) == 5
    lines = docs[1].split("\n")
    assert lines[0::2] == english[8:16] and lines[1::2] == czech[8:16]


def test_control_tokens_become_single_special_tokens(tokenizers, sample_docs):
    tokenizer = tokenizers[0].from_str(tokenizers[0].to_str())  # a copy: the fixture is shared
    docs = [Document("1", "Dobry dźeń", "hsb_Latn", {"quality": "high"}), *sample_docs[:3]]
    texts = list(with_control_tokens(docs, ["lang", "quality"]))
    assert texts[0] == "<|lang=hsb_Latn|><|quality=high|>Dobry dźeń"
    added = add_control_tokens(tokenizer, texts)
    assert "<|quality=none|>" in added
    ids = tokenizer.encode(texts[0]).ids
    assert ids[:2] == [tokenizer.token_to_id("<|lang=hsb_Latn|>"), tokenizer.token_to_id("<|quality=high|>")]


def test_memory_mapped_tokens_sample_like_the_array(sources, tmp_path):
    tokens = sources["hsb_Latn"]
    path = write_tokens(tmp_path / "hsb.bin", tokens)
    mapped = read_tokens(path)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, tokens)
    from_array, from_file = BlockSampler(tokens, 32, 4, 7), BlockSampler(mapped, 32, 4, 7)
    for _ in range(5):
        a, b = from_array(), from_file()
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
