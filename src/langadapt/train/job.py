"""`langadapt train JOB.yaml`: train one model on a data mixture, resumably, alone or under
`accelerate launch`.

The run folder holds everything a rerun needs: the tokenizer and the memory-mapped token
files (prepared once, by the main process), the checkpoints and the log. Rerunning the same
command after a crash or a kill continues from the last checkpoint, exactly. Layout:

    <output_dir>/<name>/
      config.json  tokenizer.json  data.json  tokens/<source>.bin
      log.jsonl  checkpoints/  adapter/ (peft methods)  final/ (stock transformers folder)
      final-<lang>/ (per-language experts: one stock folder per further language)

A staged method (`embeddings+layra`) trains each stage in `stage<i>-<method>/` in turn and
writes the last one's model to `final/`.
"""

from __future__ import annotations

import copy
import itertools
import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from tokenizers import Tokenizer

from langadapt.atomic import write_json, write_with
from langadapt.config import SourceConfig, TrainJobConfig
from langadapt.corpus.document import Document, read_corpus, read_documents, read_lines, read_parallel
from langadapt.corpus.sources import code_files, read_code, read_sample
from langadapt.data.mixing import (
    add_control_tokens,
    bilingual_pairs,
    interlinear,
    mixture_probabilities,
    mixture_sampler,
    with_control_tokens,
)
from langadapt.data.packing import pack, read_tokens, write_tokens
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bpb_evaluator, bpb_rows
from langadapt.languages import normalise
from langadapt.model.adapters import ADAPTERS, expert_languages, export, route_by_language, save_peft_adapter, stages
from langadapt.model.build import MASK, build_model, load_model, save_model
from langadapt.runs import provenance
from langadapt.train.loop import make_accelerator, train
from langadapt.vocab.train import EOS, byte_tokenizer, load_tokenizer, save_tokenizer, train_bpe

log = logging.getLogger("langadapt")


def _documents(source: SourceConfig) -> list[Document]:
    languages = [normalise(code) for code in source.languages]
    lang = "-".join(languages) or "und"
    if source.format == "sample":
        return list(read_sample(languages))
    if source.format == "jsonl":
        return [doc for path in source.files for doc in read_documents(path)]
    if source.format == "curated":
        return [doc for folder in source.files for doc in read_corpus(folder, "train", languages)]
    if source.format == "code":
        return read_code([str(pattern) for pattern in source.files])
    if source.format == "text":  # lines of several files alternate, so a byte budget takes from each
        files = [read_lines(path) for path in source.files]
        lines = [line for group in itertools.zip_longest(*files) for line in group if line is not None]
        return [Document(f"{source.name}:{i}", line, lang) for i, line in enumerate(lines)]
    pairs = list(zip(*read_parallel(*source.files), strict=True))
    texts = (interlinear(pairs, source.pairs_per_document) if source.parallel_as == "interlinear"
             else bilingual_pairs(pairs))
    return [Document(f"{source.name}:{i}", text, lang) for i, text in enumerate(texts)]


def _input_files(cfg: TrainJobConfig) -> list[Path]:
    files = [Path(p) / "train.jsonl" if s.format == "curated" else Path(p)
             for s in active_sources(cfg) if s.format != "code" for p in s.files]
    files += [p for s in active_sources(cfg) if s.format == "code" for p in code_files(map(str, s.files))]
    if cfg.data.tokenizer not in ("bpe", "bytes"):
        files.append(Path(cfg.data.tokenizer))
    return files + list(cfg.data.eval_files.values())


def _base_tokenizer(cfg: TrainJobConfig, texts: list[str]) -> Tokenizer:
    if cfg.init_from is not None:
        if cfg.gguf_file is None:
            return load_tokenizer(cfg.init_from / "tokenizer.json")
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(cfg.init_from, gguf_file=cfg.gguf_file).backend_tokenizer
    if cfg.data.tokenizer == "bytes":
        return byte_tokenizer()
    if cfg.data.tokenizer == "bpe":
        return train_bpe(texts, cfg.data.vocab_size)
    return load_tokenizer(Path(cfg.data.tokenizer))


def active_sources(cfg: TrainJobConfig) -> list[SourceConfig]:
    """The sources that take part: `max_bytes: 0` leaves one out (a sweep's "none" amount)."""
    sources = [source for source in cfg.data.sources if source.max_bytes != 0]
    if not sources:
        raise LangadaptError("every data source has max_bytes: 0, so there is nothing to train on",
                             where=f"training job {cfg.name!r}", fix="give at least one source a budget.")
    return sources


def within_budget(docs: list[Document], max_bytes: int | None) -> list[Document]:
    """The first documents, in order, whose UTF-8 size adds up to at most `max_bytes` (the last one
    is cut at a character boundary), so data sizes in a study are exact and reproducible."""
    if max_bytes is None:
        return docs
    kept, used = [], 0
    for doc in docs:
        size = len(doc.text.encode("utf-8"))
        if used + size > max_bytes:
            rest = doc.text.encode("utf-8")[: max_bytes - used].decode("utf-8", errors="ignore")
            if rest.strip():
                kept.append(Document(doc.id, rest, doc.lang, doc.metadata))
            break
        kept.append(doc)
        used += size
    return kept


