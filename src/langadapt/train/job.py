"""`langadapt train JOB.yaml`: train one model on a data mixture, resumably, alone or under
`accelerate launch`.

The run folder holds everything a rerun needs: the tokenizer and the memory-mapped token
files (prepared once, by the main process), the checkpoints and the log. Rerunning the same
command after a crash or a kill continues from the last checkpoint, exactly; a rerun of an edited
config or with changed input files is refused, naming what changed, and one process at a time
holds the folder (`lock.hold`). Layout:

    <output_dir>/<name>/
      config.json  tokenizer.json  data.json  tokens/<source>.bin
      log.jsonl  checkpoints/  adapter/ (peft methods)  final/ (stock transformers folder)
      final-<lang>/ (per-language experts: one stock folder per further language)

A method of several phases (`embeddings+layra`) trains each phase in `phase<i>-<method>/` in turn, each
at its own learning rate (`train.phase_lr`), and writes the last one's model to `final/`.

With `init_from`, the folder is checked first (model/base.py) and its card (`langadapt.json`)
says which vocabulary rows are new, so every method trains them; the control tokens the job adds
are new rows too. Every model folder the job writes carries the card forward (method,
languages), with the base's chat template, special tokens and generation config.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from tokenizers import Tokenizer

from langadapt.atomic import replace_folder, write_json, write_with
from langadapt.corpus.document import LanguageFilter, read_documents, read_lines
from langadapt.data.injection import CanarySet, InjectingSampler, read_canary_set
from langadapt.data.mixing import (
    mixture_probabilities,
    mixture_sampler,
)
from langadapt.data.packing import read_tokens
from langadapt.data.translation import translation_card
from langadapt.errors import Interrupted, LangadaptError, fs_error
from langadapt.evaluate.bpb import bpb_evaluator, bpb_rows
from langadapt.evaluate.memorisation import canaries_evaluator, canary_rows
from langadapt.evaluate.suite import evaluate_job
from langadapt.lock import hold
from langadapt.model.adapters import export, save_peft_adapter, trainable_parameters
from langadapt.model.base import Base, check_base
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.experts import expert_languages, route_by_language
from langadapt.provenance import check_same_run, provenance
from langadapt.registry import ADAPTERS, phases
from langadapt.train.classify import prepare_task, train_task
from langadapt.train.config import TrainJobConfig
from langadapt.train.contrastive import ContextPairs, ContrastiveContext
from langadapt.train.distill import build_minilm
from langadapt.train.job_data import active_sources, documents, input_files, prepare_data, within_budget
from langadapt.train.loop import latest_checkpoint, make_accelerator, process_share, process_state, sharded, train
from langadapt.vocab.tokenizer import (
    as_transformers,
    load_tokenizer,
)

log = logging.getLogger("langadapt")


def _sampler(cfg: TrainJobConfig, out: Path, state: Accelerator, data: dict, canary_sets: list[CanarySet],
             tokenizer: Tokenizer):
    """Batches for this process: its share of the batch, from its own seeded streams (one per source, or per
    translation direction, with its loss mask; `data` is the job's `data.json`); the main process's batches
    carry the canary sets' inserts."""
    rows, seed = process_share(cfg.train.batch_size, cfg.seed, state)
    weights = data.get("weights") or {s.name: s.weight for s in active_sources(cfg)}
    arrays = {name: read_tokens(out / "tokens" / f"{name}.bin") for name in weights}
    masks = {name: read_tokens(path) for name in weights if (path := out / "tokens" / f"{name}.mask.bin").is_file()}
    probabilities = mixture_probabilities({name: len(a) for name, a in arrays.items()}, weights, cfg.data.alpha)
    sampler = mixture_sampler(arrays, probabilities, cfg.model.block_size, rows, seed, masks)
    if canary_sets and state.is_main_process:
        return InjectingSampler(sampler, canary_sets, tokenizer, data["eos_id"], cfg.model.block_size,
                                cfg.train.grad_accum, out / "inserts.jsonl")
    return sampler


def _contrastive(cfg: TrainJobConfig, state: Accelerator, tokenizer: Tokenizer, model, pad_id: int):
    """`train.objective: ccp`: sentence pairs from the sources' documents, and the loss module."""
    rows, seed = process_share(cfg.train.batch_size, cfg.seed, state)
    docs = [doc for source in active_sources(cfg) for doc in within_budget(documents(source), source.max_bytes)]
    pairs = ContextPairs(docs, tokenizer, cfg.ccp, rows, pad_id, seed)
    return pairs, ContrastiveContext(model.config.hidden_size, len(pairs.languages), cfg.ccp)


def _heldout(cfg: TrainJobConfig) -> dict[str, list[str]]:
    if cfg.model.arch == "bert" or cfg.train.objective == "masked":  # bits per byte scores a causal LM
        return {}
    return {lang: eval_texts(path, lang) for lang, path in cfg.data.eval_files.items()}


def eval_texts(path: Path, language: str) -> list[str]:
    """A text file's lines, or a JSONL file's documents in `language` (one held-out file serves
    every language, as an experiment's curated `heldout.jsonl` does)."""
    if Path(path).suffix == ".jsonl":
        chosen = LanguageFilter([language], f"data.eval_files {language} ({path})")
        texts = [doc.text for doc in chosen(read_documents(path))]
        if not texts:  # other languages' documents are expected here; none of this one is not
            chosen.check()
        return texts
    return read_lines(path)


def write_results(cfg: TrainJobConfig, out: Path, model, tokenizer: Tokenizer, canary_sets: list[CanarySet]) -> Path:
    """`results.parquet` of a finished job: bpb and bytes per token of the final model on each
    `data.eval_files` language, and the UTF-8 bytes each source contributed (metric `train_bytes`)."""
    import pandas as pd

    rows = [{"run": "final", **row, "role": "eval"} for row in bpb_rows(model, tokenizer, _heldout(cfg))]
    if cfg.canaries:
        eos = json.loads((out / "data.json").read_text(encoding="utf-8"))["eos_id"]
        final = canaries_evaluator(canary_sets, tokenizer, eos)(model)
        log_records = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
        rows += [{"run": "final", **row} for row in canary_rows(log_records, final, cfg.train.steps)]
    if cfg.evaluate is not None:
        rows += [{**row, "role": "eval"} for row in evaluate_job(cfg.evaluate, out, cfg.init_from, cfg.gguf_file)]
    sizes = json.loads((out / "data.json").read_text(encoding="utf-8")).get("bytes", {})
    rows += [{"run": "final", "language": name, "metric": "train_bytes", "value": float(size), "role": "data"}
             for name, size in sizes.items()]
    results = pd.DataFrame(rows)
    results.insert(0, "experiment", cfg.name)
    return write_with(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))


