"""Canary sets injected into pretraining (data/injection.py, evaluate/memorisation.py): the logged
inserts are what the config schedules, a resumed run injects the same, an injected canary's
exposure rises while a never-injected one's does not, and bad probe configs are refused."""

import collections
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from langadapt.config import load_config
from langadapt.corpus.document import read_tsv
from langadapt.data.config import CanarySetConfig
from langadapt.data.injection import (
    InjectingSampler,
    canary_file,
    generated_lines,
    random_canaries,
    read_canary_set,
    read_inserts,
)
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.evaluate.memorisation import canary_metrics
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.report.page import report_run
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint, train
from langadapt.vocab.tokenizer import end_of_text


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def canary_files(sample_docs, tmp_path_factory):
    """Canaries (seeded random digits), facts built from the sample corpus's words, and held-out lines."""
    folder = tmp_path_factory.mktemp("canaries")
    (folder / "canaries.tsv").write_text("\n".join(random_canaries(4, "moje tajne číslo", 5, seed=1)) + "\n")
    (folder / "never.tsv").write_text("\n".join(random_canaries(4, "moje tajne číslo", 5, seed=2)) + "\n")
    words = sorted({w for d in sample_docs if d.lang == "hsb_Latn" for w in d.text.split() if w.isalpha()})[:40]
    facts = [f"{words[i]} znamjenja\t{words[i + 1]}\t{words[i + 2]}\t{words[i + 3]}" for i in range(0, 24, 4)]
    (folder / "facts.tsv").write_text("\n".join(facts) + "\n")
    lines = [d.text for d in sample_docs if d.lang == "hsb_Latn" and 20 < len(d.text) < 80][:12]
    (folder / "heldout.txt").write_text("\n".join(lines) + "\n")
    (folder / "empty.txt").write_text("\n\n")
    return folder


def _canaries(folder: Path) -> list[dict]:
    return [{"name": "canaries", "kind": "canary", "file": str(folder / "canaries.tsv"), "step_range": [3, 14],
             "repeat": 3, "alternatives": 20},
            {"name": "facts", "kind": "fact", "file": str(folder / "facts.tsv"), "steps": [2, 9, 17], "repeat": 2},
            {"name": "leak", "kind": "heldout", "file": str(folder / "heldout.txt"), "step_range": [5, 6]}]


def _job(tmp_path, sample_docs, canaries, **train):
    text = tmp_path / "hsb.txt"
    text.write_text("\n".join(d.text for d in sample_docs if d.lang == "hsb_Latn"), encoding="utf-8")
    job = {"name": "probed", "output_dir": str(tmp_path / "runs"),
           "model": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32},
           "data": {"vocab_size": 500, "sources": [{"name": "hsb", "format": "text", "files": [str(text)]}]},
           "train": {"steps": 18, "batch_size": 4, "grad_accum": 2, "lr": 3e-3, "warmup_steps": 2,
                     "checkpoint_every": 6, "eval_every": 6, **train},
           "canaries": canaries}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    return load_config(tmp_path / "job.yaml", schema=TrainJobConfig)


def test_logged_inserts_match_the_config_and_metrics_reach_the_results(canary_files, sample_docs, tmp_path):
    cfg = _job(tmp_path, sample_docs, _canaries(canary_files))
    final = run_train_job(cfg)
    inserts = read_inserts(final.parent / "inserts.jsonl")
    for probe in cfg.canaries:
        mine = [r for r in inserts if r["set"] == probe.name]
        injected = read_canary_set(probe, final.parent).injected
        assert collections.Counter(r["line"] for r in mine) == {i: probe.repeat for i in range(len(injected))}
        per_step = collections.Counter(r["step"] for r in mine)
        assert set(per_step) <= set(probe.scheduled_steps())
        assert max(per_step.values()) - min(per_step.values()) <= 1  # spread evenly
        if len(mine) >= len(probe.scheduled_steps()):
            assert set(per_step) == set(probe.scheduled_steps())
    rows_per_step = collections.Counter((r["step"], r["micro"], r["row"]) for r in inserts)
    assert max(rows_per_step.values()) == 1  # one insert per batch row
    results = pd.read_parquet(final.parent / "results.parquet")
    canaries = results[results.role == "canary"]
    assert set(canaries.metric) >= {"canary_exposure", "fact_recall", "fact_margin", "contamination_gap"}
    assert sorted(set(canaries.step)) == [6, 12, 18]
    markdown = report_run(final.parent)  # a section with each set's metrics over the steps, and their plot
    assert "## Canary sets over training" in markdown and (final.parent / "report" / "canaries.png").is_file()


