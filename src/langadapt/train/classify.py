"""`langadapt train` with `task:`: fine-tune a classification head on labelled data.

SIB-200 topics (`kind: sequence`, one label per text) or UD part-of-speech tags (`kind: token`,
one label per word), on a pretrained model folder (`init_from`) or on the same architecture
built from scratch (`model:`, the non-pretrained baseline), trained fully or with LoRA / LayRA
(the head always trains). A sequence task trains on one language and is scored on each test
language, so one job measures cross-lingual transfer (Kinyarwanda → Kirundi); every result row
records its pair. The frozen linear probes (evaluate/probes.py) stay the cheap check; this is the
expensive one, where the model itself learns the task.

The head is transformers' own (`AutoModelFor{Sequence,Token}Classification`), so `final/`
reloads anywhere with the same predictions. A task job runs through the same job runner as
every training job (train/job.py: lock, rerun checks, input hashes, status, overwrite); this
module reads its data (`prepare_task`, before the folder is made) and trains it (`train_task`).
Layout of `<output_dir>/<name>/`:

    config.json  manifest.json  status.json  tokenizer.json  log.jsonl  checkpoints/  final/  results.parquet
    phase1-gold/  pseudo_labels.jsonl  phase2-pseudo/   (self-training, `task.unlabelled`)
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, PreTrainedModel

from langadapt.atomic import write_jsonl, write_with
from langadapt.corpus.document import read_lines
from langadapt.data.labelled import (
    IGNORE,
    Labelled,
    LabelledSampler,
    encode_texts,
    encode_words,
    in_order,
    label_list,
    read_pos,
)
from langadapt.data.packing import Batch
from langadapt.data.sib200 import read_topics
from langadapt.errors import LangadaptError
from langadapt.model.adapters import export
from langadapt.model.base import check_base
from langadapt.model.build import build_model, save_model
from langadapt.model.card import ModelCard
from langadapt.registry import ADAPTERS
from langadapt.train.config import TaskConfig, TrainJobConfig
from langadapt.train.loop import make_accelerator, process_share, train
from langadapt.vocab.tokenizer import as_transformers, end_of_text, load_tokenizer, save_tokenizer, train_bpe

log = logging.getLogger("langadapt")

HEADS = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}
METRICS = {"sequence": "sib200_finetune_acc", "token": "pos_finetune_acc"}
METHODS = ("full", "lora", "layra")  # the head trains beside them; the other methods adapt vocabularies
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")  # Universal Dependencies' part-of-speech tags


def head_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """The head's own cross-entropy (labels -100 take no loss)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def task_language(task: TaskConfig) -> str:
    return task.train_language or Path(task.data).name


def labels_of(task: TaskConfig, examples: list) -> list[str]:
    if task.kind == "sequence":
        return [label for _, label in examples]
    return [tag for sentence in examples for _, tag in sentence]


def read_task(task: TaskConfig) -> tuple[list, dict[str, list], list[str]]:
    """Training examples, test examples per language, and the label names (checked to agree).

    Sequence examples are (text, label), labelled by the training set's topics; token examples
    are sentences of (word, tag), labelled by the 17 universal POS tags (so a small `limit` that
    misses a rare tag still trains a head for it), and their one test set is the treebank's own."""
    if task.kind == "sequence":
        train = list(zip(*read_topics(task.data, task.train_language, "train"), strict=True))[: task.limit]
        tests = {language: list(zip(*read_topics(task.data, language, "test"), strict=True))
                 for language in task.test_languages or [task.train_language]}
        known = labels_of(task, train)
    else:
        train = read_pos(task.data, "train")[: task.limit]
        tests = {task_language(task): read_pos(task.data, "test")}
        known = list(UPOS)
    checked = {f"{language} (test)": labels_of(task, examples) for language, examples in tests.items()}
    if task.kind == "token":
        checked["train"] = labels_of(task, train)
    return train, tests, label_list(known, checked, where=str(task.data))


def texts_of(task: TaskConfig, examples: list) -> list[str]:
    if task.kind == "sequence":
        return [text for text, _ in examples]
    return [" ".join(word for word, _ in sentence) for sentence in examples]


def encode(task: TaskConfig, tokenizer: Tokenizer, examples: list, names: list[str]) -> Labelled:
    encoder = encode_texts if task.kind == "sequence" else encode_words
    return encoder(tokenizer, examples, names, task.max_tokens)


def task_tokenizer(cfg: TrainJobConfig, train_texts: list[str]) -> tuple[Tokenizer, int]:
    """The tokenizer (the base's, a given file, or a BPE trained on the task's text) and its pad id."""
    if cfg.init_from is not None:
        base = check_base(cfg.init_from, cfg.gguf_file, causal=False)  # a classifier takes any encoder or decoder
        tokenizer = Tokenizer.from_str(base.tokenizer.backend_tokenizer.to_str())
        pad = base.config.pad_token_id
        return tokenizer, pad if isinstance(pad, int) else end_of_text(tokenizer, base.config.eos_token_id)
    tokenizer = (load_tokenizer(cfg.task.tokenizer) if cfg.task.tokenizer is not None
                 else train_bpe(train_texts, cfg.task.vocab_size))
    return tokenizer, end_of_text(tokenizer)


