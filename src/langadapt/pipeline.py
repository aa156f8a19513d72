"""The experiment: curate → vocab → pretrain → expand + initialise → adapt → evaluate → report.

Each stage is a plain function over paths and a config section; this module only wires them
together in one run folder, in the order a reader would explain the experiment.
"""

from __future__ import annotations

import copy
import itertools
import logging
import shutil
from pathlib import Path

import pandas as pd
import torch
from transformers import PreTrainedModel

from langadapt.atomic import write_with
from langadapt.config import ExperimentConfig
from langadapt.corpus.curate import curate
from langadapt.corpus.document import SPLITS, Document, read_curated, read_documents
from langadapt.corpus.sources import (
    code_files,
    read_code,
    read_jsonl_files,
    read_sample,
    read_text_corpus,
    sample_input_files,
)
from langadapt.data.mixing import interlinear, mixture_probabilities, mixture_sampler
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bpb_evaluator, bpb_rows
from langadapt.evaluate.probes import PROBES, ProbeTask
from langadapt.model.adapters import ADAPTERS, export, save_peft_adapter, trainable_parameters
from langadapt.model.build import build_model, load_model, save_model
from langadapt.report import write_report
from langadapt.runs import Run, file_hash
from langadapt.stages import cached, publish, stage_key
from langadapt.train.loop import train
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.stage import Vocab, build_vocab, init_context, tokenizer_metrics
from langadapt.vocab.train import EOS, load_tokenizer

log = logging.getLogger("langadapt")


def _corpus_files(cfg: ExperimentConfig) -> list[Path]:
    languages = cfg.languages.all
    if cfg.corpus.source == "sample":
        return sample_input_files(languages)
    if cfg.corpus.source == "text":
        return [path for lang in languages for path in cfg.corpus.texts.get(lang, [])]
    if cfg.corpus.source == "curated":
        return [cfg.corpus.files[0] / f"{split}.jsonl" for split in SPLITS]
    return list(cfg.corpus.files)


def _read_corpus(cfg: ExperimentConfig) -> list[Document]:
    languages = cfg.languages.all
    if cfg.corpus.source == "sample":
        return list(read_sample(languages))
    if cfg.corpus.source == "text":
        return list(read_text_corpus(cfg.corpus.texts, languages))
    if cfg.corpus.source == "curated":  # its held-out split stands (corpus.curate.split_heldout)
        return read_curated(cfg.corpus.files[0], languages)
    return list(read_jsonl_files(cfg.corpus.files, languages))


def _evaluate(name: str, model, tokenizer, heldout: dict[str, list[str]], extra: dict) -> list[dict]:
    """One row per (run, language, metric): bpb and bytes per token on held-out text."""
    return [{"run": name, **row, **extra} for row in bpb_rows(model, tokenizer, heldout)]


def run_experiment(cfg: ExperimentConfig) -> Path:
    """Run the whole experiment; return the finished run folder."""
    return _in_run_folder(cfg, _run_stages)


def _in_run_folder(cfg: ExperimentConfig, stages) -> Path:
    """Run `stages(cfg, run)`; a user error removes the folder, any other error marks it failed."""
    run = Run(cfg)
    try:
        folder = stages(cfg, run)
    except LangadaptError:
        run.discard()
        raise
    except BaseException as err:
        run.manifest.update(status="failed", error=repr(err))
        run.save_manifest()
        raise
    return folder