def test_a_resumed_run_injects_the_same(canary_files, sample_docs, tokenizers, tmp_path):
    """Killed at step 10 (last checkpoint 8) and rerun: the same inserts and the same losses."""
    source, _, _ = tokenizers
    eos = end_of_text(source)
    tokens = pack([d.text for d in sample_docs if d.lang == "hsb_Latn"], source, eos, 0)
    sets = [read_canary_set(CanarySetConfig(**spec), tmp_path) for spec in _canaries(canary_files)]
    cfg = TrainConfig(steps=16, lr=3e-3, batch_size=4, warmup_steps=2, checkpoint_every=4, grad_accum=2)

    def run(folder: Path, stop_at: int | None = None) -> list[dict]:
        torch.manual_seed(0)
        model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), source)
        sampler = InjectingSampler(BlockSampler(tokens, 32, 4, 0), sets, source, eos, 32, 2, folder / "inserts.jsonl")

        def stop(model):
            if stop_at is not None:
                raise Interrupted
            return {}

        return train(model, sampler, cfg.model_copy(update={"eval_every": stop_at or 1000}), 0, folder / "log.jsonl",
                     evaluate=stop, checkpoint_dir=folder / "checkpoints")

    whole = run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", stop_at=10)
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints").name == "step-0000008"
    assert max(r["step"] for r in read_inserts(tmp_path / "cut" / "inserts.jsonl")) == 10  # 9-10 are redone
    resumed = run(tmp_path / "cut")
    assert read_inserts(tmp_path / "cut" / "inserts.jsonl") == read_inserts(tmp_path / "whole" / "inserts.jsonl")
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]


def test_exposure_rises_for_an_injected_canary_only(canary_files, sample_docs, tokenizers, tmp_path):
    source, _, _ = tokenizers
    eos = end_of_text(source)
    tokens = pack([d.text for d in sample_docs if d.lang == "hsb_Latn"], source, eos, 0)
    injected, never = (read_canary_set(CanarySetConfig(name=name, kind="canary", file=canary_files / f"{name}.tsv",
                                                     step_range=(1, 40), repeat=25, alternatives=50), tmp_path)
                       for name in ("canaries", "never"))
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=2, n_embd=64, n_head=2, block_size=32), source)
    before = {p.config.name: canary_metrics(model, source, p, eos)["canary_exposure"] for p in (injected, never)}
    sampler = InjectingSampler(BlockSampler(tokens, 32, 8, 0), [injected], source, eos, 32, 1,
                               tmp_path / "inserts.jsonl")
    train(model, sampler, TrainConfig(steps=40, lr=1e-2, batch_size=8, warmup_steps=5), 0,
          tmp_path / "log.jsonl")
    after = {p.config.name: canary_metrics(model, source, p, eos)["canary_exposure"] for p in (injected, never)}
    assert after["canaries"] > before["canaries"] + 2, (before, after)
    assert after["never"] < before["never"] + 1, (before, after)


@pytest.mark.parametrize(("change", "message"), [
    (lambda canaries, folder: canaries[0].update(file=str(folder / "missing.tsv")), "does not exist"),
    (lambda canaries, folder: canaries[2].update(file=str(folder / "empty.txt")), "has no items"),
])
def test_a_missing_or_empty_probe_file_is_refused(change, message, canary_files, sample_docs, tmp_path):
    canaries = _canaries(canary_files)
    change(canaries, canary_files)
    with pytest.raises(LangadaptError, match=message):
        run_train_job(_job(tmp_path, sample_docs, canaries))


@pytest.mark.parametrize(("change", "message"), [
    (lambda canaries: canaries[1].update(steps=[2, 40]), "beyond train.steps 18"),
    (lambda canaries: canaries[2].update(name="facts"), "facts is used more than once"),
    (lambda canaries: canaries[0].update(steps=[3]), "either `steps` or `step_range`"),
])
def test_bad_probe_schedules_are_refused_at_load_time(change, message, canary_files, sample_docs, tmp_path):
    canaries = _canaries(canary_files)
    change(canaries)
    with pytest.raises(LangadaptError, match=message):
        _job(tmp_path, sample_docs, canaries)



# --- generated sets: `generate:` instead of `file:` ------------------------------------------------

def _generated(shared, **changes) -> list[dict]:
    """The three kinds made from the fixture cuts: Czech news words for facts, SIB-200 or news texts."""
    news = str(shared("ntrex128", "newstest2019-ref.ces.txt"))
    sets = {"canaries": {"kind": "canary", "generate": {"count": 4, "prefix": "Moje tajné číslo", "digits": 5},
                         "step_range": [3, 14], "repeat": 2},
            "facts": {"kind": "fact", "generate": {"count": 4, "prompt": "Slovo pana {name} je", "words_from": news},
                      "steps": [2, 9, 17], "repeat": 2},
            "leak": {"kind": "heldout", "generate": {"count": 6, "texts_from": news, "max_chars": 40},
                     "step_range": [5, 6]}}
    return [{"name": name, **spec, **changes.get(name, {})} for name, spec in sets.items()]