def prepare_data(cfg: TrainJobConfig, out: Path) -> None:
    """Tokenizer and one memory-mapped token file per source; skipped when `data.json` exists."""
    if (out / "data.json").is_file():
        return
    texts, sizes = {}, {}
    for source in active_sources(cfg):
        docs = within_budget(_documents(source), source.max_bytes)
        sizes[source.name] = sum(len(doc.text.encode("utf-8")) for doc in docs)
        texts[source.name] = (list(with_control_tokens(docs, cfg.data.control_tokens)) if cfg.data.control_tokens
                              else [doc.text for doc in docs])
    every_text = [text for group in texts.values() for text in group]
    tokenizer = _base_tokenizer(cfg, every_text)
    if tokenizer.token_to_id(EOS) is None:
        raise LangadaptError(f"the tokenizer has no {EOS} token", fix="use a tokenizer with an end-of-text token.")
    add_control_tokens(tokenizer, every_text)
    if cfg.model.arch == "bert" and tokenizer.token_to_id(MASK) is None:
        tokenizer.add_special_tokens([MASK])
    counts = {}
    for name, group in texts.items():
        tokens = pack(group, tokenizer, tokenizer.token_to_id(EOS), cfg.seed)
        if len(tokens) <= cfg.model.block_size + 1:
            raise LangadaptError(f"data source {name!r} has only {len(tokens)} tokens",
                                 fix=f"give it more text than one block ({cfg.model.block_size} tokens).")
        write_tokens(out / "tokens" / f"{name}.bin", tokens)
        counts[name] = len(tokens)
    save_tokenizer(tokenizer, out / "tokenizer.json")
    write_json(out / "data.json", {"tokens": counts, "bytes": sizes, "vocab_size": tokenizer.get_vocab_size()})


def _sampler(cfg: TrainJobConfig, out: Path, state: Accelerator):
    """Batches for this process: its share of the batch, from its own seeded stream."""
    if cfg.train.batch_size % state.num_processes:
        raise LangadaptError(f"train.batch_size {cfg.train.batch_size} does not split over "
                             f"{state.num_processes} processes", fix="use a multiple of the process count.")
    rows, seed = cfg.train.batch_size // state.num_processes, cfg.seed + 1000 * state.process_index
    arrays = {s.name: read_tokens(out / "tokens" / f"{s.name}.bin") for s in active_sources(cfg)}
    probabilities = mixture_probabilities({name: len(a) for name, a in arrays.items()},
                                          {s.name: s.weight for s in active_sources(cfg)}, cfg.data.alpha)
    return mixture_sampler(arrays, probabilities, cfg.model.block_size, rows, seed)


def _heldout(cfg: TrainJobConfig) -> dict[str, list[str]]:
    if cfg.model.arch == "bert":  # bits per byte scores a causal LM
        return {}
    return {lang: read_lines(path) for lang, path in cfg.data.eval_files.items()}


def write_results(cfg: TrainJobConfig, out: Path, model, tokenizer: Tokenizer) -> Path:
    """`results.parquet` of a finished job: bpb and bytes per token of the final model on each
    `data.eval_files` language, and the UTF-8 bytes each source contributed (metric `train_bytes`)."""
    import json

    import pandas as pd

    rows = [{"run": "final", **row, "role": "eval"} for row in bpb_rows(model, tokenizer, _heldout(cfg))]
    sizes = json.loads((out / "data.json").read_text(encoding="utf-8")).get("bytes", {})
    rows += [{"run": "final", "language": name, "metric": "train_bytes", "value": float(size), "role": "data"}
             for name, size in sizes.items()]
    results = pd.DataFrame(rows)
    results.insert(0, "experiment", cfg.name)
    return write_with(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))


def run_train_job(cfg: TrainJobConfig) -> Path:
    """Train (or resume) the run `cfg` describes; return the final model folder."""
    out = Path(cfg.output_dir) / cfg.name
    state = make_accelerator()
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.model_dump(mode="json"))
        prepare_data(cfg, out)
        write_json(out / "manifest.json", provenance(_input_files(cfg)))
    state.wait_for_everyone()
    tokenizer = load_tokenizer(out / "tokenizer.json")

    torch.manual_seed(cfg.seed)
    new_ids: list[int] = []
    if cfg.init_from is not None:
        model = load_model(cfg.init_from, cfg.gguf_file)
        old = model.get_input_embeddings().weight.shape[0]
        if tokenizer.get_vocab_size() > old:  # control tokens added to an existing vocabulary
            model.resize_token_embeddings(tokenizer.get_vocab_size())
            new_ids = list(range(old, tokenizer.get_vocab_size()))
    else:
        model = build_model(cfg.model, tokenizer)

    heldout = _heldout(cfg)
    evaluate = bpb_evaluator(tokenizer, heldout) if heldout else None
    methods = stages(cfg.method)
    for index, method in enumerate(methods):
        last = index == len(methods) - 1
        stage_dir = out if len(methods) == 1 else out / f"stage{index + 1}-{method}"
        final = out / "final" if last else stage_dir / "final"
        if final.is_dir():  # a finished stage of a resumed run
            model = load_model(final)
            continue
        adapted = ADAPTERS[method](model, cfg.lora, new_ids)
        languages = expert_languages(adapted)
        if languages:
            route_by_language(adapted, tokenizer)
        train(adapted, _sampler(cfg, out, state), cfg.train, cfg.seed, stage_dir / "log.jsonl",
              desc=f"{cfg.name} {method}", evaluate=evaluate,
              checkpoint_dir=stage_dir / "checkpoints")
        if state.is_main_process:
            save_peft_adapter(adapted, stage_dir / "adapter")
            for language in languages[1:] if last else []:  # final/ holds the first language's experts
                save_model(export(copy.deepcopy(adapted), language), tokenizer, out / f"final-{language}")
        model = export(adapted)
        if state.is_main_process:
            save_model(model, tokenizer, final)
        state.wait_for_everyone()
    if state.is_main_process and not (out / "results.parquet").is_file():
        write_results(cfg, out, model, tokenizer)
    log.info("train: model written to %s", out / "final")
    return out / "final"
