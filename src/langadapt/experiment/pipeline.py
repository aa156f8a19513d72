"""The experiment as a list of stages, compiled from its config and run by `stages.run_stages`:

    curate → [base: import a pretrained model] → vocab → [pretrain: a training job] → init
      → mix → adapt:<method> (one training job per method) → evaluate → [export] → report

Every stage is a function that fills one folder of the run from the folders of the stages
before it; the runner owns caching, resume and the manifest. Training is always a training
job (`train/job.py`), as in nanoGPT fine-tuning is `init_from` on the same loop: pretraining
is a job on the source languages, each adaptation a job whose `init_from` is the initialised
model folder (its `langadapt.json` names the new rows). So checkpoints, exact resume, staged
methods, expert routing and `accelerate launch` hold for experiments as for `langadapt train`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from langadapt.atomic import write_json, write_jsonl, write_with
from langadapt.config import ExperimentConfig
from langadapt.corpus.curate import curate, training_and_heldout
from langadapt.corpus.document import SPLITS, Document, read_curated, read_documents
from langadapt.corpus.sources import (
    code_files,
    read_code,
    read_jsonl_files,
    read_sample,
    read_text_corpus,
    sample_input_files,
)
from langadapt.data.config import DataConfig, SourceConfig
from langadapt.data.mixing import interlinear
from langadapt.errors import Interrupted, LangadaptError
from langadapt.evaluate.bpb import bpb_rows
from langadapt.evaluate.probes import ProbeTask
from langadapt.experiment.run_folder import Run
from langadapt.experiment.stages import Stage, plan, run_stages
from langadapt.lock import hold
from langadapt.model.base import check_base, import_base
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.provenance import file_hash
from langadapt.registry import PROBES, stages
from langadapt.report import write_report
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.init import initialise as initialise_rows
from langadapt.vocab.select import DEV, SELECTION, Choice, choose_size, dev_ids
from langadapt.vocab.stage import build_vocab, init_context, load_expansion, tokenizer_metrics
from langadapt.vocab.tokenizer import as_transformers, load_tokenizer

log = logging.getLogger("langadapt")

HELD_OUT, TRAIN = "corpus/heldout.jsonl", "corpus/train.jsonl"
IDENTIFIED = "corpus-identified"  # curate.engine datatrove: language ID and dedup, before the filters
NOT_TRAINED = {"method": "none", "init": "none", "steps": 0, "trainable_params": 0}


def run_experiment(cfg: ExperimentConfig) -> Path:
    """Run (or resume) the whole experiment; return the finished run folder."""
    return _in_run_folder(cfg, compile_stages)


def run_vocab(cfg: ExperimentConfig, base: Path | None = None) -> Path:
    """`langadapt vocab`: curate, train and expand the tokenizers, measure them, and, given a base
    model folder, initialise its new rows with every configured initialiser (one model folder
    each under init/, scored by held-out bpb before any training). The run folder is
    `<name>-vocab`, so it never replaces the experiment's own run."""
    update = {"name": f"{cfg.name}-vocab"}
    if base is not None:
        update["base"] = {"model": base}
    cfg = ExperimentConfig.model_validate({**cfg.model_dump(), **update})
    return _in_run_folder(cfg, lambda cfg, folder: compile_stages(cfg, folder, adapt=False))


def stage_plan(cfg: ExperimentConfig) -> dict[str, str]:
    """What a run would reuse from the stage cache, resume or compute, without computing."""
    folder = Path(cfg.output_dir) / f"{cfg.name}.incomplete"
    return plan(compile_stages(cfg, folder), _stage_cache(cfg), Run.finished_stages(folder, cfg))


def _in_run_folder(cfg: ExperimentConfig, compile) -> Path:
    """Run the compiled stages in the run folder. A user error removes the folder (the fix changes
    the config, so nothing in it could be resumed; finished cacheable stages stay in the stage
    cache); any other error or a kill leaves it, so a rerun of the same config resumes it."""
    stages = compile(cfg, Path(cfg.output_dir) / f"{cfg.name}.incomplete")
    with hold(Path(cfg.output_dir) / cfg.name):  # one process per run folder
        run = Run(cfg)
        try:
            run.record_inputs(input_files(cfg))
            torch.manual_seed(cfg.seed)
            run_stages(stages, run, _stage_cache(cfg))
        except (KeyboardInterrupt, Interrupted):  # before LangadaptError: an interrupted run is kept
            run.fail("interrupted")
            done = ", ".join(run.manifest.get("stages", {})) or "none"
            raise Interrupted(f"stopped in {run.dir} (finished stages: {done}); a rerun continues from the "
                              "first unfinished one") from None
        except LangadaptError:
            run.discard()
            raise
        except BaseException as err:
            run.fail(repr(err))
            raise
        return run.finish()