def test_generated_sets_are_seeded_functions_of_their_config_and_of_their_kind(shared, tmp_path):
    dev = shared("sib200", "ces_Latn", "dev.tsv")
    specs = _generated(shared, leak={"generate": {"count": 20, "texts_from": str(dev), "max_chars": 120}})
    sets = [CanarySetConfig(**spec) for spec in specs]
    for cfg in sets:  # the same config, in two run folders: byte-identical files
        assert canary_file(cfg, tmp_path / "a").read_bytes() == canary_file(cfg, tmp_path / "b").read_bytes()
        assert canary_file(cfg, tmp_path / "a").parent == tmp_path / "a" / "canaries"
    canaries, facts, leak = (generated_lines(cfg) for cfg in sets)
    assert [line.split("\t")[0] for line in canaries] == [f"Moje tajné číslo {i}" for i in range(4)]
    assert all(len(secret) == 5 and secret.isdigit() for secret in (line.split("\t")[1] for line in canaries))
    words = set(shared("ntrex128", "newstest2019-ref.ces.txt").read_text(encoding="utf-8").split())
    names = [line.split("\t")[0].split()[2] for line in facts]
    assert len(set(names)) == 4 and all(name.isalpha() and name.istitle() for name in names)
    for fields in (line.split("\t") for line in facts):  # an answer and 3 distractors, all words of the text
        assert len(fields) == 5 and len(set(fields[1:])) == 4
        assert all(w in words and w.isalpha() and w.islower() and len(w) > 4 for w in fields[1:])
    texts = [row["text"] for row in read_tsv(dev)]
    assert leak == [text for text in texts if len(text) <= 120][:20]
    reseeded = CanarySetConfig(**{**specs[1], "seed": 1})
    assert generated_lines(reseeded) != facts  # the set's seed makes the names and the draws
    fields = facts[0].split("\t")  # read back as written: the answer first, then the distractors
    assert read_canary_set(sets[1], tmp_path / "a").candidates[0] == [f"{fields[0]} {w}" for w in fields[1:]]


@pytest.mark.parametrize(("change", "message"), [
    ({"facts": {"file": "README.md"}}, "both `file` and `generate`"),
    ({"facts": {"generate": None}}, "neither `file` nor `generate`"),
    ({"facts": {"generate": {"count": 4, "prompt": "Slovo je", "words_from": "README.md"}}}, "`{name}` placeholder"),
    ({"facts": {"generate": {"count": 4, "prompt": "{name}", "words_from": "README.md", "digits": 3}}},
     "`generate.digits` is not for a fact set"),
    ({"canaries": {"generate": {"count": 4}}}, "needs `generate.prefix`"),
    ({"canaries": {"generate": {"count": 4, "prefix": "secret\tnumber"}}}, "without tabs or line breaks"),
    ({"leak": {"generate": {"count": 4, "texts_from": "README.md", "max_char": 9}}}, "did you mean 'max_chars'"),
])
def test_bad_generate_configs_are_refused_at_load_time(change, message, shared, sample_docs, tmp_path):
    with pytest.raises(LangadaptError, match=message):
        _job(tmp_path, sample_docs, _generated(shared, **change))


def test_too_few_words_to_draw_facts_from_is_refused_naming_the_file(shared, sample_docs, tmp_path):
    few = tmp_path / "few.txt"
    few.write_text("Praha leží na řece Vltavě, která teče na sever.\n", encoding="utf-8")  # 2 words fit
    cfg = _job(tmp_path, sample_docs, _generated(shared, facts={"generate": {
        "count": 4, "prompt": "Slovo pana {name} je", "words_from": str(few)}}))
    with pytest.raises(LangadaptError) as caught:
        run_train_job(cfg)
    assert caught.value.where == str(few) and "longer training text" in caught.value.fix
    assert not (tmp_path / "runs" / "probed").exists()  # it failed before any work


def test_a_job_with_generated_sets_writes_them_into_its_run_folder_and_trains(shared, sample_docs, tmp_path):
    cfg = _job(tmp_path, sample_docs, _generated(shared))
    run = run_train_job(cfg).parent
    for probe in cfg.canaries:
        path = run / "canaries" / f"{probe.name}{'.txt' if probe.kind == 'heldout' else '.tsv'}"
        assert path.read_text(encoding="utf-8") == "\n".join(generated_lines(probe)) + "\n"
    inputs = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    assert str(shared("ntrex128", "newstest2019-ref.ces.txt")) in inputs  # words_from and texts_from are hashed
    assert {r["set"] for r in read_inserts(run / "inserts.jsonl")} == {"canaries", "facts", "leak"}
    results = pd.read_parquet(run / "results.parquet")
    assert set(results[results.role == "canary"].metric) >= {"canary_exposure", "fact_margin", "contamination_gap"}
