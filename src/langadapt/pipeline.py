"""The experiment: curate → vocab → pretrain → expand + initialise → adapt → evaluate → report.

Each stage is a plain function over paths and a config section; this module only wires them
together in one run folder, in the order a reader would explain the experiment.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
import torch

from langadapt.atomic import write_json, write_with
from langadapt.config import ExperimentConfig
from langadapt.corpus.curate import curate
from langadapt.corpus.document import Document
from langadapt.corpus.sources import read_jsonl_files, read_sample, sample_input_files
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.adapters import ADAPTERS, trainable_parameters
from langadapt.model.build import build_gpt2, save_model
from langadapt.report import write_report
from langadapt.runs import Run
from langadapt.train.loop import train
from langadapt.vocab.expand import expand_bpe
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.train import EOS, save_tokenizer, train_bpe

log = logging.getLogger("langadapt")


def _read_corpus(cfg: ExperimentConfig) -> tuple[list[Document], list[Path]]:
    languages = cfg.languages.all
    if cfg.corpus.source == "sample":
        return list(read_sample(languages)), sample_input_files(languages)
    return list(read_jsonl_files(cfg.corpus.files, languages)), list(cfg.corpus.files)


def _heldout_bpb(tokenizer, heldout: dict[str, list[str]]):
    eos = tokenizer.token_to_id(EOS)
    return lambda model: {lang: round(bits_per_byte(model, tokenizer, texts, eos).bpb, 4)
                          for lang, texts in heldout.items()}


def _evaluate(name: str, model, tokenizer, heldout: dict[str, list[str]], extra: dict) -> list[dict]:
    """One row per (run, language, metric): bpb and bytes per token on held-out text."""
    rows = []
    for lang, texts in heldout.items():
        result = bits_per_byte(model, tokenizer, texts, tokenizer.token_to_id(EOS))
        for metric, value in (("bpb", result.bpb), ("bytes_per_token", result.bytes_per_token)):
            rows.append({"run": name, "language": lang, "metric": metric, "value": value, **extra})
    return rows


def run_experiment(cfg: ExperimentConfig) -> Path:
    """Run the whole experiment; return the finished run folder."""
    run = Run(cfg)
    try:
        folder = _run_stages(cfg, run)
    except LangadaptError:
        run.discard()
        raise
    except BaseException as err:
        run.manifest.update(status="failed", error=repr(err))
        run.save_manifest()
        raise
    return folder


def _run_stages(cfg: ExperimentConfig, run: Run) -> Path:
    torch.manual_seed(cfg.seed)
    source, target = cfg.languages.source, cfg.languages.target
    roles = {lang: ("target" if lang == target else "source") for lang in cfg.languages.all}

    log.info("curate: reading %s corpus for %s", cfg.corpus.source, ", ".join(cfg.languages.all))
    docs, input_files = _read_corpus(cfg)
    run.record_inputs(input_files)
    corpus = curate(cfg.curate, docs, cfg.languages.all, run.dir / "corpus", cfg.seed)
    train_texts = {lang: [d.text for d in corpus.train if d.lang == lang] for lang in cfg.languages.all}
    heldout = {lang: [d.text for d in corpus.heldout if d.lang == lang] for lang in cfg.languages.all}

    log.info("vocab: training BPE tokenizers and expanding the source vocabulary")
    source_texts = [text for lang in source for text in train_texts[lang]]
    source_tok = train_bpe(source_texts, cfg.vocab.source_vocab_size)
    target_tok = train_bpe(train_texts[target], cfg.vocab.target_vocab_size)
    expansion = expand_bpe(source_tok, target_tok, cfg.vocab.max_new_tokens)
    vocab_dir = run.dir / "vocab"
    save_tokenizer(source_tok, vocab_dir / "source" / "tokenizer.json")
    save_tokenizer(target_tok, vocab_dir / "target" / "tokenizer.json")
    save_tokenizer(expansion.tokenizer, vocab_dir / "expanded" / "tokenizer.json")
    write_json(vocab_dir / "expansion.json", {
        "source_vocab_size": source_tok.get_vocab_size(),
        "target_vocab_size": target_tok.get_vocab_size(),
        "new_tokens": len(expansion.new_tokens),
        "first_new_id": expansion.first_new_id,
        "examples": [expansion.tokenizer.decode([i]) for i in range(expansion.first_new_id,
                                                                       expansion.first_new_id + 20)],
    })

    log.info("train: pretraining the base model on %s", ", ".join(source))
    eos = source_tok.token_to_id(EOS)
    model = build_gpt2(cfg.model, source_tok)
    sampler = BlockSampler(pack(source_texts, source_tok, eos, cfg.seed), cfg.model.block_size,
                           cfg.pretrain.batch_size, cfg.seed)
    train(model, sampler, cfg.pretrain, cfg.seed, run.dir / "train" / "base" / "log.jsonl",
          desc="pretrain base", evaluate=_heldout_bpb(source_tok, heldout))
    save_model(model, source_tok, run.dir / "train" / "base" / "final")
    rows = _evaluate("base", model, source_tok, heldout,
                     {"method": "none", "init": "none", "steps": cfg.pretrain.steps,
                      "trainable_params": trainable_parameters(model)})

    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    initialised = {}
    for init in cfg.vocab.initialisers:
        expanded = copy.deepcopy(model)
        resize_and_init(expanded, expansion.pieces, init, cfg.seed)
        initialised[init] = expanded
        rows += _evaluate(f"init:{init}", expanded, expansion.tokenizer, heldout,
                          {"method": "none", "init": init, "steps": 0, "trainable_params": 0})

    target_tokens = pack(train_texts[target], expansion.tokenizer, eos, cfg.seed)
    for method in cfg.adapt.methods:
        log.info("train: adapting to %s with %s", target, method)
        adapted = ADAPTERS[method](copy.deepcopy(initialised[cfg.vocab.train_with]), cfg.adapt.lora, new_ids)
        sampler = BlockSampler(target_tokens, cfg.model.block_size, cfg.adapt.batch_size, cfg.seed)
        out = run.dir / "train" / method
        train(adapted, sampler, cfg.adapt, cfg.seed, out / "log.jsonl", desc=f"adapt {method}",
              evaluate=_heldout_bpb(expansion.tokenizer, heldout))
        save_model(adapted, expansion.tokenizer, out / "final")
        rows += _evaluate(method, adapted, expansion.tokenizer, heldout,
                          {"method": method, "init": cfg.vocab.train_with, "steps": cfg.adapt.steps,
                           "trainable_params": trainable_parameters(adapted)})

    results = pd.DataFrame(rows)
    results.insert(2, "role", results["language"].map(roles))
    results.insert(0, "experiment", cfg.name)
    write_with(run.dir / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    write_report(results, run.dir / "report")
    return run.finish()
