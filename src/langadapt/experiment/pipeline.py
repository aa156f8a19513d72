"""The experiment as a list of stages, compiled from its config and run by `stages.run_stages`:

    curate → [base: import a pretrained model] → vocab → [pretrain: a training job] → init
      → mix → adapt:<method> (one training job per method) → evaluate → [export] → report

Every stage is a function `run(inputs, out)` that fills one folder of the run from the folders
of the stages it names as inputs; the runner owns caching, resume and the manifest. Training is always a training
job (`train/job.py`), as in nanoGPT fine-tuning is `init_from` on the same loop: pretraining
is a job on the source languages, each adaptation a job whose `init_from` is the initialised
model folder (its `langadapt.json` names the new rows). So checkpoints, exact resume, phased
methods, expert routing and `accelerate launch` hold for experiments as for `langadapt train`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from langadapt.atomic import write_json, write_jsonl
from langadapt.config import ExperimentConfig
from langadapt.corpus.curate import curate, training_and_heldout
from langadapt.corpus.document import Document
from langadapt.corpus.sources import read_text_corpus
from langadapt.data.config import DataConfig, SourceConfig
from langadapt.errors import Interrupted, LangadaptError
from langadapt.experiment.adaptation import adaptation_documents, adaptation_job, export_adapted, initialise_new_rows
from langadapt.experiment.choices import DEV, dev_ids
from langadapt.experiment.corpus_text import (
    HELDOUT_FILE,
    TRAIN_FILE,
    corpus_files,
    input_files,
    read_corpus,
    read_split,
    split_texts,
)
from langadapt.experiment.results import NOT_TRAINED, model_rows, probe_rows, write_results, write_rows
from langadapt.experiment.run_folder import Run
from langadapt.experiment.stages import Stage, plan, run_stages
from langadapt.lock import hold
from langadapt.model.base import check_base, import_base
from langadapt.provenance import file_hash
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.build import build_vocab, tokenizer_metrics
from langadapt.vocab.tokenizer import load_tokenizer

log = logging.getLogger("langadapt")

IDENTIFIED = "corpus-identified"  # curate.engine datatrove: language ID and dedup, before the filters


def run_experiment(cfg: ExperimentConfig) -> Path:
    """Run (or resume) the whole experiment; return the finished run folder."""
    return _in_run_folder(cfg)


def run_vocab(cfg: ExperimentConfig, base: Path | None = None) -> Path:
    """`langadapt vocab`: curate, train and expand the tokenizers, measure them, and, given a base
    model folder, initialise its new rows with every configured initialiser (one model folder
    each under init/, scored by held-out bpb before any training). The run folder is
    `<name>-vocab`, so it never replaces the experiment's own run."""
    update = {"name": f"{cfg.name}-vocab"}
    if base is not None:
        update["base"] = {"model": base}
    cfg = ExperimentConfig.model_validate({**cfg.model_dump(), **update})
    return _in_run_folder(cfg, adapt=False)


def run_part(cfg: ExperimentConfig, names: list[str]) -> Run:
    """Run only the named stages of the experiment in its run folder (a study's or benchmark's
    shared preparation, e.g. everything up to `mix`), reusing cached ones; the folder stays
    `<name>.incomplete` until `run.finish()`. Each named stage's inputs must be named too."""
    run = Run(cfg)
    run_stages([stage for stage in compile_stages(cfg) if stage.name in names], run, _stage_cache(cfg))
    return run


def stage_plan(cfg: ExperimentConfig) -> dict[str, str]:
    """What a run would reuse from the stage cache, resume or compute, without computing."""
    folder = Path(cfg.output_dir) / f"{cfg.name}.incomplete"
    return plan(compile_stages(cfg), _stage_cache(cfg), Run.finished_stages(folder, cfg))


def _in_run_folder(cfg: ExperimentConfig, adapt: bool = True) -> Path:
    """Run the compiled stages in the run folder. A user error removes the folder (the fix changes
    the config, so nothing in it could be resumed; finished cacheable stages stay in the stage
    cache); any other error or a kill leaves it, so a rerun of the same config resumes it."""
    stages = compile_stages(cfg, adapt)
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


