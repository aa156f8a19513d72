"""`langadapt vocab CONFIG --base MODEL`: train, measure, expand, initialise into a run folder."""

import json

import pandas as pd
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.model.build import build_gpt2, save_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.tokenizer import load_tokenizer, train_bpe

LANGS = ["ces_Latn", "pol_Latn", "hsb_Latn"]
INITS = ["mean", "focus", "ofa", "cw2v"]


@pytest.fixture(scope="module")
def vocab_run(tmp_path_factory, sample_docs):
    """A small real corpus (400 sample entries per language), a base model and the vocab run."""
    tmp = tmp_path_factory.mktemp("vocab")
    corpus = tmp / "corpus.jsonl"
    kept = [d for lang in LANGS for d in [d for d in sample_docs if d.lang == lang][:400]]
    corpus.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in kept), encoding="utf-8")
    base_tok = train_bpe([d.text for d in kept if d.lang != "hsb_Latn"], 500)
    base = save_model(build_gpt2(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), base_tok),
                      base_tok, tmp / "base")
    config = tmp / "exp.yaml"
    config.write_text(yaml.safe_dump({
        "name": "v", "output_dir": str(tmp / "runs"),
        "languages": {"source": LANGS[:2], "target": "hsb_Latn"},
        "corpus": {"source": "jsonl", "files": [str(corpus)]},
        "vocab": {"target_vocab_size": 400, "max_new_tokens": 80, "initialisers": INITS, "train_with": "focus",
                  "ofa_rank": 8, "static_dim": 16},
    }))
    result = CliRunner().invoke(app, ["vocab", str(config), "--base", str(base)])
    assert result.exit_code == 0, result.output
    return tmp / "runs" / "v-vocab", base_tok, config


def test_vocab_run_measures_every_language_with_both_tokenizers(vocab_run):
    folder, _, _ = vocab_run
    results = pd.read_parquet(folder / "results.parquet")
    fertility = results[results.metric == "fertility"].set_index(["run", "language"]).value
    assert set(fertility.index) == {(f"tokenizer:{t}", lang) for t in ("source", "expanded") for lang in LANGS}
    assert fertility["tokenizer:expanded", "hsb_Latn"] < fertility["tokenizer:source", "hsb_Latn"]
    parity = results[results.metric == "parity"].set_index(["run", "language"]).value
    assert parity["tokenizer:source", "ces_Latn"] == 1.0  # the pivot is the first source language
    report = (folder / "report" / "tables.md").read_text()
    assert f"{fertility['tokenizer:expanded', 'hsb_Latn']:.3f}" in report
    assert (folder / "report" / "fertility.png").stat().st_size > 0


def test_every_initialiser_writes_a_stock_loadable_model_scored_at_step_0(vocab_run):
    folder, base_tok, _ = vocab_run
    expansion = json.loads((folder / "vocab" / "expansion.json").read_text())
    assert expansion["first_new_id"] == base_tok.get_vocab_size() and expansion["new_tokens"] > 0
    rows = {}
    for init in INITS:
        model = AutoModelForCausalLM.from_pretrained(folder / "init" / init, use_safetensors=True)
        weight = model.get_input_embeddings().weight
        assert weight.shape[0] == base_tok.get_vocab_size() + expansion["new_tokens"]
        rows[init] = weight[expansion["first_new_id"]:].detach()
    assert not torch.allclose(rows["focus"], rows["mean"]) and not torch.allclose(rows["cw2v"], rows["ofa"])
    bpb = pd.read_parquet(folder / "results.parquet").query("metric == 'bpb'")
    assert set(bpb.run) == {"base", *(f"init:{i}" for i in INITS)}
    assert bpb.value.between(0, 16).all()


def test_expanding_a_bpe_base_with_unigram_merges_is_one_paragraph_error(vocab_run, tmp_path):
    _, _, config = vocab_run
    data = yaml.safe_load(config.read_text())
    data["vocab"] |= {"tokenizer": "unigram", "expansion": "target-merges"}
    data["output_dir"] = str(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    base = config.parent / "base"
    result = CliRunner().invoke(app, ["vocab", str(bad), "--base", str(base)])
    assert result.exit_code == 2 and "cannot expand a BPE tokenizer with a Unigram one" in result.output
    assert not list(tmp_path.glob("v-vocab*"))


def test_vocab_command_has_help():
    result = CliRunner().invoke(app, ["vocab", "--help"])
    assert result.exit_code == 0 and "--base" in result.output


def test_expansion_report_shows_how_each_language_uses_the_new_tokens(vocab_run):
    folder, _, _ = vocab_run
    results = pd.read_parquet(folder / "results.parquet")
    expanded = results[results.run == "tokenizer:expanded"].set_index(["language", "metric"]).value
    for lang in LANGS:
        assert {"new_tokens_used", "new_token_rate", "bytes_per_token_change"} <= set(expanded[lang].index)
    assert expanded["hsb_Latn", "new_token_rate"] > max(expanded[lang, "new_token_rate"] for lang in LANGS[:2])
    assert expanded["hsb_Latn", "bytes_per_token_change"] > 0.1
    page = (folder / "report" / "index.html").read_text(encoding="utf-8")
    assert "Vocabulary expansion" in page and f"{expanded['hsb_Latn', 'new_tokens_used']:.4f}" in page


def test_replace_mode_transplants_the_base_model_onto_a_new_tokenizer(vocab_run, tmp_path):
    _, base_tok, config = vocab_run
    data = yaml.safe_load(config.read_text())
    data["vocab"] |= {"mode": "replace", "replace_vocab_size": 500, "initialisers": ["subword-mean", "omp"],
                      "train_with": "omp"}
    data["output_dir"] = str(tmp_path)
    replace = tmp_path / "replace.yaml"
    replace.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["vocab", str(replace), "--base", str(config.parent / "base")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "v-vocab"
    summary = json.loads((folder / "vocab" / "expansion.json").read_text())
    assert summary["mode"] == "replace" and 0 < summary["new_tokens"] < 500
    tokenizer = load_tokenizer(folder / "vocab" / "expanded" / "tokenizer.json")
    for init in ("subword-mean", "omp"):
        model = AutoModelForCausalLM.from_pretrained(folder / "init" / init, use_safetensors=True)
        assert model.get_input_embeddings().weight.shape[0] == tokenizer.get_vocab_size() == 500
        assert load_tokenizer(folder / "init" / init / "tokenizer.json").get_vocab() == tokenizer.get_vocab()
    results = pd.read_parquet(folder / "results.parquet")
    bpb = results.query("metric == 'bpb'").set_index("run").value
    assert {"base", "init:subword-mean", "init:omp"} <= set(bpb.index) and bpb.between(0, 16).all()
    rate = results.query("run == 'tokenizer:expanded' and metric == 'bytes_per_token_change'")
    assert rate.set_index("language").value["hsb_Latn"] > 0