def _start(cfg: TrainJobConfig, base: Base | None, tokenizer: Tokenizer, added_ids: list[int]):
    """The model training starts from, the new vocabulary rows, and the card its outputs carry."""
    if base is None:  # built at the full vocabulary: no row is newer than another
        return build_model(cfg.model, tokenizer), [], ModelCard()
    card = read_card(cfg.init_from) or ModelCard(base=str(cfg.init_from), gguf_file=cfg.gguf_file)
    model = load_model(cfg.init_from, cfg.gguf_file)
    if tokenizer.get_vocab_size() > model.get_input_embeddings().weight.shape[0]:  # padded matrices have room
        model.resize_token_embeddings(tokenizer.get_vocab_size())
    return model, sorted({*card.new_ids, *added_ids}), card


STATUS = "status.json"  # {"status": "failed" or "completed", "reason"}: what a rerun of the job reports


def _phase_folders(out: Path, methods: list[str]) -> list[tuple[str, Path, Path]]:
    """(method, its folder, its final model folder) per phase: a single phase trains in `out` itself."""
    folders = [(method, out if len(methods) == 1 else out / f"phase{i + 1}-{method}") for i, method in
               enumerate(methods)]
    return [(method, folder, out / "final" if i == len(methods) - 1 else folder / "final")
            for i, (method, folder) in enumerate(folders)]


def resume_note(out: Path, methods: list[str]) -> str | None:
    """What a rerun of the job in `out` continues from, in words: "the last run failed: <reason>"
    (from its status marker) and "resuming from step N" (from its newest complete checkpoint)."""
    status = json.loads((out / STATUS).read_text(encoding="utf-8")) if (out / STATUS).is_file() else {}
    unfinished = [(method, folder) for method, folder, final in _phase_folders(out, methods) if not final.is_dir()]
    if status.get("status") == "completed" or not unfinished:
        return None
    method, folder = unfinished[0]
    checkpoint = latest_checkpoint(folder / "checkpoints")
    notes = [f"the last run failed: {status['reason']}"] if status.get("status") == "failed" else []
    if checkpoint is not None:
        phase = f" of phase {method}" if len(methods) > 1 else ""
        notes.append(f"resuming from step {int(checkpoint.name.removeprefix('step-'))}{phase}")
    elif notes:
        notes.append("starting again from step 0 (no checkpoint had been written)")
    return "; ".join(notes) or None


