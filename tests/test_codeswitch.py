"""Code-switching restore (CSR4mBART) on NTREX-128 English–Swahili: the dictionary induced from
the pairs knows frequent words, the corruption swaps the configured share of words, and restore
documents put the loss on the original sentence only."""

import random

import pytest

from langadapt.config import TrainJobConfig, parse_config
from langadapt.corpus.document import read_parallel
from langadapt.data.codeswitch import code_switch, induce_dictionary, restore_streams, words

# Frequent news words and their Swahili translations (any dictionary lists them).
KNOWN = {"president": "rais", "government": "serikali", "police": "polisi", "year": "mwaka", "people": "watu",
         "children": "watoto", "water": "maji", "country": "nchi", "women": "wanawake", "school": "shule"}


@pytest.fixture(scope="module")
def ntrex(shared):
    folder = shared("ntrex128")
    return read_parallel(folder / "newstest2019-src.eng.txt", folder / "newstest2019-ref.swa.txt", limit=1200)


def test_the_induced_dictionary_maps_frequent_words_correctly(ntrex):
    english, swahili = ntrex
    dictionary = induce_dictionary(english, swahili)
    correct = [word for word, translation in KNOWN.items() if dictionary.get(word) == translation]
    assert len(correct) >= 8, {word: dictionary.get(word) for word in KNOWN}
    assert len(dictionary) > 300


def test_code_switching_replaces_the_configured_share_of_words(ntrex):
    english, swahili = ntrex
    dictionary = induce_dictionary(english, swahili)
    rng = random.Random(0)
    changed = total = 0
    for sentence in english[:200]:
        mixed = code_switch(sentence, dictionary, 0.25, rng)
        before, after = words(sentence), words(mixed)
        assert len(after) >= len(before) - 1 or " " in "".join(dictionary.values())
        changed += sum(a != b for a, b in zip(before, after, strict=False))
        total += len(before)
    assert 0.15 < changed / total <= 0.3


def test_restore_documents_take_loss_on_the_original_only(ntrex, tmp_path):
    files = []
    for lang, lines in zip(["eng", "swa"], ntrex, strict=True):
        files.append(tmp_path / f"{lang}.txt")
        files[-1].write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    cfg = parse_config({"name": "csr", "output_dir": str(tmp_path), "data": {"sources": [{
        "name": "csr", "format": "codeswitch", "languages": ["eng_Latn", "swh_Latn"], "files": list(map(str, files)),
        "translation": {"names": {"eng_Latn": "English", "swh_Latn": "Swahili"}, "switch_rate": 0.3}}]}},
        "test", TrainJobConfig)
    streams, weights = restore_streams(cfg.data.sources[0], seed=0)
    assert weights == {"csr.eng_Latn": 0.5, "csr.swh_Latn": 0.5}
    english = streams["csr.eng_Latn"]
    originals = ntrex[0][:400]
    assert len(english) == len(originals)
    switched = 0
    for doc, original in zip(english, originals, strict=True):
        target = doc.text[len(doc.text) - doc.metadata["target_chars"]:]
        prompt = doc.text[: len(doc.text) - len(target)]
        assert target == " " + original and prompt.endswith("\nEnglish:")
        switched += prompt.removesuffix("\nEnglish:") != original
    assert switched > 0.8 * len(originals)
