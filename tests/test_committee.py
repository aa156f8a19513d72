"""A committee of 1-layer SIB-200 classifiers: its prediction is the average of its members'."""

import torch
from transformers import AutoModelForSequenceClassification

from langadapt.data.labelled import encode_texts, in_order
from langadapt.data.sib200 import read_topics
from langadapt.evaluate.committee import Committee, parameter_count
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.train.classify import accuracy
from langadapt.vocab.tokenizer import end_of_text, train_bpe


def test_a_committee_predicts_the_average_of_its_members(shared):
    texts, labels = read_topics(shared("sib200"), "kin_Latn", "test")
    tokenizer = train_bpe(texts, 400)
    names = sorted(set(labels))
    pad = end_of_text(tokenizer)
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        config = build_model(ModelConfig(n_layer=1, n_embd=32, n_head=2, block_size=128), tokenizer).config
        config.num_labels, config.pad_token_id = len(names), pad
        members.append(AutoModelForSequenceClassification.from_config(config).eval())
    committee = Committee(members).eval()
    assert parameter_count(committee) == sum(parameter_count(m) for m in members)
    data = encode_texts(tokenizer, list(zip(texts, labels, strict=True)), names, 64)
    batch = next(in_order(data, pad))
    with torch.no_grad():
        mean = torch.stack([m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.softmax(-1)
                            for m in members]).mean(0)
        voted = committee(batch["input_ids"], batch["attention_mask"]).logits
    torch.testing.assert_close(voted.exp(), mean)
    assert torch.equal(voted.argmax(-1), mean.argmax(-1))
    assert 0 <= accuracy(committee, data, pad) <= 1  # scored by the same code as one classifier