def _curated(cfg: ExperimentConfig, run: Run) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Curate the corpus into the run; return training and held-out texts, by language and document id."""
    log.info("curate: reading %s corpus for %s", cfg.corpus.source, ", ".join(cfg.languages.all))
    corpus_files = _corpus_files(cfg)
    other_files = code_files(cfg.adapt.mix.code_files) if cfg.adapt.mix.code else []
    vectors = cfg.vocab.static_vectors
    run.record_inputs(corpus_files + other_files + ([vectors] if vectors and Path(vectors).is_file() else []))
    out = run.dir / "corpus"
    key = _curate_key(cfg, [run.manifest["inputs"][str(path)] for path in corpus_files])
    reused = cached(_stage_cache(cfg), "curate", key)
    if reused is not None:
        log.info("curate: reusing the corpus curated from the same inputs (%s)", reused)
        shutil.copytree(reused, out)
        run.manifest.setdefault("reused", {})["curate"] = str(reused)
    else:
        curate(cfg.curate, _read_corpus(cfg), cfg.languages.all, out, cfg.seed)
        publish(_stage_cache(cfg), "curate", key, out)
    return _read_curated(out, cfg.languages.all, "train.jsonl"), _read_curated(out, cfg.languages.all, "heldout.jsonl")


def _read_curated(folder: Path, languages: list[str], name: str) -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {lang: {} for lang in languages}
    for doc in read_documents(folder / name):
        texts[doc.lang][doc.id] = doc.text
    return texts


def stage_plan(cfg: ExperimentConfig) -> dict[str, str]:
    """What a run would reuse from the stage cache and what it would compute, without computing:
    each key is known once the stages before it are cached."""
    plan = dict.fromkeys(["curate", "vocab", "pretrain"], "compute")
    curated = cached(_stage_cache(cfg), "curate", _curate_key(cfg, [file_hash(p) for p in _corpus_files(cfg)]))
    vocab = cached(_stage_cache(cfg), "vocab", _vocab_key(cfg, curated)) if curated else None
    if vocab is not None:
        train_texts = _read_curated(curated, cfg.languages.all, "train.jsonl")
        texts = [text for lang in cfg.languages.source for text in train_texts[lang].values()]
        pretrained = cached(_stage_cache(cfg), "pretrain",
                            _pretrain_key(cfg, load_tokenizer(vocab / "source" / "tokenizer.json"), texts))
        plan["pretrain"] = f"reuse {pretrained}" if pretrained else "compute"
    plan.update({stage: f"reuse {folder}" for stage, folder in (("curate", curated), ("vocab", vocab)) if folder})
    return {**plan, "initialise, adapt, evaluate": "compute"}


def _stage_cache(cfg: ExperimentConfig) -> Path:
    return Path(cfg.stage_cache or Path(cfg.output_dir) / ".stages")


def _curate_key(cfg: ExperimentConfig, input_hashes: list[str]) -> str:
    return stage_key({"languages": cfg.languages.model_dump(mode="json"), "curate": cfg.curate.model_dump(mode="json"),
                      "corpus": cfg.corpus.source, "seed": cfg.seed}, (h.encode() for h in input_hashes))


def _vocab_key(cfg: ExperimentConfig, corpus: Path) -> str:
    settings = cfg.vocab.model_dump(mode="json", include={"tokenizer", "source_vocab_size", "target_vocab_size",
                                                         "alpha"})
    return stage_key({"vocab": settings, "languages": cfg.languages.model_dump(mode="json"), "seed": cfg.seed},
                     [file_hash(corpus / "train.jsonl").encode()])


def _vocab(cfg: ExperimentConfig, run: Run, train_texts, heldout, base=None) -> tuple[Vocab, list[dict]]:
    """Train and expand the tokenizers; one results row per (tokenizer, language, metric)."""
    out = run.dir / "vocab"
    key = _vocab_key(cfg, run.dir / "corpus") if base is None else None  # a given base is not cached
    reused = cached(_stage_cache(cfg), "vocab", key) if key else None
    if reused is not None:
        log.info("vocab: reusing the tokenizers trained on the same corpus (%s)", reused)
        run.manifest.setdefault("reused", {})["vocab"] = str(reused)
        base, target = (load_tokenizer(reused / side / "tokenizer.json") for side in ("source", "target"))
    else:
        log.info("vocab: training %s tokenizers and expanding the source vocabulary", cfg.vocab.tokenizer)
        target = None
    vocab = build_vocab(cfg.vocab, train_texts, cfg.languages.source, cfg.languages.target, out, cfg.seed,
                        base=base, target_tok=target)
    if key and reused is None:
        publish(_stage_cache(cfg), "vocab", key, out)
    measured = tokenizer_metrics({"source": vocab.source, "expanded": vocab.expansion.tokenizer}, heldout,
                                 cfg.languages.source[0])
    return vocab, [{"run": f"tokenizer:{row.pop('tokenizer')}", **row, "method": "none", "init": "none",
                    "steps": 0, "trainable_params": 0} for row in measured]


def _initialise(cfg: ExperimentConfig, model, expansion, train_texts, heldout, save_to: Path | None = None):
    """Expand `model` once per configured initialiser; bpb of each before any training."""
    context = init_context(cfg.vocab, expansion, train_texts[cfg.languages.target], cfg.vocab.initialisers,
                           cfg.seed)
    initialised, rows = {}, []
    for init in cfg.vocab.initialisers:
        log.info("vocab: initialising %d new rows with %s", len(expansion.pieces), init)
        expanded = copy.deepcopy(model)
        resize_and_init(expanded, expansion.pieces, init, cfg.seed, **context)
        initialised[init] = expanded
        if save_to is not None:
            save_model(expanded, expansion.tokenizer, save_to / init)
        rows += _evaluate(f"init:{init}", expanded, expansion.tokenizer, heldout,
                          {"method": "none", "init": init, "steps": 0, "trainable_params": 0})
    return initialised, rows


def _write_results(cfg: ExperimentConfig, run: Run, rows: list[dict]) -> Path:
    roles = {lang: ("target" if lang == cfg.languages.target else "source") for lang in cfg.languages.all}
    results = pd.DataFrame(rows)
    results.insert(2, "role", results["language"].map(roles))
    results.insert(0, "experiment", cfg.name)
    write_with(run.dir / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    write_report(results, run.dir / "report")
    return run.finish()


def _pretrain_key(cfg: ExperimentConfig, tokenizer, texts: list[str]) -> str:
    """A content hash of everything the base model depends on: the same key means the same weights."""
    return stage_key({"model": cfg.model.model_dump(mode="json"), "pretrain": cfg.pretrain.model_dump(mode="json"),
                      "seed": cfg.seed}, itertools.chain([tokenizer.to_str().encode()], (t.encode() for t in texts)))


def _pretrained_base(cfg: ExperimentConfig, run: Run, tokenizer, texts: list[str], heldout) -> PreTrainedModel:
    """Pretrain the base model on the source texts, or reuse one pretrained on exactly the same
    inputs by an earlier run in `stage_cache` (default `output_dir/.stages/`): a sweep over
    adaptation settings pretrains once."""
    out = run.dir / "train" / "base"
    key = _pretrain_key(cfg, tokenizer, texts)
    reused = cached(_stage_cache(cfg), "pretrain", key)
    if reused is not None and (reused / "final" / "model.safetensors").is_file():
        log.info("train: reusing the base model pretrained on the same inputs (%s)", reused)
        shutil.copytree(reused, out)
        run.manifest.setdefault("reused", {})["pretrain"] = str(reused)
        return load_model(out / "final")
    log.info("train: pretraining the base model on %s", ", ".join(cfg.languages.source))
    model = build_model(cfg.model, tokenizer)
    sampler = BlockSampler(pack(texts, tokenizer, tokenizer.token_to_id(EOS), cfg.seed), cfg.model.block_size,
                           cfg.pretrain.batch_size, cfg.seed)
    train(model, sampler, cfg.pretrain, cfg.seed, out / "log.jsonl", desc="pretrain base",
          evaluate=bpb_evaluator(tokenizer, heldout))
    save_model(model, tokenizer, out / "final")
    publish(_stage_cache(cfg), "pretrain", key, out)
    return model


def adaptation_texts(cfg: ExperimentConfig, train_by_id: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """The adaptation data by part: the target text, plus replay, interlinear parallel text and
    code as `adapt.mix` asks."""
    mix, target = cfg.adapt.mix, cfg.languages.target
    pivot = mix.pivot or cfg.languages.source[0]
    texts = {"target": list(train_by_id[target].values())}
    if mix.replay:
        texts["replay"] = [text for lang in cfg.languages.source for text in train_by_id[lang].values()]
    if mix.parallel:
        pairs = [(train_by_id[pivot][i], text) for i, text in train_by_id[target].items() if i in train_by_id[pivot]]
        if not pairs:
            raise LangadaptError(f"adapt.mix.parallel needs {pivot} and {target} texts with the same ids; none match",
                                 fix="use a line-parallel corpus (corpus.source: text) or set mix.parallel: 0.")
        texts["parallel"] = list(interlinear(pairs, mix.pairs_per_document))
    if mix.code:
        texts["code"] = [doc.text for doc in read_code(mix.code_files)]
    return texts


def _adaptation_data(cfg: ExperimentConfig, train_by_id: dict[str, dict[str, str]], tokenizer, eos: int):
    """Batches for adaptation: each row's part drawn by its `adapt.mix` weight (the target's is 1)."""
    mix = cfg.adapt.mix
    texts = adaptation_texts(cfg, train_by_id)
    weights = {"target": 1.0, "replay": mix.replay, "parallel": mix.parallel, "code": mix.code}
    shares = mixture_probabilities(dict.fromkeys(texts, 1), weights, None)
    if len(texts) > 1:
        log.info("train: adaptation mixture %s", ", ".join(f"{n} {p:.2f}" for n, p in shares.items()))
    tokens = {name: pack(group, tokenizer, eos, cfg.seed) for name, group in texts.items()}
    return mixture_sampler(tokens, shares, cfg.model.block_size, cfg.adapt.batch_size, cfg.seed)


def _probe_rows(cfg: ExperimentConfig, name: str, model, tokenizer) -> list[dict]:
    """SIB-200 topic accuracy on the target language when `evaluate.sib200` is set."""
    if cfg.evaluate.sib200 is None:
        return []
    task = ProbeTask(cfg.evaluate.sib200, cfg.languages.target, limit=cfg.evaluate.probe_limit)
    return [{"run": name, **row} for row in PROBES["sib200"](model, tokenizer, task)]


def _run_stages(cfg: ExperimentConfig, run: Run) -> Path:
    torch.manual_seed(cfg.seed)
    source, target = cfg.languages.source, cfg.languages.target
    train_by_id, heldout_by_id = _curated(cfg, run)
    train_texts = {lang: list(by_id.values()) for lang, by_id in train_by_id.items()}
    heldout = {lang: list(by_id.values()) for lang, by_id in heldout_by_id.items()}
    vocab, tokenizer_rows = _vocab(cfg, run, train_texts, heldout_by_id)
    source_tok, expansion = vocab.source, vocab.expansion

    source_texts = [text for lang in source for text in train_texts[lang]]
    eos = source_tok.token_to_id(EOS)
    model = _pretrained_base(cfg, run, source_tok, source_texts, heldout)
    rows = _evaluate("base", model, source_tok, heldout,
                     {"method": "none", "init": "none", "steps": cfg.pretrain.steps,
                      "trainable_params": trainable_parameters(model)})
    rows += _probe_rows(cfg, "base", model, source_tok)

    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    initialised, init_rows = _initialise(cfg, model, expansion, train_texts, heldout)
    rows += init_rows

    for method in cfg.adapt.methods:
        log.info("train: adapting to %s with %s", target, method)
        adapted = ADAPTERS[method](copy.deepcopy(initialised[cfg.vocab.train_with]), cfg.adapt.lora, new_ids)
        sampler = _adaptation_data(cfg, train_by_id, expansion.tokenizer, eos)
        out = run.dir / "train" / method
        train(adapted, sampler, cfg.adapt, cfg.seed, out / "log.jsonl", desc=f"adapt {method}",
              evaluate=bpb_evaluator(expansion.tokenizer, heldout))
        rows += _evaluate(method, adapted, expansion.tokenizer, heldout,
                          {"method": method, "init": cfg.vocab.train_with, "steps": cfg.adapt.steps,
                           "trainable_params": trainable_parameters(adapted)})
        rows += _probe_rows(cfg, method, adapted, expansion.tokenizer)
        save_peft_adapter(adapted, out / "adapter")  # the small artefact to share, for peft methods
        save_model(export(adapted), expansion.tokenizer, out / "final")  # merged: loads with stock transformers
    return _write_results(cfg, run, rows + tokenizer_rows)


def run_vocab(cfg: ExperimentConfig, base: Path | None = None) -> Path:
    """`langadapt vocab`: curate, train and expand the tokenizers, measure them, and, given a base
    model folder, initialise its new rows with every configured initialiser (one model folder
    each under vocab/init/, scored by held-out bpb before any training). The run folder is
    `<name>-vocab`, so it never replaces the experiment's own run."""
    return _in_run_folder(cfg.model_copy(update={"name": f"{cfg.name}-vocab"}),
                          lambda cfg, run: _vocab_stages(cfg, run, base))