def _stage_cache(cfg: ExperimentConfig) -> Path:
    return Path(cfg.stage_cache or Path(cfg.output_dir) / ".stages")


def _corpus_files(cfg: ExperimentConfig) -> list[Path]:
    languages = cfg.languages.all
    heldout = [path for lang in languages for path in cfg.corpus.heldout.get(lang, [])]
    if cfg.corpus.source == "sample":
        return sample_input_files(languages) + heldout
    if cfg.corpus.source == "text":
        return [path for lang in languages for path in cfg.corpus.texts.get(lang, [])] + heldout
    if cfg.corpus.source == "curated":
        return [cfg.corpus.files[0] / f"{split}.jsonl" for split in SPLITS] + heldout
    return list(cfg.corpus.files) + heldout


def input_files(cfg: ExperimentConfig) -> list[Path]:
    """The files an experiment reads, whose hashes its manifest records."""
    other = code_files(cfg.adapt.mix.code_files) if cfg.adapt.mix.code else []
    vectors = cfg.vocab.static_vectors
    return _corpus_files(cfg) + other + ([vectors] if vectors and Path(vectors).is_file() else [])


def _read_corpus(cfg: ExperimentConfig) -> list[Document]:
    languages = cfg.languages.all
    if cfg.corpus.source == "sample":
        return list(read_sample(languages))
    if cfg.corpus.source == "text":
        return list(read_text_corpus(cfg.corpus.texts, languages))
    if cfg.corpus.source == "curated":  # its held-out split stands (corpus.curate.split_heldout)
        return read_curated(cfg.corpus.files[0], languages)
    return list(read_jsonl_files(cfg.corpus.files, languages))


def read_split(corpus_file: Path, languages: list[str]) -> dict[str, dict[str, str]]:
    """A curated split as texts by language and document id."""
    texts: dict[str, dict[str, str]] = {lang: {} for lang in languages}
    for doc in read_documents(corpus_file):
        if doc.lang in texts:
            texts[doc.lang][doc.id] = doc.text
    return texts


def _texts(corpus_file: Path, languages: list[str]) -> dict[str, list[str]]:
    return {lang: list(by_id.values()) for lang, by_id in read_split(corpus_file, languages).items()}