def classifier(cfg: TrainJobConfig, tokenizer: Tokenizer, names: list[str], pad_id: int) -> PreTrainedModel:
    """The base with a fresh head of `len(names)` labels, or the same architecture from scratch."""
    head = HEADS[cfg.task.kind]
    labels = {"num_labels": len(names), "id2label": dict(enumerate(names)),
              "label2id": {name: i for i, name in enumerate(names)}}
    if cfg.init_from is not None:
        model = head.from_pretrained(cfg.init_from, gguf_file=cfg.gguf_file, use_safetensors=cfg.gguf_file is None,
                                     trust_remote_code=False, **labels)
    else:
        config = build_model(cfg.model, tokenizer).config
        for key, value in labels.items():
            setattr(config, key, value)
        model = head.from_config(config)
    model.config.pad_token_id = pad_id  # a causal head reads the last token that is not padding
    return model


def adapt(model: PreTrainedModel, cfg: TrainJobConfig) -> PreTrainedModel:
    """`cfg.method` applied to the body; the head's parameters train whatever the method freezes."""
    if cfg.method not in METHODS:
        raise LangadaptError(f"method {cfg.method!r} cannot train a classifier", where=f"training job {cfg.name!r}",
                             fix=f"use one of {', '.join(METHODS)} with `task`.")
    prefix = model.base_model_prefix + "."
    head = [p for name, p in model.named_parameters() if not name.startswith(prefix)]
    adapted = ADAPTERS[cfg.method](model, cfg.lora, [])
    for parameter in head:
        parameter.requires_grad_(True)
    return adapted


@torch.no_grad()
def predictions(model: PreTrainedModel, data: Labelled, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, gold) label ids of every labelled position, in order."""
    model.eval()
    device = next(model.parameters()).device
    predicted, gold = [], []
    for batch in in_order(data, pad_id):
        logits = model(**{key: batch[key].to(device) for key in ("input_ids", "attention_mask")}).logits
        labels = batch["labels"]
        scored = labels != IGNORE
        predicted.append(logits.argmax(-1).cpu()[scored])
        gold.append(labels[scored])
    return torch.cat(predicted), torch.cat(gold)


def accuracy(model: PreTrainedModel, data: Labelled, pad_id: int) -> float:
    predicted, gold = predictions(model, data, pad_id)
    return float((predicted == gold).float().mean())


def result_rows(cfg: TrainJobConfig, model: PreTrainedModel, tests: dict[str, Labelled], pad_id: int,
                n_train: int, run: str = "final") -> list[dict]:
    """One row per test language; `pair` names the transfer (train → test language)."""
    source = task_language(cfg.task)
    return [{"experiment": cfg.name, "run": run, "language": language, "metric": METRICS[cfg.task.kind],
             "value": accuracy(model, data, pad_id), "train_language": source, "test_language": language,
             "pair": f"{source}→{language}", "method": cfg.method, "seed": cfg.seed, "n_train": n_train,
             "init": "pretrained" if cfg.init_from is not None else "scratch", "role": "eval"}
            for language, data in tests.items()]


def fit(cfg: TrainJobConfig, model: PreTrainedModel, data: Labelled, tokenizer: Tokenizer, pad_id: int,
        folder: Path) -> PreTrainedModel:
    """Train `model` on `data` in `folder` (resumable from its checkpoints) and export it to
    `folder/final`; a finished folder is loaded instead."""
    state = make_accelerator()
    final = folder / "final"
    if final.is_dir():
        return HEADS[cfg.task.kind].from_pretrained(final, use_safetensors=True, trust_remote_code=False)
    adapted = adapt(model, cfg)
    rows, seed = process_share(cfg.train.batch_size, cfg.seed, state)
    sampler = LabelledSampler(data, rows, pad_id, seed)
    train(adapted, sampler, cfg.train, cfg.seed, folder / "log.jsonl", desc=f"{cfg.name} {folder.name}",
          checkpoint_dir=folder / "checkpoints", objective=head_loss)
    model = export(adapted)
    card = ModelCard(base=str(cfg.init_from) if cfg.init_from is not None else None, method=cfg.method,
                     languages=[task_language(cfg.task)])
    if state.is_main_process:
        save_model(model, as_transformers(tokenizer), final, card)
    state.wait_for_everyone()
    return model


@torch.no_grad()
def pseudo_labels(model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], names: list[str],
                  pad_id: int, max_tokens: int) -> list[dict]:
    """Each text with the model's label and its confidence (the softmax probability of that label)."""
    model.eval()
    device = next(model.parameters()).device
    data = encode_texts(tokenizer, [(text, names[0]) for text in texts], names, max_tokens)
    rows = []
    for start, batch in zip(range(0, len(texts), 32), in_order(data, pad_id), strict=True):
        probabilities = model(**{key: batch[key].to(device) for key in ("input_ids", "attention_mask")}).logits
        confidence, label = probabilities.float().softmax(-1).max(-1)
        rows += [{"text": text, "label": names[i], "confidence": round(c, 6)}
                 for text, i, c in zip(texts[start : start + 32], label.tolist(), confidence.tolist(), strict=True)]
    return rows