def _vocab_stages(cfg: ExperimentConfig, run: Run, base: Path | None) -> Path:
    torch.manual_seed(cfg.seed)
    model = base_tok = None
    if base is not None:
        model, base_tok = load_model(base), load_tokenizer(base / "tokenizer.json")
        if model.get_input_embeddings().weight.shape[0] != base_tok.get_vocab_size():
            raise LangadaptError(f"the model in {base} has {model.get_input_embeddings().weight.shape[0]} "
                                 f"embedding rows but its tokenizer {base_tok.get_vocab_size()} tokens",
                                 where=str(base), fix="pass a model folder whose tokenizer matches its embeddings.")
    train_by_id, heldout_by_id = _curated(cfg, run)
    train_texts = {lang: list(by_id.values()) for lang, by_id in train_by_id.items()}
    heldout = {lang: list(by_id.values()) for lang, by_id in heldout_by_id.items()}
    vocab, rows = _vocab(cfg, run, train_texts, heldout_by_id, base=base_tok)
    if model is not None:
        rows += _evaluate("base", model, base_tok, heldout,
                          {"method": "none", "init": "none", "steps": 0, "trainable_params": 0})
        rows += _initialise(cfg, model, vocab.expansion, train_texts, heldout, run.dir / "vocab" / "init")[1]
    return _write_results(cfg, run, rows)