def compile_stages(cfg: ExperimentConfig, folder: Path, adapt: bool = True) -> list[Stage]:
    """The experiment's stages, in order, writing into the run folder `folder`."""
    languages, source, target, seed = cfg.languages.all, cfg.languages.source, cfg.languages.target, cfg.seed
    if cfg.base is not None:  # every problem with the base stops the run before any work
        # training blocks must fit the model's positions; `langadapt vocab` (adapt off) trains nothing
        check_base(cfg.base.folder, cfg.base.gguf_file, block_size=cfg.model.block_size if adapt else None)
    base_model = folder / ("base" if cfg.base is not None else "train/base/final")
    heldout = {lang: folder / HELD_OUT for lang in languages}

    def evaluation() -> list[Document] | None:
        return list(read_text_corpus(cfg.corpus.heldout, languages)) if cfg.corpus.heldout else None

    def identify(out: Path) -> None:
        log.info("curate: language ID and dedup of the %s corpus for %s", cfg.corpus.source, ", ".join(languages))
        from langadapt.corpus.curation import identify_documents

        train, _ = training_and_heldout(cfg.curate, _read_corpus(cfg), languages, seed, evaluation())
        identify_documents(cfg.curate, train, languages, out)

    def curate_corpus(out: Path) -> None:
        log.info("curate: reading %s corpus for %s", cfg.corpus.source, ", ".join(languages))
        if cfg.curate.engine != "datatrove":
            curate(cfg.curate, _read_corpus(cfg), languages, out, seed, evaluation())
            return
        from langadapt.corpus.curation import curate_documents

        train, heldout = training_and_heldout(cfg.curate, _read_corpus(cfg), languages, seed, evaluation())
        curate_documents(cfg.curate, train, heldout, languages, out, folder / IDENTIFIED)

    def import_once(out: Path) -> None:
        log.info("base: importing %s", cfg.base.folder / (cfg.base.gguf_file or ""))
        import_base(cfg.base.folder, cfg.base.gguf_file, out)

    def expand_vocab(out: Path) -> None:
        base_tok = load_tokenizer(folder / "base" / "tokenizer.json") if cfg.base is not None else None
        texts = _texts(folder / TRAIN, languages)
        if cfg.vocab.chooses:  # dev text for the `auto` choices, kept out of the tokenizer's merges
            by_id = read_split(folder / TRAIN, [target])[target]
            dev = dev_ids(list(by_id), cfg.vocab.dev_fraction, seed)
            write_json(out / DEV, {"fraction": cfg.vocab.dev_fraction, "ids": dev, "documents": len(dev),
                                   "of": len(by_id)})
            texts[target] = [text for i, text in by_id.items() if i not in set(dev)]
        vocab = build_vocab(cfg.vocab, texts, source, target, out, seed, base=base_tok)
        measured = tokenizer_metrics({"source": vocab.source, "expanded": vocab.expansion.tokenizer},
                                     read_split(folder / HELD_OUT, languages), source[0], vocab.expansion)
        rows = [{"run": f"tokenizer:{row.pop('tokenizer')}", **row, **NOT_TRAINED} for row in measured]
        _write_rows(out / "results.parquet", rows)

    def pretrain(out: Path) -> None:
        log.info("train: pretraining the base model on %s", ", ".join(source))
        run_train_job(TrainJobConfig(
            name=out.name, output_dir=out.parent, seed=seed, model=cfg.model, train=cfg.pretrain, method="full",
            data=DataConfig(sources=[SourceConfig(name="source", files=[folder / TRAIN], languages=source)],
                            tokenizer=str(folder / "vocab" / "source" / "tokenizer.json"), eval_files=heldout)))

    def initialise(out: Path) -> None:
        expansion = load_expansion(folder / "vocab")
        by_id = read_split(folder / TRAIN, [target])[target]
        held = set(json.loads((folder / "vocab" / DEV).read_text(encoding="utf-8"))["ids"]) if cfg.vocab.chooses \
            else set()
        train_texts = [text for i, text in by_id.items() if i not in held]
        dev = [text for i, text in by_id.items() if i in held]
        choices = []
        if cfg.vocab.max_new_tokens == "auto":
            sizes = json.loads((folder / "vocab" / "expansion.json").read_text(encoding="utf-8"))["sizes"]
            expansion, choice = choose_size(cfg.vocab, base_model, load_tokenizer(folder / "vocab" / "source" /
                                            "tokenizer.json"), sizes, train_texts, dev, seed, cfg.adapt,
                                            cfg.model.block_size)
            choices.append(choice)
        context = init_context(cfg.vocab, expansion, train_texts, cfg.vocab.initialisers, seed)
        tokenizer = as_transformers(expansion.tokenizer, like=AutoTokenizer.from_pretrained(base_model))
        card = dataclasses.replace(read_card(base_model) or ModelCard(), new_ids=expansion.new_ids, languages=[target])
        rows, dev_scores = [], {}
        for init in cfg.vocab.initialisers:  # one model in memory at a time
            log.info("vocab: initialising %d new rows with %s", len(expansion.pieces), init)
            model = load_model(base_model)
            initialise_rows(model, expansion, init, seed, **context)
            save_model(model, tokenizer, out / init, dataclasses.replace(card, initialiser=init))
            rows += [{"run": f"init:{init}", **row, **NOT_TRAINED, "init": init}
                     for row in bpb_rows(model, expansion.tokenizer, _texts(folder / HELD_OUT, languages))]
            if dev:
                dev_scores[init] = bpb_rows(model, expansion.tokenizer, {target: dev})[0]["value"]
            del model
        if cfg.vocab.train_with == "auto":
            choices.append(Choice.best("vocab.train_with", "dev bpb of the target before training", dev_scores))
        if choices:
            write_json(out / SELECTION, {"dev_documents": len(dev), "dev_fraction": cfg.vocab.dev_fraction,
                                         "new_tokens": len(expansion.new_tokens),
                                         "choices": [choice.as_dict() for choice in choices]})
        _write_rows(out / "results.parquet", rows)

    def mix(out: Path) -> None:
        for part, docs in adaptation_documents(cfg, read_split(folder / TRAIN, languages)).items():
            write_jsonl(out / f"{part}.jsonl", [doc.to_dict() for doc in docs])

    def adapt_with(method: str):
        def adapt(out: Path) -> None:
            log.info("train: adapting to %s with %s", target, method)
            run_train_job(adaptation_job(cfg, method, folder, out))
        return adapt

    def evaluate(out: Path) -> None:
        rows = [{"run": "base", **row, **NOT_TRAINED, "steps": 0 if cfg.base else cfg.pretrain.steps}
                for row in _model_rows(base_model, _texts(folder / HELD_OUT, languages))]
        rows += _probe_rows(cfg, "base", base_model)
        for method in cfg.adapt.methods if adapt else []:
            rows += _probe_rows(cfg, method, folder / "train" / method / "final")
        _write_rows(out / "results.parquet", rows)

    def export(out: Path) -> None:
        export_adapted(cfg, folder, out)

    def report(out: Path) -> None:
        _write_results(cfg, folder, out, adapt)

    curate_settings = {"languages": cfg.languages.model_dump(mode="json"), "curate": cfg.curate.model_dump(mode="json"),
                       "corpus": cfg.corpus.source, "seed": seed,
                       "inputs": [file_hash(p) for p in _corpus_files(cfg)]}
    vocab_settings = {"vocab": cfg.vocab.model_dump(mode="json", exclude=INIT_ONLY), "seed": seed,
                      "languages": cfg.languages.model_dump(mode="json")}
    stages = [Stage("curate", "corpus", curate_corpus, settings=curate_settings)]
    if cfg.curate.engine == "datatrove":  # its own stage, so a filter ablation reuses language ID and dedup
        identify_settings = {**curate_settings, "curate": cfg.curate.model_dump(
            mode="json", exclude={"datatrove": {"filters", "rehydrate"}})}
        stages = [Stage("curate:identify", IDENTIFIED, identify, settings=identify_settings),
                  Stage("curate", "corpus", curate_corpus, ("curate:identify",), settings=curate_settings)]
    if cfg.base is not None:
        stages.append(Stage("base", "base", import_once, settings=_base_settings(cfg)))
    stages.append(Stage("vocab", "vocab", expand_vocab, ("curate", "base") if cfg.base else ("curate",),
                        settings=vocab_settings))
    if cfg.base is None:
        stages.append(Stage("pretrain", "train/base", pretrain, ("curate", "vocab"), resumable=True, settings={
            "model": cfg.model.model_dump(mode="json"), "pretrain": cfg.pretrain.model_dump(mode="json"),
            "seed": seed}))
    stages.append(Stage("init", "init", initialise))
    if adapt:
        stages.append(Stage("mix", "train/data", mix))
        stages += [Stage(f"adapt:{method}", f"train/{method}", adapt_with(method), resumable=True)
                   for method in cfg.adapt.methods]
    stages.append(Stage("evaluate", "evaluate", evaluate))
    if adapt and cfg.export is not None:
        stages.append(Stage("export", "export", export))
    return [*stages, Stage("report", "report", report)]