def compile_stages(cfg: ExperimentConfig, adapt: bool = True) -> list[Stage]:
    """The experiment's stages, in order (without the adaptation jobs for `adapt=False`). Each
    receives the folders of the stages it names as inputs (`stages.Stage`)."""
    languages, source, target, seed = cfg.languages.all, cfg.languages.source, cfg.languages.target, cfg.seed
    if cfg.base is not None:  # every problem with the base stops the run before any work
        # training blocks must fit the model's positions; `langadapt vocab` (adapt off) trains nothing
        check_base(cfg.base.folder, cfg.base.gguf_file, block_size=cfg.model.block_size if adapt else None)
    base_stage = "base" if cfg.base is not None else "pretrain"

    def base_model(inputs: dict[str, Path]) -> Path:
        return inputs["base"] if cfg.base is not None else inputs["base"] / "final"

    def evaluation() -> list[Document] | None:
        return list(read_text_corpus(cfg.corpus.heldout, languages)) if cfg.corpus.heldout else None

    def identify(inputs: dict[str, Path], out: Path) -> None:
        log.info("curate: language ID and dedup of the %s corpus for %s", cfg.corpus.source, ", ".join(languages))
        from langadapt.corpus.curation import identify_documents

        train, _ = training_and_heldout(cfg.curate, read_corpus(cfg), languages, seed, evaluation())
        identify_documents(cfg.curate, train, languages, out)

    def curate_corpus(inputs: dict[str, Path], out: Path) -> None:
        log.info("curate: reading %s corpus for %s", cfg.corpus.source, ", ".join(languages))
        if cfg.curate.engine != "datatrove":
            curate(cfg.curate, read_corpus(cfg), languages, out, seed, evaluation())
            return
        from langadapt.corpus.curation import curate_documents

        train, heldout = training_and_heldout(cfg.curate, read_corpus(cfg), languages, seed, evaluation())
        curate_documents(cfg.curate, train, heldout, languages, out, inputs["identified"])

    def import_once(inputs: dict[str, Path], out: Path) -> None:
        log.info("base: importing %s", cfg.base.folder / (cfg.base.gguf_file or ""))
        import_base(cfg.base.folder, cfg.base.gguf_file, out)

    def expand_vocab(inputs: dict[str, Path], out: Path) -> None:
        corpus = inputs["corpus"]
        base_tok = load_tokenizer(inputs["base"] / "tokenizer.json") if cfg.base is not None else None
        by_language = read_split(corpus, "train", languages)
        texts = {language: list(by_id.values()) for language, by_id in by_language.items()}
        if cfg.vocab.chooses:  # dev text for the `auto` choices, kept out of the tokenizer's merges
            by_id = by_language[target]
            dev = dev_ids(list(by_id), cfg.vocab.dev_fraction, seed)
            write_json(out / DEV, {"fraction": cfg.vocab.dev_fraction, "ids": dev, "documents": len(dev),
                                   "of": len(by_id)})
            held = set(dev)
            texts[target] = [text for i, text in by_id.items() if i not in held]
        vocab = build_vocab(cfg.vocab, texts, source, target, out, seed, base=base_tok)
        measured = tokenizer_metrics({"source": vocab.source, "expanded": vocab.expansion.tokenizer},
                                     read_split(corpus, "heldout", languages), source[0], vocab.expansion)
        rows = [{"run": f"tokenizer:{row.pop('tokenizer')}", **row, **NOT_TRAINED} for row in measured]
        write_rows(out / "results.parquet", rows)

    def pretrain(inputs: dict[str, Path], out: Path) -> None:
        log.info("train: pretraining the base model on %s", ", ".join(source))
        corpus = inputs["corpus"]
        run_train_job(TrainJobConfig(
            name=out.name, output_dir=out.parent, seed=seed, model=cfg.model, train=cfg.pretrain, method="full",
            data=DataConfig(sources=[SourceConfig(name="source", files=[corpus / TRAIN_FILE], languages=source)],
                            tokenizer=str(inputs["vocab"] / "source" / "tokenizer.json"),
                            eval_files=dict.fromkeys(languages, corpus / HELDOUT_FILE))))

    def initialise(inputs: dict[str, Path], out: Path) -> None:
        initialise_new_rows(cfg, inputs["corpus"], inputs["vocab"], base_model(inputs), out)

    def mix(inputs: dict[str, Path], out: Path) -> None:
        for part, docs in adaptation_documents(cfg, read_split(inputs["corpus"], "train", languages)).items():
            write_jsonl(out / f"{part}.jsonl", [doc.to_dict() for doc in docs])

    def adapt_with(method: str):
        def adapt(inputs: dict[str, Path], out: Path) -> None:
            log.info("train: adapting to %s with %s", target, method)
            run_train_job(adaptation_job(cfg, method, inputs, out))
        return adapt

    def evaluate(inputs: dict[str, Path], out: Path) -> None:
        model = base_model(inputs)
        rows = [{"run": "base", **row, **NOT_TRAINED, "steps": 0 if cfg.base else cfg.pretrain.steps}
                for row in model_rows(model, split_texts(inputs["corpus"], "heldout", languages))]
        rows += probe_rows(cfg, "base", model)
        for method in cfg.adapt.methods if adapt else []:
            rows += probe_rows(cfg, method, inputs[method] / "final")
        write_rows(out / "results.parquet", rows)

    def export(inputs: dict[str, Path], out: Path) -> None:
        export_adapted(cfg, {method: inputs[method] for method in cfg.adapt.methods}, out)

    def report(inputs: dict[str, Path], out: Path) -> None:
        write_results(cfg, inputs, out.parent, out)

    curate_settings = {"languages": cfg.languages.model_dump(mode="json"), "curate": cfg.curate.model_dump(mode="json"),
                       "corpus": cfg.corpus.source, "seed": seed,
                       "inputs": [file_hash(p) for p in corpus_files(cfg)]}
    vocab_settings = {"vocab": cfg.vocab.model_dump(mode="json", exclude=INIT_ONLY), "seed": seed,
                      "languages": cfg.languages.model_dump(mode="json")}
    stages = [Stage("curate", "corpus", curate_corpus, settings=curate_settings)]
    if cfg.curate.engine == "datatrove":  # its own stage, so a filter ablation reuses language ID and dedup
        identify_settings = {**curate_settings, "curate": cfg.curate.model_dump(
            mode="json", exclude={"datatrove": {"filters", "rehydrate"}})}
        stages = [Stage("curate:identify", IDENTIFIED, identify, settings=identify_settings),
                  Stage("curate", "corpus", curate_corpus, {"identified": "curate:identify"},
                        settings=curate_settings)]
    if cfg.base is not None:
        stages.append(Stage("base", "base", import_once, settings=_base_settings(cfg)))
    stages.append(Stage("vocab", "vocab", expand_vocab, {"corpus": "curate", **({"base": "base"} if cfg.base else {})},
                        settings=vocab_settings))
    if cfg.base is None:
        stages.append(Stage("pretrain", "train/base", pretrain, {"corpus": "curate", "vocab": "vocab"},
                            resumable=True, settings={"model": cfg.model.model_dump(mode="json"),
                                                      "pretrain": cfg.pretrain.model_dump(mode="json"), "seed": seed}))
    stages.append(Stage("init", "init", initialise, {"corpus": "curate", "vocab": "vocab", "base": base_stage}))
    methods = cfg.adapt.methods if adapt else []
    if adapt:
        stages.append(Stage("mix", "train/data", mix, {"corpus": "curate"}))
        stages += [Stage(f"adapt:{method}", f"train/{method}", adapt_with(method),
                         {"data": "mix", "init": "init", "corpus": "curate"}, resumable=True) for method in methods]
    adapted = {method: f"adapt:{method}" for method in methods}
    stages.append(Stage("evaluate", "evaluate", evaluate, {"corpus": "curate", "base": base_stage, **adapted}))
    if adapt and cfg.export is not None:
        stages.append(Stage("export", "export", export, adapted))
    return [*stages, Stage("report", "report", report, {"vocab": "vocab", "init": "init", "evaluate": "evaluate",
                                                        **adapted})]


# read by `init`, not `vocab`
INIT_ONLY = {"initialisers", "train_with", "static_dim", "ofa_rank", "static_vectors", "size_steps"}


def _base_settings(cfg: ExperimentConfig) -> dict:
    """The base model's identity: its path and the hashes of its weight and tokenizer files."""
    folder, gguf = cfg.base.folder, cfg.base.gguf_file
    files = [folder / gguf] if gguf else sorted([*folder.glob("*.safetensors"), *folder.glob("tokenizer*.json")])
    return {"model": str(folder), "gguf_file": gguf, "files": {p.name: file_hash(p) for p in files if p.is_file()}}
