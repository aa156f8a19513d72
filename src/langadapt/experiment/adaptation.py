"""From the initialised model to the adapted ones: the new rows initialised (and the `auto`
choices made on dev text), the adaptation data mixed, one training job per method, and the
best adaptation exported."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pandas as pd
from transformers import AutoTokenizer

from langadapt.atomic import write_json
from langadapt.config import ExperimentConfig
from langadapt.corpus.document import Document
from langadapt.corpus.sources import read_code
from langadapt.data.config import DataConfig, SourceConfig
from langadapt.data.mixing import interlinear
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bpb_rows
from langadapt.experiment.choices import DEV, SELECTION, Choice, choose_size
from langadapt.experiment.corpus_text import HELDOUT_FILE, read_split, split_texts
from langadapt.experiment.results import NOT_TRAINED, adapted_rows, write_rows
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.registry import phases
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.vocab.build import init_context, load_expansion
from langadapt.vocab.init import initialise as initialise_rows
from langadapt.vocab.tokenizer import as_transformers, load_tokenizer

log = logging.getLogger("langadapt")


def initialise_new_rows(cfg: ExperimentConfig, corpus: Path, vocab: Path, base_model: Path, out: Path) -> None:
    """One model folder per initialiser in `out`, each scored on held-out text before training;
    with an `auto` choice, the size and the initialiser chosen on dev text (`out/SELECTION`)."""
    target, seed = cfg.languages.target, cfg.seed
    by_id = read_split(corpus, "train", [target])[target]
    held = set(json.loads((vocab / DEV).read_text(encoding="utf-8"))["ids"]) if cfg.vocab.chooses else set()
    train_texts = [text for i, text in by_id.items() if i not in held]
    dev = [text for i, text in by_id.items() if i in held]
    choices = []
    if cfg.vocab.max_new_tokens == "auto":
        sizes = json.loads((vocab / "expansion.json").read_text(encoding="utf-8"))["sizes"]
        expansion, choice = choose_size(cfg.vocab, base_model, load_tokenizer(vocab / "source" / "tokenizer.json"),
                                        sizes, train_texts, dev, seed, cfg.adapt, cfg.model.block_size)
        choices.append(choice)
    else:
        expansion = load_expansion(vocab)
    context = init_context(cfg.vocab, expansion, train_texts, cfg.vocab.initialisers, seed)
    tokenizer = as_transformers(expansion.tokenizer, like=AutoTokenizer.from_pretrained(base_model))
    card = dataclasses.replace(read_card(base_model) or ModelCard(), new_ids=expansion.new_ids, languages=[target])
    heldout = split_texts(corpus, "heldout", cfg.languages.all)
    rows, dev_scores = [], {}
    for init in cfg.vocab.initialisers:  # one model in memory at a time
        log.info("vocab: initialising %d new rows with %s", len(expansion.pieces), init)
        model = load_model(base_model)
        initialise_rows(model, expansion, init, seed, **context)
        save_model(model, tokenizer, out / init, dataclasses.replace(card, initialiser=init))
        rows += [{"run": f"init:{init}", **row, **NOT_TRAINED, "init": init}
                 for row in bpb_rows(model, expansion.tokenizer, heldout)]
        if dev:
            dev_scores[init] = bpb_rows(model, expansion.tokenizer, {target: dev})[0]["value"]
        del model
    if cfg.vocab.train_with == "auto":
        choices.append(Choice.best("vocab.train_with", "dev bpb of the target before training", dev_scores))
    if choices:
        write_json(out / SELECTION, {"dev_documents": len(dev), "dev_fraction": cfg.vocab.dev_fraction,
                                     "new_tokens": len(expansion.new_tokens),
                                     "choices": [choice.as_dict() for choice in choices]})
    write_rows(out / "results.parquet", rows)


def adaptation_documents(cfg: ExperimentConfig, train_by_id: dict[str, dict[str, str]]) -> dict[str, list[Document]]:
    """The adaptation data by part: the target text, plus replay, interlinear parallel text and
    code as `adapt.mix` asks."""
    mix, target = cfg.adapt.mix, cfg.languages.target
    pivot = mix.pivot or cfg.languages.source[0]
    parts = {"target": [Document(i, text, target) for i, text in train_by_id[target].items()]}
    if mix.replay:
        parts["replay"] = [Document(i, text, lang) for lang in cfg.languages.source
                           for i, text in train_by_id[lang].items()]
    if mix.parallel:
        pairs = [(train_by_id[pivot][i], text) for i, text in train_by_id[target].items() if i in train_by_id[pivot]]
        if not pairs:
            raise LangadaptError(f"adapt.mix.parallel needs {pivot} and {target} texts with the same ids; none match",
                                 fix="use a line-parallel corpus (corpus.source: text) or set mix.parallel: 0.")
        parts["parallel"] = [Document(f"parallel:{i}", text, target)
                             for i, text in enumerate(interlinear(pairs, mix.pairs_per_document))]
    if mix.code:
        parts["code"] = read_code(mix.code_files)
    return parts




def adaptation_job(cfg: ExperimentConfig, method: str, inputs: dict[str, Path], out: Path) -> TrainJobConfig:
    """One adaptation method as a training job: the mixture's parts (`inputs["data"]`) as weighted
    sources, the initialised model (`inputs["init"]`) as `init_from`, held-out text of every
    language (`inputs["corpus"]`) scored as it trains."""
    weights = {"target": 1.0, "replay": cfg.adapt.mix.replay, "parallel": cfg.adapt.mix.parallel,
               "code": cfg.adapt.mix.code}
    parts = [name for name in weights if (inputs["data"] / f"{name}.jsonl").is_file()]
    sources = [SourceConfig(name=name, files=[inputs["data"] / f"{name}.jsonl"], weight=weights[name])
               for name in parts]
    experts = cfg.adapt.lora.expert_languages
    return TrainJobConfig(
        name=out.name, output_dir=out.parent, seed=cfg.seed,
        init_from=inputs["init"] / trained_with(cfg, inputs["init"]),
        model=cfg.model, method=method, lora=cfg.adapt.lora,
        train=TrainConfig(**{**cfg.adapt.model_dump(include=set(TrainConfig.model_fields)), "phase_lr": {
            stage: lr for stage, lr in cfg.adapt.phase_lr.items() if stage in phases(method)}}),
        data=DataConfig(sources=sources, control_tokens=["lang"] if experts else [],
                        eval_files=dict.fromkeys(cfg.languages.all, inputs["corpus"] / HELDOUT_FILE)))


def trained_with(cfg: ExperimentConfig, init: Path) -> str:
    """The initialiser the adaptations start from: `vocab.train_with`, or the one `auto` chose
    (recorded in the init stage's folder `init`)."""
    if cfg.vocab.train_with != "auto":
        return cfg.vocab.train_with
    choices = json.loads((init / SELECTION).read_text(encoding="utf-8"))["choices"]
    return next(choice["chosen"] for choice in choices if choice["key"] == "vocab.train_with")


def best_method(cfg: ExperimentConfig, jobs: dict[str, Path]) -> str:
    """The adaptation with the lowest held-out bpb on the target language (its job's own scores)."""
    rows = pd.DataFrame(sum((adapted_rows(cfg, method, job) for method, job in jobs.items()), []))
    target = rows[(rows.metric == "bpb") & (rows.language == cfg.languages.target)]
    return str(target.sort_values("value").iloc[0]["method"]) if not target.empty else cfg.adapt.methods[0]


def export_adapted(cfg: ExperimentConfig, jobs: dict[str, Path], out: Path) -> dict:
    """`export:`: write the chosen adapted model (of the adaptation `jobs`' folders) in each format
    into `out`, and `out/export.json` (method, files relative to the run folder, the GGUF round
    trip) for the report."""
    from langadapt.model.export import export_model

    method = cfg.export.method or best_method(cfg, jobs)
    final = jobs[method] / "final"
    names = {"hf": "hf", "merged": "merged", "gguf": f"{cfg.name}-{method.replace('+', '-')}.{cfg.export.quant}.gguf"}
    files = {}
    for to in cfg.export.to:
        log.info("export: %s as %s", method, to)
        done = export_model(final, to, out / names[to], cfg.export.quant, check=cfg.export.check)
        files[to] = {"path": str(Path(out.name) / names[to]), "method": method,
                     "quant": cfg.export.quant if to == "gguf" else None,
                     "check": str(done.check) if done.check is not None else None,
                     "same_ids": done.check.same_ids if done.check is not None else None,
                     "max_abs_logit_diff": done.check.max_abs_logit_diff if done.check is not None else None,
                     "top1_agreement": done.check.top1_agreement if done.check is not None else None}
    summary = {"method": method, "files": files}
    write_json(out / "export.json", summary)
    return summary