# read by `init`, not `vocab`
INIT_ONLY = {"initialisers", "train_with", "static_dim", "ofa_rank", "static_vectors", "size_steps"}


def _base_settings(cfg: ExperimentConfig) -> dict:
    """The base model's identity: its path and the hashes of its weight and tokenizer files."""
    folder, gguf = cfg.base.folder, cfg.base.gguf_file
    files = [folder / gguf] if gguf else sorted([*folder.glob("*.safetensors"), *folder.glob("tokenizer*.json")])
    return {"model": str(folder), "gguf_file": gguf, "files": {p.name: file_hash(p) for p in files if p.is_file()}}


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


def adaptation_job(cfg: ExperimentConfig, method: str, folder: Path, out: Path) -> TrainJobConfig:
    """One adaptation method as a training job: the mixture's parts as weighted sources, the
    initialised model as `init_from`, held-out text of every language scored as it trains."""
    weights = {"target": 1.0, "replay": cfg.adapt.mix.replay, "parallel": cfg.adapt.mix.parallel,
               "code": cfg.adapt.mix.code}
    parts = [name for name in weights if (folder / "train" / "data" / f"{name}.jsonl").is_file()]
    sources = [SourceConfig(name=name, files=[folder / "train" / "data" / f"{name}.jsonl"], weight=weights[name])
               for name in parts]
    experts = cfg.adapt.lora.expert_languages
    return TrainJobConfig(
        name=out.name, output_dir=out.parent, seed=cfg.seed, init_from=folder / "init" / trained_with(cfg, folder),
        model=cfg.model, method=method, lora=cfg.adapt.lora,
        train=TrainConfig(**{**cfg.adapt.model_dump(include=set(TrainConfig.model_fields)), "stage_lr": {
            stage: lr for stage, lr in cfg.adapt.stage_lr.items() if stage in stages(method)}}),
        data=DataConfig(sources=sources, control_tokens=["lang"] if experts else [],
                        eval_files={lang: folder / HELD_OUT for lang in cfg.languages.all}))


