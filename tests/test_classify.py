"""Fine-tuned classifiers (`langadapt train` with `task:`) on real SIB-200 and UD Maltese data.

Each job trains a few steps of a tiny model, causal or masked, from scratch or from a saved
pretrained folder, fully or with LoRA. What a user relies on: `final/` is a stock transformers
classifier folder that reloads with the predictions the job scored (its accuracy is recomputed
from the reloaded model), the results rows carry the transfer pair, and bad labelled data stops
the job with an error naming the file.
"""

import json
import shutil

import pandas as pd
import pytest
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from langadapt.config import parse_config
from langadapt.data.sib200 import read_topics
from langadapt.errors import LangadaptError
from langadapt.model.build import build_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.train.classify import accuracy, encode, pseudo_labels, read_task
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import load_tokenizer, train_bpe

TINY = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 64}
STEPS = {"steps": 6, "batch_size": 8, "lr": 3e-3, "warmup_steps": 1, "checkpoint_every": 3}


def _job(tmp_path, task: dict, arch: str, method: str = "full", init_from=None) -> TrainJobConfig:
    return parse_config({"name": f"{task['kind']}-{arch}-{method}", "output_dir": str(tmp_path / "runs"),
                         "model": {**TINY, "arch": arch}, "task": {"max_tokens": 48, **task}, "train": STEPS,
                         "method": method, "init_from": init_from}, schema=TrainJobConfig)


def _pretrained(tmp_path, shared, arch: str):
    """A saved tiny LM folder (random weights: what matters here is the path a real base takes)."""
    texts, _ = read_topics(shared("sib200"), "kin_Latn", "train")
    tokenizer = train_bpe(texts, 400)
    return save_model(build_model(ModelConfig(**TINY, arch=arch), tokenizer), tokenizer, tmp_path / f"base-{arch}")


@pytest.mark.parametrize(("kind", "arch", "method", "pretrained"), [
    ("sequence", "gpt2", "full", False),
    ("sequence", "bert", "lora", True),
    ("token", "llama", "lora", True),
    ("token", "bert", "full", False),
])
def test_classifier_exports_to_stock_transformers_and_reloads_with_its_predictions(
        shared, tmp_path, kind, arch, method, pretrained):
    task = ({"kind": "sequence", "data": str(shared("sib200")), "train_language": "kin_Latn",
             "test_languages": ["run_Latn"], "limit": 64} if kind == "sequence"
            else {"kind": "token", "data": str(shared("ud_maltese")), "train_language": "mlt_Latn", "limit": 32})
    cfg = _job(tmp_path, task, arch, method, _pretrained(tmp_path, shared, arch) if pretrained else None)
    final = run_train_job(cfg)
    results = pd.read_parquet(final.parent / "results.parquet")
    head = AutoModelForSequenceClassification if kind == "sequence" else AutoModelForTokenClassification
    reloaded = head.from_pretrained(final, use_safetensors=True)
    assert type(reloaded).__name__.endswith("ForSequenceClassification" if kind == "sequence"
                                            else "ForTokenClassification")
    assert "lora" not in " ".join(name for name, _ in reloaded.named_parameters())  # merged: a plain model
    _, tests, names = read_task(cfg.task)
    assert list(reloaded.config.id2label.values()) == names
    tokenizer = load_tokenizer(final.parent / "tokenizer.json")
    for row in results.itertuples():
        data = encode(cfg.task, tokenizer, tests[row.test_language], names)
        assert accuracy(reloaded, data, reloaded.config.pad_token_id) == pytest.approx(row.value)
    assert list(results.pair) == (["kin_Latn→run_Latn"] if kind == "sequence" else ["mlt_Latn→mlt_Latn"])
    assert set(results.init) == {"pretrained" if pretrained else "scratch"}


def _sib_copy(shared, tmp_path, language="kin_Latn"):
    folder = tmp_path / "sib"
    shutil.copytree(shared("sib200", language), folder / language)
    return folder


def test_a_text_without_a_label_names_its_line(shared, tmp_path):
    folder = _sib_copy(shared, tmp_path)
    path = folder / "kin_Latn" / "train.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[5].split("\t")
    lines[5] = "\t".join([cells[0], "", *cells[2:]])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LangadaptError, match=r"train\.tsv, line 6.*no label"):
        read_topics(folder, "kin_Latn", "train")


