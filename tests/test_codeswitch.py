"""Code-switching restore (CSR4mBART) on NTREX-128 English–Swahili: the dictionary induced from
the pairs knows frequent words, the corruption swaps the configured share of words, restore
documents put the loss on the original sentence only, and the masked variant masks only the
original half and trains a tiny masked model."""

import json
import random
from pathlib import Path

import pytest
import torch

from langadapt.config import load_config, parse_config
from langadapt.corpus.document import read_parallel
from langadapt.data.codeswitch import code_switch, induce_dictionary, restore_streams, words
from langadapt.errors import LangadaptError
from langadapt.model.build import build_model
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import _sampler, prepare_data, run_train_job
from langadapt.train.loop import make_accelerator
from langadapt.train.objectives import masked_lm
from langadapt.vocab.tokenizer import load_tokenizer

NAMES = {"eng_Latn": "English", "swh_Latn": "Swahili"}

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
    induced = {word: dictionary[word] for word in KNOWN if word in dictionary}  # 500 lines: the rarest are left out
    assert len(induced) >= 6 and all(induced[word] == KNOWN[word] for word in induced), induced
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


@pytest.fixture
def files(ntrex, tmp_path):
    """The first 400 NTREX-128 pairs as one line-parallel file per language."""
    paths = []
    for lang, lines in zip(["eng", "swa"], ntrex, strict=True):
        paths.append(tmp_path / f"{lang}.txt")
        paths[-1].write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    return paths


def csr_job(files, tmp_path, **extra) -> TrainJobConfig:
    source = {"name": "csr", "format": "codeswitch", "languages": ["eng_Latn", "swh_Latn"],
              "files": list(map(str, files)), "translation": {"names": NAMES, "switch_rate": 0.3}}
    return parse_config({"name": "csr", "output_dir": str(tmp_path), "data": {"sources": [source], "vocab_size": 1000},
                         **extra}, "test", TrainJobConfig)


MASKED = {"model": {"preset": "tiny", "arch": "bert", "block_size": 128},
          "train": {"objective": "masked", "steps": 40, "batch_size": 8, "lr": 3e-3, "warmup_steps": 4,
                    "eval_every": 40, "checkpoint_every": 0}}


def test_restore_documents_take_loss_on_the_original_only(ntrex, files, tmp_path):
    cfg = csr_job(files, tmp_path)
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


def prompt_of(document: str) -> str:
    """The code-switched sentence and language name a restore document opens with (all of it when a
    window ends inside the prompt)."""
    for name in NAMES.values():
        if f"\n{name}:" in document:
            return document[: document.index(f"\n{name}:") + len(name) + 2]
    return document


def test_the_masked_variant_masks_only_the_original_half(files, tmp_path):
    """Decoded, every code-switched prompt in a batch reaches the model intact: the masks and random
    swaps all fall in the originals (about 15 % of their tokens)."""
    cfg = csr_job(files, tmp_path, **MASKED)
    out = tmp_path / cfg.name
    prepare_data(cfg, out)
    tokenizer = load_tokenizer(out / "tokenizer.json")
    data = json.loads((out / "data.json").read_text())
    batch = _sampler(cfg, out, make_accelerator(), data, [], tokenizer)()
    model = build_model(cfg.model, tokenizer)
    seen = []
    model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    torch.manual_seed(0)
    masked_lm(model, batch)
    changed = 0
    for clean, corrupted in zip(batch["input_ids"], seen[0], strict=True):
        ends = (clean == data["eos_id"]).nonzero().flatten().tolist()
        for start, end in zip(ends, [*ends[1:], len(clean)], strict=True):  # the documents between end-of-texts
            before = tokenizer.decode(clean[start + 1 : end].tolist(), skip_special_tokens=False)
            after = tokenizer.decode(corrupted[start + 1 : end].tolist(), skip_special_tokens=False)
            assert after.startswith(prompt_of(before)), (before, after)
        changed += int((clean != corrupted).sum())
    assert 0.07 < changed / int((batch["labels"] != -100).sum()) < 0.2


def test_a_tiny_masked_model_learns_to_restore_code_switched_text(files, tmp_path):
    cfg = csr_job(files, tmp_path, **MASKED)
    run_train_job(cfg)
    log = [json.loads(line) for line in (tmp_path / "csr" / "log.jsonl").read_text().splitlines()]
    losses = [record["loss"] for record in log if "loss" in record]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses


def test_objectives_that_cannot_use_the_data_are_named_before_training(files, tmp_path, shared):
    with pytest.raises(LangadaptError, match=r"train.objective 'masked' does not fit model.arch 'gpt2'"):
        csr_job(files, tmp_path, train={"objective": "masked"})
    with pytest.raises(LangadaptError, match=r"train.objective 'causal' does not fit model.arch 'bert'"):
        csr_job(files, tmp_path, model={"arch": "bert"})
    with pytest.raises(LangadaptError, match=r"train.objective ccp .*format: parallel"):
        csr_job(files, tmp_path, train={"objective": "ccp"})
    translation = {"name": "mt", "format": "translation", "files": [str(shared("sib200"))],
                   "languages": ["eng_Latn", "swh_Latn"]}
    with pytest.raises(LangadaptError, match=r"'translation' trains a model to be prompted.*format: codeswitch"):
        parse_config({"name": "mt", "model": {"arch": "bert"}, "train": {"objective": "masked"},
                      "data": {"sources": [translation]}}, "test", TrainJobConfig)


def test_the_example_is_a_valid_masked_restore_job():
    cfg = load_config(Path(__file__).parents[1] / "examples" / "codeswitch-restore.yaml", TrainJobConfig)
    assert (cfg.model.arch, cfg.train.objective, cfg.data.sources[0].format) == ("bert", "masked", "codeswitch")