def best_method(cfg: ExperimentConfig, folder: Path) -> str:
    """The adaptation with the lowest held-out bpb on the target language (its job's own scores)."""
    rows = pd.DataFrame(sum((_adapted_rows(cfg, m, folder / "train" / m) for m in cfg.adapt.methods), []))
    target = rows[(rows.metric == "bpb") & (rows.language == cfg.languages.target)]
    return str(target.sort_values("value").iloc[0]["method"]) if not target.empty else cfg.adapt.methods[0]


def export_adapted(cfg: ExperimentConfig, folder: Path, out: Path) -> dict:
    """`export:`: write the chosen adapted model in each format into `out`, and `out/export.json`
    (method, files relative to the run folder, the GGUF round trip) for the report."""
    from langadapt.model.export import export_model

    method = cfg.export.method or best_method(cfg, folder)
    final = folder / "train" / method / "final"
    names = {"hf": "hf", "merged": "merged", "gguf": f"{cfg.name}-{method.replace('+', '-')}.{cfg.export.quant}.gguf"}
    files = {}
    for to in cfg.export.to:
        log.info("export: %s as %s", method, to)
        done = export_model(final, to, out / names[to], cfg.export.quant, check=cfg.export.check)
        files[to] = {"path": str(Path("export") / names[to]), "method": method,
                     "quant": cfg.export.quant if to == "gguf" else None,
                     "check": str(done.check) if done.check is not None else None,
                     "same_ids": done.check.same_ids if done.check is not None else None,
                     "max_abs_logit_diff": done.check.max_abs_logit_diff if done.check is not None else None,
                     "top1_agreement": done.check.top1_agreement if done.check is not None else None}
    summary = {"method": method, "files": files}
    write_json(out / "export.json", summary)
    return summary


def _model_rows(model_dir: Path, heldout: dict[str, list[str]]) -> list[dict]:
    return bpb_rows(load_model(model_dir), load_tokenizer(model_dir / "tokenizer.json"), heldout)


def _probe_rows(cfg: ExperimentConfig, name: str, model_dir: Path) -> list[dict]:
    """SIB-200 topic accuracy on the target language when `evaluate.sib200` is set."""
    if cfg.evaluate.sib200 is None:
        return []
    task = ProbeTask(cfg.evaluate.sib200, cfg.languages.target, limit=cfg.evaluate.probe_limit)
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir / "tokenizer.json")
    return [{"run": name, **row} for row in PROBES["sib200"](model, tokenizer, task)]


def trained_with(cfg: ExperimentConfig, folder: Path) -> str:
    """The initialiser the adaptations start from: `vocab.train_with`, or the one `auto` chose."""
    if cfg.vocab.train_with != "auto":
        return cfg.vocab.train_with
    choices = json.loads((folder / "init" / SELECTION).read_text(encoding="utf-8"))["choices"]
    return next(choice["chosen"] for choice in choices if choice["key"] == "vocab.train_with")


def _adapted_rows(cfg: ExperimentConfig, method: str, job: Path) -> list[dict]:
    """The adaptation job's own held-out scores of its final model, as experiment rows."""
    scores = pd.read_parquet(job / "results.parquet").query("role == 'eval'")
    trainable = json.loads((job / "trainable.json").read_text(encoding="utf-8"))
    init = trained_with(cfg, job.parent.parent)  # job: <run>/train/<method>
    return [{"run": method, "language": row.language, "metric": row.metric, "value": row.value, "method": method,
             "init": init, "steps": cfg.adapt.steps, "trainable_params": max(trainable.values())}
            for row in scores.itertuples()]


def _write_rows(path: Path, rows: list[dict]) -> Path:
    return write_with(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


def _write_results(cfg: ExperimentConfig, folder: Path, report_dir: Path, adapted: bool) -> Path:
    """Gather every stage's rows into the one results table and write the report from it."""
    parts = [folder / "evaluate" / "results.parquet", folder / "init" / "results.parquet"]
    frames = [pd.read_parquet(path) for path in parts]
    frames.insert(1, pd.DataFrame(sum((_adapted_rows(cfg, m, folder / "train" / m) for m in cfg.adapt.methods), []))
                  if adapted else pd.DataFrame())
    frames.append(pd.read_parquet(folder / "vocab" / "results.parquet"))
    results = pd.concat([frame for frame in frames if not frame.empty], ignore_index=True)
    roles = {lang: ("target" if lang == cfg.languages.target else "source") for lang in cfg.languages.all}
    results.insert(2, "role", results["language"].map(roles))
    results.insert(0, "experiment", cfg.name)
    path = write_with(folder / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    shutil.rmtree(report_dir, ignore_errors=True)
    write_report(results, report_dir, folder)
    return path