def _mark(out: Path, status: str, reason: str | None = None) -> None:
    write_json(out / STATUS, {"status": status, "reason": reason})


def run_train_job(cfg: TrainJobConfig, overwrite: bool = False) -> Path:
    """Train (or resume) the run `cfg` describes; return the final model folder.

    One process holds the run folder at a time (`lock.hold`). A rerun resumes only the same job:
    a folder of another config or other input files is refused, naming what changed. With
    `overwrite`, the new run trains in a hidden folder beside the old one, which it replaces only
    once it has finished, so a mistake in the new config never costs the old result."""
    out = Path(cfg.output_dir) / cfg.name
    # The base is read-only to check, so a refused one leaves nothing behind, not even the lock.
    base = (check_base(cfg.init_from, cfg.gguf_file, causal=cfg.train.objective == "causal",
                       block_size=cfg.model.block_size) if cfg.init_from is not None and cfg.task is None else None)
    main = process_state().is_main_process
    with hold(out) if main else contextlib.nullcontext():
        if not overwrite:
            return _job(cfg, out, base)
        work = out.with_name(f".{out.name}.overwrite")
        if main:
            shutil.rmtree(work, ignore_errors=True)
        try:
            final = _job(cfg, work, base)
        except BaseException:
            if main:
                shutil.rmtree(work, ignore_errors=True)
            raise
        if main:
            replace_folder(work, out)
        process_state().wait_for_everyone()
        return out / final.relative_to(work)


def check_rerun(cfg: TrainJobConfig, out: Path) -> None:
    """Refuse a folder that holds something other than this job: another config (naming the keys,
    old → new), changed input files, or no langadapt run at all."""
    if not out.is_dir() or all(entry.name.startswith(".") for entry in out.iterdir()):
        return  # new, or only a temp file that a kill left before config.json was in place
    check_same_run(out, out / "config.json", cfg.model_dump(mode="json"), input_files(cfg))


def _job(cfg: TrainJobConfig, out: Path, base: Base | None) -> Path:
    """The job in `out`; a job that fails before training (its data) leaves no folder behind if it
    made one; a job that fails while training keeps its last checkpoint and marks the folder failed,
    with the reason, which the rerun reports before it resumes; Ctrl-C says where it stopped."""
    if process_state().is_main_process:
        check_rerun(cfg, out)
    task = prepare_task(cfg) if cfg.task is not None else None  # a classifier: its labelled data, read here
    state = make_accelerator()
    canary_sets = []
    if state.is_main_process:
        note = resume_note(out, phases(cfg.method)) if out.is_dir() else None
        if note:
            log.info("train %s: %s", cfg.name, note)
        made = not out.exists()
        try:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise fs_error(err, out, "creating the run folder") from None
            if not (out / "config.json").is_file():  # a rerun of the same job keeps what the first one recorded
                write_json(out / "config.json", cfg.model_dump(mode="json"))
            # a bad canary set fails before any work; a generated one is written into the folder
            canary_sets = [read_canary_set(canary, out) for canary in cfg.canaries]
            if task is None:
                prepare_data(cfg, out, base)
            if not (out / "manifest.json").is_file():
                write_json(out / "manifest.json", provenance(input_files(cfg)))
        except BaseException:
            if made:  # nothing in it could be resumed: the fix changes the data or the config
                shutil.rmtree(out, ignore_errors=True)
            raise
    state.wait_for_everyone()
    if not state.is_main_process:  # the other processes read what the main one checked and wrote
        canary_sets = [read_canary_set(canary, out) for canary in cfg.canaries]
    try:
        final = _train_phases(cfg, out, base, state, canary_sets) if task is None else train_task(cfg, out, task)
    except KeyboardInterrupt:
        if state.is_main_process:
            _mark(out, "failed", "interrupted")
        raise Interrupted(_stopped_at(out, phases(cfg.method))) from None
    except BaseException as err:
        if state.is_main_process:
            _mark(out, "failed", err.message if isinstance(err, LangadaptError) else f"{type(err).__name__}: {err}")
        raise
    if state.is_main_process:
        _mark(out, "completed")
    return final


