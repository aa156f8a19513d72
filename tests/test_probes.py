"""Probes, retrieval and translation scores on real data (the cuts in tests/fixtures/data) through a real model."""

from collections import Counter

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.corpus.document import read_parallel
from langadapt.errors import LangadaptError
from langadapt.evaluate.embed import hidden_states
from langadapt.evaluate.probes import ProbeTask, read_conllu
from langadapt.evaluate.retrieval import retrieval_accuracy
from langadapt.evaluate.translation import translate, translation_scores
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.registry import PROBES
from langadapt.vocab.tokenizer import EOS


@pytest.fixture(scope="module")
def model(tokenizers):
    """A frozen random GPT-2: its states still carry token identity, which probes can read."""
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=tokenizers[0].get_vocab_size(), n_positions=64, n_embd=32,
                                      n_layer=2, n_head=2)).eval()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_states_equal_each_text_read_alone_in_context_long_pieces(arch, tokenizers, shared):
    """Batching by length and skipping the output layer change no state: each text, the longest
    read in 64-token pieces, gets the states the whole model gives it alone, in token order."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, n_layer=2, n_embd=32, n_head=2, block_size=64), tokenizers[0]).eval()
    source, _ = read_parallel(shared("tatoeba") / "tatoeba.hsb-eng.hsb", shared("tatoeba") / "tatoeba.hsb-eng.eng",
                              limit=12)
    texts = [*source, " ".join(source)]  # the last is several context lengths long
    assert len(tokenizers[0].encode(texts[-1], add_special_tokens=False).ids) > 2 * 64
    batched = hidden_states(model, tokenizers[0], texts, layer=1, batch_size=5)
    for text, states in zip(texts, batched, strict=True):
        ids = tokenizers[0].encode(text, add_special_tokens=False).ids
        with torch.no_grad():
            alone = [model(input_ids=torch.tensor([ids[start : start + 64]]), output_hidden_states=True)
                     .hidden_states[1][0] for start in range(0, len(ids), 64)]
        torch.testing.assert_close(torch.from_numpy(states), torch.cat(alone), rtol=1e-4, atol=1e-5)


def test_pos_probe_beats_the_majority_tag(model, tokenizers, shared):
    rows = PROBES["pos"](model, tokenizers[0], ProbeTask(shared("ud_maltese"), "mlt_Latn", limit=150))
    test = read_conllu(next(shared("ud_maltese").glob("*-ud-test.conllu")))[:150]
    tags = Counter(tag for sentence in test for _, tag in sentence)
    majority = max(tags.values()) / sum(tags.values())
    assert rows == [{"language": "mlt_Latn", "metric": "pos_acc", "value": rows[0]["value"]}]
    assert majority < rows[0]["value"] <= 1.0


def test_sib200_probe_gives_one_row_per_test_language(model, tokenizers, shared):
    task = ProbeTask(shared("sib200"), "ces_Latn", ["ces_Latn", "pol_Latn"], limit=300)
    rows = PROBES["sib200"](model, tokenizers[0], task)
    assert [(r["language"], r["metric"]) for r in rows] == [("ces_Latn", "sib200_acc:ces_Latn"),
                                                             ("pol_Latn", "sib200_acc:ces_Latn")]
    assert all(1 / 7 < r["value"] <= 1.0 for r in rows)  # above uniform guessing over 7 topics


def test_sib200_names_the_missing_language(model, tokenizers, shared):
    with pytest.raises(LangadaptError, match="'xxx_Latn' has no SIB-200 train split"):
        PROBES["sib200"](model, tokenizers[0], ProbeTask(shared("sib200"), "xxx_Latn"))


def test_retrieval_finds_every_sentence_among_its_own_copies_and_few_among_shuffled(model, tokenizers, shared):
    source, _ = read_parallel(shared("tatoeba") / "tatoeba.hsb-eng.hsb", shared("tatoeba") / "tatoeba.hsb-eng.eng",
                              limit=120)
    assert retrieval_accuracy(model, tokenizers[0], source, source) == {"retrieval_src2tgt": 1.0,
                                                                        "retrieval_tgt2src": 1.0}
    shuffled = source[1:] + source[:1]  # line i now holds sentence i+1: the "translation" is wrong
    assert retrieval_accuracy(model, tokenizers[0], source, shuffled)["retrieval_src2tgt"] < 0.1


def test_parallel_files_of_different_length_are_a_user_error(tmp_path, shared):
    short = tmp_path / "short.txt"
    short.write_text("one line\n")
    with pytest.raises(LangadaptError, match="line-parallel"):
        read_parallel(short, shared("tatoeba") / "tatoeba.hsb-eng.eng")


def test_translation_scores_are_perfect_for_the_reference_and_one_line_per_source(model, tokenizers, shared):
    refs = (shared("ntrex128") / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()[:5]
    assert translation_scores(refs, refs) == {"chrf": pytest.approx(100.0), "chrf++": pytest.approx(100.0),
                                              "bleu": pytest.approx(100.0)}
    sources = (shared("ntrex128") / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()[:3]
    hypotheses = translate(model, tokenizers[0], sources, tokenizers[0].token_to_id(EOS), max_new_tokens=8)
    assert len(hypotheses) == 3 and not any("\n" in h for h in hypotheses)
    assert translation_scores(hypotheses, refs[:3])["chrf"] < 50
