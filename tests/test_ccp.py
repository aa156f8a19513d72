"""Contrastive context prediction (train/contrastive.py) on real NTREX-128 news text.

Documents are runs of consecutive NTREX lines (one article's sentences, in order). What a user
relies on: positives come from the same document within ±window lines, the CCP loss falls below
chance without collapsing the embeddings, the objective's own
parameters and memory bank are trained and restored exactly on resume, and documents of one
sentence are refused.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from langadapt.config import parse_config
from langadapt.corpus.document import Document, read_lines
from langadapt.errors import LangadaptError
from langadapt.evaluate.embed import mean_pooled
from langadapt.evaluate.retrieval import embedding_variance, lexical_retrieval, retrieval_accuracy
from langadapt.model.build import build_model, load_model
from langadapt.model.config import ModelConfig
from langadapt.train.config import CCPConfig, TrainConfig, TrainJobConfig
from langadapt.train.contrastive import ContextPairs, ContrastiveContext
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint, train
from langadapt.vocab.tokenizer import end_of_text, load_tokenizer, train_bpe

FILES = {"eng": "newstest2019-src.eng.txt", "deu": "newstest2019-ref.deu.txt"}
HELDOUT = 200


def _lines(shared, language):
    return read_lines(shared("ntrex128", FILES[language]))


def _documents(shared, lines_per_doc=6):
    docs = []
    for language in FILES:
        lines = _lines(shared, language)[:-HELDOUT]
        docs += [Document(f"{language}-{i}", "\n".join(lines[i : i + lines_per_doc]), language)
                 for i in range(0, len(lines), lines_per_doc)]
    return docs


def test_the_lexical_reference_finds_translations_by_shared_tokens(shared):
    """tf-idf over tokens, nothing learnt: names and numbers shared across languages find most
    NTREX translations; shuffled, the same texts find almost none."""
    eng, deu = _lines(shared, "eng")[-HELDOUT:], _lines(shared, "deu")[-HELDOUT:]
    tokenizer = train_bpe(eng + deu, 500)
    scores = lexical_retrieval(tokenizer, eng, deu)
    assert set(scores) == {"retrieval_src2tgt", "retrieval_tgt2src"} and min(scores.values()) > 0.3
    assert max(lexical_retrieval(tokenizer, eng, deu[1:] + deu[:1]).values()) < 0.05


def test_positives_are_neighbours_in_the_same_document(shared):
    docs = _documents(shared)[:40]
    tokenizer = train_bpe([d.text for d in docs], 500)
    pairs = ContextPairs(docs, tokenizer, CCPConfig(window=2, max_tokens=512), 64, end_of_text(tokenizer), 0)
    where = {tuple(ids): (d, i) for d, sentences in enumerate(pairs.documents) for i, ids in enumerate(sentences)}
    batch = pairs()
    for row in range(64):
        anchor = batch["input_ids"][row][batch["attention_mask"][row] == 1].tolist()
        positive = batch["positive_ids"][row][batch["positive_mask"][row] == 1].tolist()
        (doc_a, line_a), (doc_p, line_p) = where[tuple(anchor)], where[tuple(positive)]
        assert doc_a == doc_p and 1 <= abs(line_a - line_p) <= 2
        assert pairs.languages[batch["language"][row]] == docs[doc_a].lang


def test_one_sentence_documents_are_refused(shared):
    docs = [Document(f"eng-{i}", line, "eng") for i, line in enumerate(_lines(shared, "eng")[:50])]
    tokenizer = train_bpe([d.text for d in docs], 300)
    with pytest.raises(LangadaptError, match="none of the 50 documents has two sentences"):
        ContextPairs(docs, tokenizer, CCPConfig(), 8, 0, 0)


def test_ccp_loss_falls_below_chance_without_collapse(shared, tmp_path):
    """Through `langadapt train`: interlinear NTREX documents (an English line, its German
    translation, the next English line, ...), so a line's ±1 context holds its translation. With
    in-batch negatives only the loss starts at chance, ln(batch size), and must fall below it
    while the held-out sentence embeddings keep their spread."""
    files = [str(tmp_path / f"{language}.txt") for language in FILES]
    for language, path in zip(FILES, files, strict=True):
        Path(path).write_text("\n".join(_lines(shared, language)[:-HELDOUT]) + "\n", encoding="utf-8")
    cfg = parse_config({
        "name": "ccp", "output_dir": str(tmp_path / "runs"),
        "model": {"n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 64},
        "data": {"vocab_size": 1000, "sources": [{"name": "ntrex", "format": "parallel", "files": files,
                                                  "languages": list(FILES), "pairs_per_document": 4}]},
        "train": {"steps": 40, "batch_size": 32, "lr": 2e-3, "warmup_steps": 5, "checkpoint_every": 0,
                  "objective": "ccp"},
        "ccp": {"window": 1, "bank_size": 0, "temperature": 0.05}}, schema=TrainJobConfig)
    final = run_train_job(cfg)
    log = [json.loads(line)["loss"] for line in (final.parent / "log.jsonl").read_text().splitlines()]
    assert np.mean(log[-5:]) < min(np.mean(log[:5]), np.log(32)) - 0.2, log
    model, tokenizer = load_model(final), load_tokenizer(final.parent / "tokenizer.json")
    held = [_lines(shared, language)[-HELDOUT:] for language in FILES]
    assert embedding_variance(mean_pooled(model, tokenizer, held[0] + held[1])) > 0.01


def test_ccp_retrieval_beats_an_untrained_model(shared, tmp_path):
    """The paper's claim at toy scale: trained only to find a sentence's neighbours within its own
    language's documents (English and German NTREX, nothing parallel), the model retrieves the
    held-out translations better than the same model untrained, whose random embeddings already
    match shared names and numbers. The loss falls well below chance, ln(batch size), and the
    embeddings keep their spread. (In-batch negatives only: at this scale and learning rate the
    memory bank's stale entries cost retrieval, see the README's CCP table.)"""
    docs = _documents(shared, lines_per_doc=8)
    tokenizer = train_bpe([d.text for d in docs], 2000)
    cfg = CCPConfig(window=2, bank_size=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=2, n_embd=64, n_head=2, block_size=64), tokenizer)
    held = [_lines(shared, language)[-HELDOUT:] for language in FILES]

    def accuracy():
        return np.mean(list(retrieval_accuracy(model, tokenizer, *held).values()))

    untrained = accuracy()
    pairs = ContextPairs(docs, tokenizer, cfg, 32, end_of_text(tokenizer), 0)
    log = train(model, pairs, TrainConfig(steps=150, batch_size=32, lr=1e-2, warmup_steps=10), 0,
                tmp_path / "log.jsonl", objective=ContrastiveContext(64, len(pairs.languages), cfg))
    losses = [record["loss"] for record in log]
    assert np.mean(losses[-10:]) < np.log(32) - 1.0, losses
    trained = accuracy()
    assert trained > untrained + 0.015, (untrained, trained)
    assert embedding_variance(mean_pooled(model, tokenizer, held[0] + held[1])) > 0.05


def test_the_objective_trains_and_resumes_exactly(shared, tmp_path):
    """Its projection and batch norm are optimised; a run cut at step 6 and rerun ends where the
    uninterrupted run ends, memory bank included."""
    docs = _documents(shared)[:60]
    tokenizer = train_bpe([d.text for d in docs], 400)
    cfg = CCPConfig(bank_size=16, projection=16, lm_weight=0.5)

    class Interrupted(Exception):
        pass

    def run(folder, stop_at=None):
        torch.manual_seed(7)
        model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=64), tokenizer)
        pairs = ContextPairs(docs, tokenizer, cfg, 8, end_of_text(tokenizer), 0)
        objective = ContrastiveContext(32, len(pairs.languages), cfg)
        start = {k: v.clone() for k, v in objective.state_dict().items()}

        def stop(model):
            if stop_at is not None:
                raise Interrupted
            return {}

        train_cfg = TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup_steps=2, checkpoint_every=5,
                                eval_every=stop_at or 1000)
        log = train(model, pairs, train_cfg, 0, folder / "log.jsonl", evaluate=stop,
                    checkpoint_dir=folder / "checkpoints", objective=objective)
        return log, objective, start

    whole, objective, start = run(tmp_path / "whole")
    assert not torch.equal(objective.projection[0].weight, start["projection.0.weight"])
    assert int(objective.filled.sum()) == 80  # 10 steps × 8 positives went into the banks
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", stop_at=6)
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints").name == "step-0000005"
    resumed, resumed_objective, _ = run(tmp_path / "cut")
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]
    for key, value in objective.state_dict().items():
        assert torch.equal(value, resumed_objective.state_dict()[key]), key