def test_a_test_label_the_training_set_lacks_is_refused(shared, tmp_path):
    folder = _sib_copy(shared, tmp_path)
    path = folder / "kin_Latn" / "train.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], *[line for line in lines[1:] if "\tsports\t" not in line]]) + "\n",
                    encoding="utf-8")
    cfg = _job(tmp_path, {"kind": "sequence", "data": str(folder), "train_language": "kin_Latn"}, "gpt2")
    with pytest.raises(LangadaptError, match="labels the training set lacks: sports"):
        read_task(cfg.task)


def test_a_language_absent_from_the_sib200_folder_is_refused(shared, tmp_path):
    cfg = _job(tmp_path, {"kind": "sequence", "data": str(shared("sib200")), "train_language": "kin_Latn",
                          "test_languages": ["xxx_Latn"]}, "gpt2")
    with pytest.raises(LangadaptError, match="'xxx_Latn' has no SIB-200 test split"):
        read_task(cfg.task)


def test_a_job_needs_data_or_a_task():
    with pytest.raises(LangadaptError, match="needs `data`.*or `task`"):
        parse_config({"name": "empty"}, schema=TrainJobConfig)


@pytest.mark.parametrize("mode", ["pretrain", "plain"])
def test_self_training_writes_pseudo_labels_with_the_gold_models_confidence(shared, tmp_path, mode):
    """Stages of one job: gold → pseudo-labels of NTREX Kinyarwanda lines → (fresh model on them →)
    gold again. Each written confidence is the stage-1 model's probability of the written label."""
    task = {"kind": "sequence", "data": str(shared("sib200")), "train_language": "kin_Latn", "limit": 50,
            "unlabelled": [str(shared("ntrex128", "newstest2019-ref.kin.txt"))], "unlabelled_limit": 40,
            "self_training": mode}
    cfg = _job(tmp_path, task, "gpt2")
    final = run_train_job(cfg)
    out = final.parent
    rows = [json.loads(line) for line in (out / "pseudo_labels.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40 and {"text", "label", "confidence"} <= set(rows[0])
    gold = AutoModelForSequenceClassification.from_pretrained(out / "phase1-gold" / "final", use_safetensors=True)
    tokenizer = load_tokenizer(out / "tokenizer.json")
    names = list(gold.config.id2label.values())
    assert {row["label"] for row in rows} <= set(names)
    again = pseudo_labels(gold, tokenizer, [row["text"] for row in rows[:8]], names, gold.config.pad_token_id, 48)
    assert [r["label"] for r in again] == [r["label"] for r in rows[:8]]
    assert [r["confidence"] for r in again] == pytest.approx([r["confidence"] for r in rows[:8]], abs=1e-5)
    assert all(0 < row["confidence"] <= 1 for row in rows)
    assert (out / "phase2-pseudo" / "final").is_dir() == (mode == "pretrain")
    results = pd.read_parquet(out / "results.parquet")
    assert set(results.run) == {"final", "gold-only"}


def test_a_task_job_runs_through_the_job_runner_and_refuses_changed_data(shared, tmp_path):
    """Like every training job: bad data leaves no folder; a finished job records its input hashes
    and status, so a rerun on edited labelled data is refused, naming the file."""
    folder = _sib_copy(shared, tmp_path)
    train = folder / "kin_Latn" / "train.tsv"
    lines = train.read_text(encoding="utf-8").splitlines()
    train.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")  # too few: labels the test set has are missing
    cfg = _job(tmp_path, {"kind": "sequence", "data": str(folder), "train_language": "kin_Latn", "limit": 64}, "gpt2")
    with pytest.raises(LangadaptError, match="labels the training set lacks"):
        run_train_job(cfg)
    out = tmp_path / "runs" / cfg.name
    assert not out.exists()
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_train_job(cfg)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert str(train) in manifest["inputs"] and str(folder / "kin_Latn" / "test.tsv") in manifest["inputs"]
    assert json.loads((out / "status.json").read_text(encoding="utf-8"))["status"] == "completed"
    train.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(LangadaptError, match="train.tsv"):
        run_train_job(cfg)
