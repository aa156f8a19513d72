"""An experiment that starts from a pretrained model folder: its own tokenizer is expanded, every
initialiser scored, every method trained as a job from the initialised folder, all in one run."""

import json
from pathlib import Path

import pandas as pd
import pytest
from test_pipeline import TINY

from langadapt.config import parse_config
from langadapt.experiment.pipeline import run_experiment
from langadapt.model.build import build_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.tokenizer import train_bpe

METHODS = ["full", "layra", "embeddings+layra"]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, sample_docs):
    tmp = tmp_path_factory.mktemp("base")
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang != "hsb_Latn"], 700)
    base = save_model(build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32, arch="llama"), tokenizer),
                      tokenizer, tmp / "pretrained")
    cfg = {**TINY, "name": "from-base", "output_dir": str(tmp / "runs"), "base": {"model": str(base)},
           "adapt": {**TINY["adapt"], "methods": METHODS, "phase_lr": {"embeddings": 1e-2}},
           "vocab": {**TINY["vocab"], "initialisers": ["subword-mean"]}, "export": {"to": ["merged", "gguf"]}}
    cfg.pop("pretrain")
    return run_experiment(parse_config(cfg)), tokenizer


def test_the_base_is_expanded_initialised_and_adapted_in_one_run(base_run):
    folder, tokenizer = base_run
    assert not (folder / "train" / "base").exists()  # nothing pretrained
    expansion = json.loads((folder / "vocab" / "expansion.json").read_text())
    assert expansion["first_new_id"] == tokenizer.get_vocab_size() and expansion["new_tokens"] > 0
    results = pd.read_parquet(folder / "results.parquet")
    bpb = results[results.metric == "bpb"].set_index(["run", "language"]).value
    assert {"base", "init:subword-mean", *METHODS} <= set(results.run)
    for method in METHODS:  # each adaptation learned the target, which the base never saw
        assert bpb[method, "hsb_Latn"] < bpb["init:subword-mean", "hsb_Latn"]
    card = json.loads((folder / "init" / "subword-mean" / "langadapt.json").read_text())
    assert card["new_ids"][0] == expansion["first_new_id"] and len(card["new_ids"]) == expansion["new_tokens"]
    assert card["initialiser"] == "subword-mean"
    staged = json.loads((folder / "train" / "embeddings+layra" / "trainable.json").read_text())
    assert staged["embeddings"] < staged["layra"]


def test_the_best_adapted_model_is_exported_and_the_report_says_where(base_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = base_run
    results = pd.read_parquet(folder / "results.parquet")
    target = results[(results.metric == "bpb") & (results.language == "hsb_Latn") & results.run.isin(METHODS)]
    best = target.sort_values("value").iloc[0].run
    summary = json.loads((folder / "export" / "export.json").read_text())
    assert summary["method"] == best
    gguf = folder / summary["files"]["gguf"]["path"]
    assert gguf.is_file() and summary["files"]["gguf"]["same_ids"]
    assert summary["files"]["gguf"]["max_abs_logit_diff"] < 5e-3
    merged = folder / summary["files"]["merged"]["path"]
    text = "Hornjoserbšćina je zapadosłowjanska rěč."
    assert AutoTokenizer.from_pretrained(merged)(text).input_ids == \
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)(text).input_ids
    assert AutoModelForCausalLM.from_pretrained(merged).config.vocab_size > 700  # the expanded vocabulary
    assert str(Path("export") / gguf.name) in (folder / "report" / "tables.md").read_text()
