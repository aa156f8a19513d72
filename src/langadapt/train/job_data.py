"""A training job's data: its sources read as documents (a translation source as one stream per
direction), byte budgets applied, the tokenizer made or taken from the base, and every stream
packed into a memory-mapped token file (`tokens/<stream>.bin`, with `data.json`)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from langadapt.atomic import write_json
from langadapt.corpus.document import Document, LanguageFilter, read_corpus, read_documents, read_lines, read_parallel
from langadapt.corpus.sources import code_files, read_code, read_sample
from langadapt.data.backtranslation import backtranslation_streams
from langadapt.data.codeswitch import restore_streams
from langadapt.data.config import TRANSLATION_FORMATS, SourceConfig
from langadapt.data.labelled import treebank_file
from langadapt.data.mixing import add_control_tokens, bilingual_pairs, interlinear, with_control_tokens
from langadapt.data.packing import pack_masked, write_tokens
from langadapt.data.sib200 import split_file
from langadapt.data.translation import loss_start, translation_streams
from langadapt.errors import LangadaptError
from langadapt.evaluate.config import JobEvaluateConfig
from langadapt.model.base import Base, check_base
from langadapt.model.build import MASK
from langadapt.train.config import TaskConfig, TrainJobConfig
from langadapt.vocab.tokenizer import byte_tokenizer, end_of_text, load_tokenizer, save_tokenizer, train_bpe

log = logging.getLogger("langadapt")


def documents(source: SourceConfig) -> list[Document]:
    languages = list(source.languages)  # normalised by the schema (LanguageCode)
    lang = "-".join(languages) or "und"
    if source.format == "sample":
        return list(read_sample(languages))
    if source.format in ("jsonl", "curated"):
        docs = (doc for path in source.files
                for doc in (read_documents(path) if source.format == "jsonl" else read_corpus(path, "train")))
        if not languages:
            return list(docs)
        chosen = LanguageFilter(languages, f"data source {source.name!r} ({', '.join(map(str, source.files))})")
        kept = list(chosen(docs))
        chosen.check()
        return kept
    if source.format == "code":
        return read_code([str(pattern) for pattern in source.files])
    if source.format == "text":  # lines of several files alternate, so a byte budget takes from each
        files = [read_lines(path, part=source.lines) for path in source.files]
        lines = [line for group in itertools.zip_longest(*files) for line in group if line is not None]
        return [Document(f"{source.name}:{i}", line, lang) for i, line in enumerate(lines)]
    pairs = list(zip(*read_parallel(*source.files, part=source.lines), strict=True))
    texts = (interlinear(pairs, source.pairs_per_document) if source.parallel_as == "interlinear"
             else bilingual_pairs(pairs))
    return [Document(f"{source.name}:{i}", text, lang) for i, text in enumerate(texts)]


def streams_of(source: SourceConfig, out: Path, seed: int) -> tuple[dict[str, list[Document]], dict[str, float]]:
    """The token streams a source contributes and their weights: itself, or (translation) one
    stream per direction."""
    if source.format == "translation":
        return translation_streams(source)
    if source.format == "backtranslation":
        return backtranslation_streams(source, out)
    if source.format == "codeswitch":
        return restore_streams(source, seed)
    return {source.name: documents(source)}, {source.name: source.weight}


def input_files(cfg: TrainJobConfig) -> list[Path]:
    """The files a job reads, whose hashes its manifest records (a rerun refuses changed ones)."""
    if cfg.task is not None:
        return task_files(cfg.task)
    files = [Path(p) / "train.jsonl" if s.format == "curated" else Path(p)
             for s in active_sources(cfg) if s.format != "code" for p in s.files
             if s.format == "curated" or not Path(p).is_dir()]
    files += [split_file(p, lang, split) for s in active_sources(cfg) if s.format in TRANSLATION_FORMATS
              for p in s.files if Path(p).is_dir() for lang in s.languages for split in s.translation.splits]
    files += [p for s in active_sources(cfg) if s.format == "code" for p in code_files(map(str, s.files))]
    if cfg.data.tokenizer not in ("bpe", "bytes", "teacher"):
        files.append(Path(cfg.data.tokenizer))
    files += [path for canary in cfg.canaries for path in canary.inputs()]
    return files + list(cfg.data.eval_files.values()) + (evaluation_files(cfg.evaluate) if cfg.evaluate else [])


def evaluation_files(evaluate: JobEvaluateConfig) -> list[Path]:
    """The files a job's `evaluate:` section reads after training, hashed with its inputs."""
    files = [Path(path) for pair in evaluate.translate.values() for path in pair]
    files += [split_file(evaluate.sib200, language, split) for language in evaluate.probe_languages
              for split in ("train", "test")]
    return files + ([treebank_file(evaluate.pos, split) for split in ("train", "test")] if evaluate.pos else [])


