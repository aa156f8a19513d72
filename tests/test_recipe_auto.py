"""`vocab.train_with: auto` and `vocab.max_new_tokens: auto` choose what their dev scores say: each
score is recomputed here from the saved models and dev text, independently of the run's own code path,
and the adaptation is checked to start from the chosen initialiser and size."""

import json

import pandas as pd
import pytest
import torch
from test_pipeline import TINY

from langadapt.config import parse_config
from langadapt.corpus.document import read_documents
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.experiment.choices import Choice, dev_ids, short_adaptation
from langadapt.experiment.pipeline import run_experiment
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.build import bounded_sizes
from langadapt.vocab.expand import expand_continued
from langadapt.vocab.init import initialise
from langadapt.vocab.tokenizer import end_of_text, load_tokenizer, train_bpe

TARGET = "hsb_Latn"
INITS = ["random", "mean", "subword-mean"]


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory, sample_docs):
    tmp = tmp_path_factory.mktemp("auto")
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang != TARGET], 700)
    base = save_model(build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32, arch="llama"), tokenizer),
                      tokenizer, tmp / "pretrained")
    cfg = {**TINY, "name": "auto", "output_dir": str(tmp / "runs"), "base": {"model": str(base)},
           "adapt": {**TINY["adapt"], "methods": ["layra"]},
           "vocab": {**TINY["vocab"], "initialisers": INITS, "train_with": "auto", "max_new_tokens": "auto",
                     "new_token_sizes": [8, 40, 100_000], "size_steps": 3, "dev_fraction": 0.2}}
    cfg.pop("pretrain")
    config = parse_config(cfg)
    return run_experiment(config), config


def _split(folder):
    dev = set(json.loads((folder / "vocab" / "dev.json").read_text())["ids"])
    target = {d.id: d.text for d in read_documents(folder / "corpus" / "train.jsonl") if d.lang == TARGET}
    return [t for i, t in target.items() if i not in dev], [t for i, t in target.items() if i in dev]


def _choices(folder) -> dict[str, dict]:
    saved = json.loads((folder / "init" / "selection.json").read_text())
    return {choice["key"]: choice for choice in saved["choices"]}


def test_dev_text_is_held_out_of_the_tokenizer_and_disjoint_from_the_report_text(auto_run):
    folder, _ = auto_run
    fit, dev = _split(folder)
    assert dev and fit and not set(dev) & set(fit)
    heldout = {d.text for d in read_documents(folder / "corpus" / "heldout.jsonl")}
    assert not set(dev) & heldout


def test_train_with_auto_trains_the_initialiser_with_the_best_dev_bpb(auto_run):
    folder, _ = auto_run
    _, dev = _split(folder)
    choice = _choices(folder)["vocab.train_with"]
    assert set(choice["scores"]) == set(INITS)
    for init in INITS:  # each score is the saved initialised model's bpb on the dev text
        model = load_model(folder / "init" / init)
        tokenizer = load_tokenizer(folder / "init" / init / "tokenizer.json")
        assert bits_per_byte(model, tokenizer, dev, end_of_text(tokenizer, model.config.eos_token_id)).bpb \
            == pytest.approx(choice["scores"][init], rel=1e-5)
    assert choice["chosen"] == min(choice["scores"], key=choice["scores"].get)
    results = pd.read_parquet(folder / "results.parquet")
    assert set(results[results.run == "layra"].init) == {choice["chosen"]}
    job = json.loads((folder / "train" / "layra" / "config.json").read_text())
    assert job["init_from"].endswith(f"/init/{choice['chosen']}")


def test_max_new_tokens_auto_keeps_the_size_with_the_best_dev_bpb(auto_run):
    folder, config = auto_run
    fit, dev = _split(folder)
    choice = _choices(folder)["vocab.max_new_tokens"]
    assert list(choice["scores"]) == ["8", "40"]  # 100,000 is more than the text can yield: not tried
    chosen = int(choice["chosen"])
    assert choice["scores"][choice["chosen"]] == min(choice["scores"].values())
    card = json.loads((folder / "init" / "subword-mean" / "langadapt.json").read_text())
    assert len(card["new_ids"]) == chosen
    # one size's score again, from the base: expand, initialise, train the new rows, score on dev
    base_tok = load_tokenizer(folder / "base" / "tokenizer.json")
    expansion = expand_continued(base_tok, fit, 40, config.vocab.min_pair_frequency)
    model = load_model(folder / "base")
    initialise(model, expansion, "subword-mean", config.seed)
    short_adaptation(model, expansion.tokenizer, fit, expansion.new_ids, 3, config.adapt.lr, config.adapt.batch_size,
                     config.model.block_size, config.seed)
    eos = end_of_text(expansion.tokenizer, model.config.eos_token_id)
    assert bits_per_byte(model, expansion.tokenizer, dev, eos).bpb == pytest.approx(choice["scores"]["40"], rel=1e-4)


def test_the_report_shows_each_choice_and_the_size_curve(auto_run):
    folder, _ = auto_run
    tables = (folder / "report" / "tables.md").read_text()
    assert "## Choices on dev text" in tables and "vocab.max_new_tokens" in tables and "vocab.train_with" in tables
    assert (folder / "report" / "sizes.png").is_file()


def test_short_adaptation_moves_only_the_new_rows_and_lowers_their_loss(tokenizers, sample_docs):
    base = tokenizers[0]
    texts = [d.text for d in sample_docs if d.lang == TARGET]
    expansion = expand_continued(base, texts, 30)
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=1, n_embd=32, n_head=2, block_size=32, arch="llama"), base)
    initialise(model, expansion, "mean", 0)
    before = model.get_input_embeddings().weight.detach().clone()
    eos = end_of_text(expansion.tokenizer, model.config.eos_token_id)
    loss_before = bits_per_byte(model, expansion.tokenizer, texts[:200], eos).bpb
    short_adaptation(model, expansion.tokenizer, texts, expansion.new_ids, 15, 1e-2, 8, 32, 0)
    after = model.get_input_embeddings().weight.detach()
    old = expansion.first_new_id
    assert torch.equal(after[:old], before[:old]) and not torch.equal(after[old:], before[old:])
    assert bits_per_byte(model, expansion.tokenizer, texts[:200], eos).bpb < loss_before


def test_dev_ids_are_seeded_and_independent_of_document_order():
    ids = [f"doc{i}" for i in range(50)]
    dev = dev_ids(ids, 0.1, seed=3)
    assert len(dev) == 5 and dev == dev_ids(list(reversed(ids)), 0.1, seed=3) and dev != dev_ids(ids, 0.1, seed=4)
    assert len(dev_ids(ids[:2], 0.9, 0)) == 1  # one document always stays for training
    with pytest.raises(LangadaptError, match="dev_fraction"):
        dev_ids(ids[:1], 0.1, 0)


def test_sizes_beyond_the_data_are_dropped_and_none_left_is_an_error():
    assert bounded_sizes([400, 50, 100, 50], 120) == [50, 100]
    with pytest.raises(LangadaptError, match="new_token_sizes"):
        bounded_sizes([400, 800], 120)


def test_a_tie_goes_to_the_candidate_listed_first():
    assert Choice.best("k", "c", {"50": 2.0, "100": 1.5, "200": 1.5}).chosen == "100"


def test_auto_size_needs_continued_expansion():
    with pytest.raises(LangadaptError, match="max_new_tokens"):
        parse_config({"vocab": {"max_new_tokens": "auto", "expansion": "target-merges"}})
