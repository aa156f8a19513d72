"""An experiment that starts from a pretrained model folder: its own tokenizer is expanded, every
initialiser scored, every method trained as a job from the initialised folder, all in one run."""

import json

import pandas as pd
import pytest
from test_pipeline import TINY

from langadapt.config import ModelConfig, parse_config
from langadapt.model.build import build_model, save_model
from langadapt.pipeline import run_experiment
from langadapt.vocab.train import train_bpe

METHODS = ["full", "layra", "embeddings+layra"]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, sample_docs):
    tmp = tmp_path_factory.mktemp("base")
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang != "hsb_Latn"], 700)
    base = save_model(build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32, arch="llama"), tokenizer),
                      tokenizer, tmp / "pretrained")
    cfg = {**TINY, "name": "from-base", "output_dir": str(tmp / "runs"), "base": {"model": str(base)},
           "adapt": {**TINY["adapt"], "methods": METHODS, "stage_lr": {"embeddings": 1e-2}},
           "vocab": {**TINY["vocab"], "initialisers": ["subword-mean"]}}
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