def _stopped_at(out: Path, methods: list[str]) -> str:
    """Where an interrupted job stopped, in words: its newest complete checkpoint, or none."""
    for method, folder, final in _phase_folders(out, methods):
        if final.is_dir():
            continue
        checkpoint = latest_checkpoint(folder / "checkpoints")
        phase = f" of phase {method}" if len(methods) > 1 else ""
        if checkpoint is None:
            return f"stopped{phase} before its first checkpoint (in {folder}); a rerun starts it from step 0"
        return (f"stopped{phase} after the checkpoint of step {int(checkpoint.name.removeprefix('step-'))} "
                f"({checkpoint}); a rerun continues from there")
    return f"stopped after training, while writing the results in {out}"


def _train_phases(cfg: TrainJobConfig, out: Path, base: Base | None, state: Accelerator,
                  canary_sets: list[CanarySet]) -> Path:
    tokenizer = load_tokenizer(out / "tokenizer.json")
    data = json.loads((out / "data.json").read_text(encoding="utf-8"))

    torch.manual_seed(cfg.seed)
    model, new_ids, card = _start(cfg, base, tokenizer, data["added_ids"])
    saved_tokenizer = as_transformers(tokenizer, like=base.tokenizer if base is not None else None)
    languages = [code for source in active_sources(cfg) for code in source.languages]
    card = dataclasses.replace(card, new_ids=new_ids, eos_token=tokenizer.id_to_token(data["eos_id"]),
                               languages=list(dict.fromkeys([*card.languages, *languages])),
                               trained_from=str(cfg.init_from) if cfg.init_from is not None else None,
                               translation=translation_card(active_sources(cfg)) or card.translation)

    heldout = _heldout(cfg)
    evaluate = bpb_evaluator(tokenizer, heldout) if heldout else None
    if canary_sets:
        evaluate = canaries_evaluator(canary_sets, tokenizer, data["eos_id"], then=evaluate)
    objective = build_minilm(cfg.teacher, cfg.distill, tokenizer) if cfg.teacher is not None else None
    methods = phases(cfg.method)
    for index, (method, phase_dir, final) in enumerate(_phase_folders(out, methods)):
        last = index == len(methods) - 1
        phase_card = dataclasses.replace(card, method="+".join(methods[: index + 1]))
        if final.is_dir():  # a finished phase of a resumed run
            model = load_model(final)
            continue
        adapted = ADAPTERS[method](model, cfg.lora, new_ids)
        if state.is_main_process:  # parameters each phase trains, for results tables
            counts = json.loads((out / "trainable.json").read_text()) if (out / "trainable.json").is_file() else {}
            write_json(out / "trainable.json", {**counts, method: trainable_parameters(adapted)})
        experts = expert_languages(adapted)
        if experts:
            route_by_language(adapted, tokenizer)
        whole = copy.deepcopy(adapted) if sharded(state) else None  # what the gathered weights are saved from
        sampler, built = (_contrastive(cfg, state, tokenizer, adapted, data["eos_id"]) if cfg.train.objective == "ccp"
                          else (_sampler(cfg, out, state, data, canary_sets, tokenizer), objective))
        train(adapted, sampler, cfg.train.for_phase(method), cfg.seed, phase_dir / "log.jsonl",
              desc=f"{cfg.name} {method}", evaluate=evaluate, checkpoint_dir=phase_dir / "checkpoints",
              objective=built, whole=whole,
              evaluate_at_end=not last)  # the final model is scored once, into results.parquet
        adapted = whole if whole is not None else adapted
        if state.is_main_process:
            save_peft_adapter(adapted, phase_dir / "adapter")
            for language in experts[1:] if last else []:  # final/ holds the first language's experts
                save_model(export(copy.deepcopy(adapted), language), saved_tokenizer, out / f"final-{language}",
                           phase_card)
        model = export(adapted)
        if state.is_main_process:
            save_model(model, saved_tokenizer, final, phase_card)
        state.wait_for_everyone()
    if state.is_main_process and not (out / "results.parquet").is_file():
        write_results(cfg, out, model, tokenizer, canary_sets)
    log.info("train: model written to %s", out / "final")
    return out / "final"