def self_train(cfg: TrainJobConfig, start: PreTrainedModel, gold: Labelled, tokenizer: Tokenizer, pad_id: int,
               names: list[str], out: Path) -> tuple[PreTrainedModel, PreTrainedModel]:
    """Pseudo-label self-training as phases of one job; returns (final model, gold-only model).

    1. `phase1-gold/`: fine-tune on the gold examples; 2. label `task.unlabelled` with it into
    `pseudo_labels.jsonl` (text, label, confidence); 3. `pretrain`: a fresh copy of the starting
    model trains on the pseudo-labels (`phase2-pseudo/`), 4. then on the gold examples again;
    `plain` instead trains the gold model on gold + pseudo-labels."""
    fresh = copy.deepcopy(start)
    gold_model = fit(cfg, start, gold, tokenizer, pad_id, out / "phase1-gold")
    path = out / "pseudo_labels.jsonl"
    if not path.is_file() and make_accelerator().is_main_process:
        texts = [line for file in cfg.task.unlabelled for line in read_lines(file)][: cfg.task.unlabelled_limit]
        write_jsonl(path, pseudo_labels(gold_model, tokenizer, texts, names, pad_id, cfg.task.max_tokens))
    make_accelerator().wait_for_everyone()
    kept = [(row["text"], row["label"]) for row in map(json.loads, read_lines(path))
            if row["confidence"] >= cfg.task.min_confidence]
    if not kept:
        raise LangadaptError(f"no pseudo-label reaches min_confidence {cfg.task.min_confidence}", where=str(path),
                             fix="lower `task.min_confidence`, or give more unlabelled text.")
    pseudo = encode_texts(tokenizer, kept, names, cfg.task.max_tokens)
    if cfg.task.self_training == "plain":
        both = Labelled(gold.ids + pseudo.ids, gold.labels + pseudo.labels)
        return fit(cfg, copy.deepcopy(gold_model), both, tokenizer, pad_id, out), gold_model
    pretrained = fit(cfg, fresh, pseudo, tokenizer, pad_id, out / "phase2-pseudo")
    return fit(cfg, pretrained, gold, tokenizer, pad_id, out), gold_model


@dataclass
class Prepared:
    """A task job's data, read and encoded before its folder is made (bad data leaves nothing behind)."""

    model: PreTrainedModel
    tokenizer: Tokenizer
    pad_id: int
    names: list[str]
    train: Labelled
    tests: dict[str, Labelled]


def prepare_task(cfg: TrainJobConfig) -> Prepared:
    """Read and encode the labelled data and build the model with its fresh head (every process)."""
    train_examples, tests, names = read_task(cfg.task)
    tokenizer, pad_id = task_tokenizer(cfg, texts_of(cfg.task, train_examples))
    torch.manual_seed(cfg.seed)
    model = classifier(cfg, tokenizer, names, pad_id)  # may add a mask token to `tokenizer` (bert)
    return Prepared(model, tokenizer, pad_id, names, encode(cfg.task, tokenizer, train_examples, names),
                    {language: encode(cfg.task, tokenizer, examples, names) for language, examples in tests.items()})


def train_task(cfg: TrainJobConfig, out: Path, data: Prepared) -> Path:
    """Fine-tune (or resume) the classifier in `out` (made by the job runner, train/job.py); score it;
    return its `final/` folder."""
    state = make_accelerator()
    if state.is_main_process:
        save_tokenizer(data.tokenizer, out / "tokenizer.json")
    if cfg.task.unlabelled:
        model, gold_model = self_train(cfg, data.model, data.train, data.tokenizer, data.pad_id, data.names, out)
    else:
        model, gold_model = fit(cfg, data.model, data.train, data.tokenizer, data.pad_id, out), None
    if state.is_main_process and not (out / "results.parquet").is_file():
        rows = result_rows(cfg, model, data.tests, data.pad_id, len(data.train))
        if gold_model is not None:  # the same job's phase 1 alone: the gold-only baseline
            rows += result_rows(cfg, gold_model, data.tests, data.pad_id, len(data.train), run="gold-only")
        results = pd.DataFrame(rows)
        write_with(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    log.info("train: classifier written to %s", out / "final")
    return out / "final"