def task_files(task: TaskConfig) -> list[Path]:
    """The files a task job reads, whose hashes its manifest records (a rerun refuses changed ones)."""
    if task.kind == "sequence":
        languages = dict.fromkeys([task.train_language, *task.test_languages])
        files = [split_file(task.data, language, split) for language in languages
                 for split in ("train", "test") if split == "test" or language == task.train_language]
    else:
        files = [treebank_file(task.data, split) for split in ("train", "test")]
    return files + [Path(path) for path in task.unlabelled] + ([Path(task.tokenizer)] if task.tokenizer else [])


def base_tokenizer(cfg: TrainJobConfig, base: Base | None, texts: list[str]) -> Tokenizer:
    if base is not None:  # a copy: control tokens are added to it
        return Tokenizer.from_str(base.tokenizer.backend_tokenizer.to_str())
    if cfg.data.tokenizer == "bytes":
        return byte_tokenizer()
    if cfg.data.tokenizer == "teacher":
        return Tokenizer.from_str(check_base(cfg.teacher, cfg.distill.gguf_file).tokenizer.backend_tokenizer.to_str())
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
            if rest.strip() and "target_chars" not in doc.metadata:  # a cut translation would lose its target
                kept.append(Document(doc.id, rest, doc.lang, doc.metadata))
            break
        kept.append(doc)
        used += size
    return kept


def prepare_data(cfg: TrainJobConfig, out: Path, base: Base | None = None) -> None:
    """Tokenizer and one memory-mapped token file per source; skipped when `data.json` exists.

    `data.json` records the end-of-text id, the ids of the control tokens added here and each
    stream's weight. A translation stream also gets a loss mask (`tokens/<stream>.mask.bin`)."""
    if (out / "data.json").is_file():
        return
    texts, sizes, starts, weights = {}, {}, {}, {}
    for source in active_sources(cfg):
        streams, stream_weights = streams_of(source, out, cfg.seed)
        weights.update(stream_weights)
        for name, docs in streams.items():  # a budget holds per stream (per direction of a translation source)
            docs = within_budget(docs, source.max_bytes)
            sizes[name] = sum(len(doc.text.encode("utf-8")) for doc in docs)
            texts[name] = (list(with_control_tokens(docs, cfg.data.control_tokens)) if cfg.data.control_tokens
                           else [doc.text for doc in docs])
            masked = source.format in TRANSLATION_FORMATS
            starts[name] = [loss_start(t, d) for t, d in zip(texts[name], docs, strict=True)] if masked else None
    every_text = [text for group in texts.values() for text in group]
    tokenizer = base_tokenizer(cfg, base, every_text)
    eos = end_of_text(tokenizer, base.config.eos_token_id if base is not None else None)
    base_size = tokenizer.get_vocab_size()
    add_control_tokens(tokenizer, every_text)
    if cfg.model.arch == "bert" and tokenizer.token_to_id(MASK) is None:
        tokenizer.add_special_tokens([MASK])
    counts = {}
    for name, group in texts.items():
        tokens, mask = pack_masked(group, starts[name], tokenizer, eos, cfg.seed)
        if len(tokens) <= cfg.model.block_size + 1:
            raise LangadaptError(f"data source {name!r} has only {len(tokens)} tokens",
                                 fix=f"give it more text than one block ({cfg.model.block_size} tokens).")
        write_tokens(out / "tokens" / f"{name}.bin", tokens)
        if mask is not None:
            write_tokens(out / "tokens" / f"{name}.mask.bin", mask)
            lengths = np.diff(np.flatnonzero(tokens == eos))
            if len(lengths) and np.median(lengths) > cfg.model.block_size:  # windows start at a prompt
                log.warning("train: half the documents of %s are longer than model.block_size (%d tokens), so "
                            "their targets are cut; raise model.block_size", name, cfg.model.block_size)
        counts[name] = len(tokens)
    save_tokenizer(tokenizer, out / "tokenizer.json")
    write_json(out / "data.json", {"tokens": counts, "bytes": sizes, "vocab_size": tokenizer.get_vocab_size(),
                                   "eos_id": eos, "added_ids": list(range(base_size, tokenizer.get_vocab_size())),
                                   "weights": weights})
