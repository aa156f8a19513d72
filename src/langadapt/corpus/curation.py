"""FineWeb2-style curation on datatrove, built from one config (`langadapt curate CURATION.yaml`).

    read → language ID → (per language) exact dedup → MinHash dedup → cluster size
         → per-language quality filters → quality signals → rehydrate → write

FineWeb2's own order: filtering comes after dedup, so the first part (`IDENTIFY`) does not depend
on the filters, and an ablation over filter sets (`filters.enabled`) reuses it. Thresholds come per
language from FineWeb2's published configs or are derived from reference text (`thresholds.py`).
Output folder:

    identified/<lang>/    documents that passed language ID
    deduped/<lang>/       deduplicated, with `cluster_size`
    output/<lang>/        that passed the quality filters, rehydrated (`rehydration_copies`)
    train.jsonl, heldout.jsonl   the corpus artifact (`corpus.document`), as the in-memory engine writes it:
                          what `format: curated` training sources and `corpus.source: curated` read
    removed/<filter>/<lang>/   every removed document with `filter_reason` and `filter_value`
    logs/<stage>/         datatrove's logs, stats and completion markers (a rerun resumes)
    thresholds.json, stats.json, removal_table.md
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup import (
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig

from langadapt.atomic import write_json, write_jsonl, write_text
from langadapt.config_file import validate
from langadapt.corpus.blocks import (
    ClusterSize,
    ExactCounts,
    LanguageFilters,
    LanguageIdFilter,
    QualitySignals,
    Rehydrate,
    normalised_text,
)
from langadapt.corpus.config import CurateConfig, CurationConfig
from langadapt.corpus.curate import CurateResult, decontaminate, id_bucket
from langadapt.corpus.document import Document, read_corpus, write_corpus
from langadapt.corpus.executors import Stage, chain, run_chain, write_slurm_scripts
from langadapt.corpus.lid import LidBackend, make_backend
from langadapt.corpus.readers import make_reader
from langadapt.corpus.thresholds import Thresholds, read_reference, resolve
from langadapt.corpus.words import word_tokenizer
from langadapt.errors import LangadaptError

log = logging.getLogger("langadapt")
BY_LANGUAGE = "${language}/${rank}.jsonl.gz"


class FilteredReader(JsonlReader):
    """Reads one language's filtered documents; a language the filters emptied reads as empty
    (datatrove's reader raises when its folder has no files)."""

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if self.data_folder.exists("") and self.data_folder.list_files(glob_pattern=self.glob_pattern):
            yield from super().run(data, rank, world_size)


def _removed(out: Path, name: str) -> JsonlWriter:
    return JsonlWriter(str(out / "removed" / name), output_filename=BY_LANGUAGE)


def resolve_thresholds(cfg: CurationConfig) -> dict[str, Thresholds]:
    """Every configured language's thresholds; a language with neither source is a user error."""
    lid = make_backend(cfg.lid.backend, cfg.lid.model_path)
    return {lang: language_thresholds(cfg, lang, reference_text(cfg, lang, lid), lid) for lang in cfg.languages}


def language_thresholds(cfg: CurationConfig, lang: str, reference: list[str] | None, lid: LidBackend) -> Thresholds:
    """`lang`'s thresholds under the config's `thresholds` and `lid` sections, from `reference` lines."""
    options = cfg.thresholds
    return apply_overrides(cfg, lang, resolve(lang, options.published_dir, reference, lid, options.prefer,
                                              options.pass_rate, options.stopwords, options.margin))


def apply_overrides(cfg: CurationConfig, lang: str, th: Thresholds) -> Thresholds:
    """`th` with the user's language-ID cutoff for `lang` (`lid.language_score`), when one is set:
    short paragraphs of a low-resource language score low, and only the user knows their corpus."""
    score = cfg.lid.language_score.get(lang)
    if score is None:
        return th
    return replace(th, language_score=score, notes={**th.notes, "language_score": f"set by lid.language_score "
                                                    f"(was {th.language_score})"})


def reference_text(cfg: CurationConfig, lang: str, lid: LidBackend) -> list[str] | None:
    """The lines of `lang`'s reference files, or None when the config lists none."""
    paths = cfg.thresholds.reference.get(lang)
    return read_reference(lang, paths, lid) if paths else None


IDENTIFY, FILTER = "identify", "filter"  # the two parts of the pipeline


def build_stages(cfg: CurationConfig, thresholds: dict[str, Thresholds], out: Path,
                 parts: tuple[str, ...] = (IDENTIFY, FILTER), identified: Path | None = None) -> list[Stage]:
    """The pipeline's datatrove stages: `IDENTIFY` (language ID and dedup, into `deduped/`) and
    `FILTER` (quality filters to `output/`), which reads `deduped/` of `identified` (default `out`)."""
    tasks = cfg.executor.tasks
    stages = []
    if IDENTIFY in parts:
        stages.append(Stage("lid", [
            *[make_reader(spec) for spec in cfg.inputs],
            LanguageIdFilter(cfg.lid.backend, cfg.lid.model_path,
                             {k: t.language_score for k, t in thresholds.items()}, _removed(out, "language_id")),
            JsonlWriter(str(out / "identified"), output_filename=BY_LANGUAGE),
        ], tasks))
        stages += [stage for lang in cfg.languages for stage in _dedup_stages(cfg, lang, out)]
    if FILTER in parts:
        options = cfg.filters.model_dump()
        stages.append(Stage("filter", [
            FilteredReader(str((identified or out) / "deduped"), glob_pattern="*/*.jsonl.gz"),
            *[LanguageFilters(kind, thresholds, options, _removed(out, kind)) for kind in cfg.filters.enabled],
            *([QualitySignals()] if cfg.filters.record_metrics else []),
            *([Rehydrate(cfg.rehydrate.weights, cfg.rehydrate.quality_key)] if cfg.rehydrate.enabled else []),
            JsonlWriter(str(out / "output"), output_filename=BY_LANGUAGE),
        ], tasks))
    return stages


def _dedup_stages(cfg: CurationConfig, lang: str, out: Path) -> list[Stage]:
    """One language's exact and MinHash dedup, from `identified/<lang>` to `deduped/<lang>`."""
    tasks = cfg.executor.tasks
    exact = ExactDedupConfig(content_getter=normalised_text)
    # sha1: datatrove's xxhash path passes str, which xxhash ≥ 4 refuses.
    minhash = MinhashConfig(n_grams=cfg.dedup.n_grams, num_buckets=cfg.dedup.num_buckets,
                            hashes_per_bucket=cfg.dedup.hashes_per_bucket, hash_config=HashConfig(64, "sha1"))
    work = out / "dedup" / lang

    def read():
        return FilteredReader(str(out / "identified" / lang), glob_pattern="*.jsonl.gz")

    def exact_filter(writer=None):
        return [ExactDedupFilter(str(work / "exact_dups"), exact, exclusion_writer=writer)] if cfg.dedup.exact else []

    stages = []
    if cfg.dedup.exact:
        stages += [
            Stage(f"{lang}-exact-1", [read(), ExactDedupSignature(str(work / "exact_sigs"), exact)], tasks),
            Stage(f"{lang}-exact-2", [ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), exact,
                                                      save_cluster_size=True)], 1),
        ]
    counts = str(work / "exact_counts") if cfg.dedup.exact else None
    if cfg.dedup.minhash:
        stages += [
            Stage(f"{lang}-minhash-1", [read(), *exact_filter(), *([ExactCounts(counts)] if counts else []),
                                        MinhashDedupSignature(str(work / "minhash_sigs"), minhash,
                                                              language=word_tokenizer(lang))], tasks),
            Stage(f"{lang}-minhash-2", [MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"),
                                                            config=minhash)], minhash.num_buckets),
            Stage(f"{lang}-minhash-3", [MinhashDedupCluster(str(work / "minhash_buckets"),
                                                            str(work / "minhash_clusters"), config=minhash,
                                                            save_cluster_id=True, save_cluster_size=True)], 1),
        ]
    final = [read(), *exact_filter(_removed(out, "exact_dedup"))]
    if cfg.dedup.minhash:
        final.append(MinhashDedupFilter(str(work / "minhash_clusters"), load_cluster_ids=True,
                                        load_cluster_sizes=True, exclusion_writer=_removed(out, "minhash_dedup")))
    final.append(ClusterSize(str(work / "minhash_clusters") if cfg.dedup.minhash else None, counts))
    final.append(JsonlWriter(str(out / "deduped"), output_filename=BY_LANGUAGE))
    return [*stages, Stage(f"{lang}-dedup", final, tasks)]


def curate(cfg: CurationConfig, parts: tuple[str, ...] = (IDENTIFY, FILTER), identified: Path | None = None) -> Path:
    """Run the pipeline with the configured executor; return the output folder. `parts=(IDENTIFY,)`
    stops after dedup; `parts=(FILTER,)` filters the `deduped/` documents of the run in `identified`.

    A run that filters ends with `stats.json`, `removal_table.md` and the corpus artifact (its last
    stage); a Slurm run returns once its jobs are submitted (or, with `submit: false`, once their
    scripts are written), and its last job writes them."""
    out = Path(cfg.output_dir) / cfg.name
    thresholds = resolve_thresholds(cfg)
    write_json(out / "thresholds.json", {lang: t.to_dict() for lang, t in thresholds.items()})
    stages = build_stages(cfg, thresholds, out, parts, identified)
    if FILTER in parts:
        stages.append(Stage("artifact", [WriteArtifact(out, cfg.languages, cfg.heldout_fraction, cfg.seed,
                                                        identified)], 1))
    executors = chain(stages, cfg.executor, out / "logs")
    if cfg.executor.kind == "slurm" and not cfg.executor.submit:
        scripts = write_slurm_scripts(executors[-1])
        log.info("wrote %d Slurm scripts under %s", len(scripts), out / "logs")
        return out
    run_chain(executors)
    return out


class WriteArtifact(PipelineStep):
    """The last stage: `stats.json`, `removal_table.md` and the corpus artifact, once every filter
    task is done. A stage of its own, so that a Slurm run writes them in its last job."""

    name = "📦 corpus artifact"
    type = "💽 - WRITER"

    def __init__(self, out: Path, languages: list[str], fraction: float, seed: int, identified: Path | None):
        super().__init__()
        self.out, self.languages, self.fraction, self.seed, self.identified = out, languages, fraction, seed, identified

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        write_stats(self.out, self.languages, self.identified)
        write_artifact(self.out, self.languages, self.fraction, self.seed)
        yield from ()


def _output_documents(out: Path, languages: list[str]) -> Iterator[Document]:
    """The pipeline's output as `Document`s: the language moves from datatrove's metadata to the field."""
    for lang in languages:
        for path in sorted((out / "output" / lang).glob("*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    metadata = dict(row.get("metadata") or {})
                    yield Document(str(row["id"]), row["text"], metadata.pop("language", lang), metadata)


def write_artifact(out: Path, languages: list[str], fraction: float, seed: int) -> Path:
    """`train.jsonl` and `heldout.jsonl` from `output/<lang>/`. A document is held out by a hash of
    its id (`fraction` of them); its rehydrated copies (`<id>#copy<k>`) are dropped rather than
    trained on, so held-out text never occurs in training (dedup ran before, so neither does a near
    duplicate of it)."""
    def held(doc: Document) -> bool:
        return id_bucket(doc.id.split("#copy")[0], seed) < fraction

    return write_corpus(out, (d for d in _output_documents(out, languages) if not held(d)),
                        (d for d in _output_documents(out, languages) if held(d) and "#copy" not in d.id))


def _count(folder: Path, originals: bool = False) -> int:
    """Documents in `folder`'s files; `originals`: not counting rehydrated copies (`<id>#copy<k>`)."""
    total = 0
    for path in folder.glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            total += sum(1 for line in handle if not (originals and "#copy" in json.loads(line)["id"]))
    return total


def _total(stat) -> int:
    """datatrove saves a counter as a number, or as a dict with its total once it has a unit."""
    return int(stat["total"] if isinstance(stat, dict) else stat)


def write_stats(out: Path, languages: list[str], identified: Path | None = None) -> dict:
    """`stats.json` (removals per filter, language and reason; kept and rehydrated counts; skipped
    input lines) and `removal_table.md`, read back from the output folders (language ID's and
    dedup's in `identified`, when an earlier run did them)."""
    removed: dict[str, dict[str, int]] = defaultdict(dict)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for folder in sorted({*(out / "removed").glob("*/*"), *((identified or out) / "removed").glob("*/*")}):
        filter_name, lang = folder.parent.name, folder.name
        for path in folder.glob("*.jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    reasons[filter_name][json.loads(line)["metadata"].get("filter_reason", filter_name)] += 1
        removed[lang][filter_name] = _count(folder)
    written = {lang: _count(out / "output" / lang) for lang in languages}
    kept = {lang: _count(out / "output" / lang, originals=True) for lang in languages}
    if not any(written.values()) and not removed:
        raise LangadaptError("the inputs yielded no documents (empty files, or every line skipped)",
                             where=str(out), fix="check `inputs` in the curation config; `stats.json` is not written.")
    lid_stats = json.loads(((identified or out) / "logs" / "lid" / "stats.json").read_text(encoding="utf-8"))
    reader_counts = {key: sum(_total(step["stats"].get(key, 0)) for step in lid_stats)
                     for key in ("skipped_lines", "empty_documents")}
    stats = {"removed": dict(removed), "reasons": {k: dict(v) for k, v in reasons.items()}, "kept": kept,
             "written_after_rehydration": written, "skipped_input_lines": reader_counts["skipped_lines"],
             "empty_documents": reader_counts["empty_documents"]}
    write_json(out / "stats.json", stats)
    write_text(out / "removal_table.md", removal_table(stats))
    return stats


def removal_table(stats: dict) -> str:
    """Markdown: one row per language, one column per filter, then kept and written."""
    filters = sorted({name for per_lang in stats["removed"].values() for name in per_lang})
    langs = sorted(set(stats["removed"]) | set(stats["kept"]))
    lines = ["| language | " + " | ".join(filters) + " | kept | written (rehydrated) |",
             "|---" * (len(filters) + 3) + "|"]
    for lang in langs:
        cells = [str(stats["removed"].get(lang, {}).get(name, 0)) for name in filters]
        lines.append(f"| {lang} | " + " | ".join(cells) +
                     f" | {stats['kept'].get(lang, '—')} | {stats['written_after_rehydration'].get(lang, '—')} |")
    return "\n".join(lines) + "\n"


def _pipeline(cfg: CurateConfig, train: list[Document], languages: list[str], work: Path) -> CurationConfig:
    """The datatrove pipeline of an experiment's curate stage, over its training documents."""
    write_jsonl(work / "input.jsonl", ({"id": d.id, "text": d.text, "lang": d.lang, **d.metadata} for d in train))
    return validate({
        **cfg.datatrove.model_dump(), "name": "corpus", "output_dir": work, "languages": languages,
        "heldout_fraction": 0, "inputs": [{"format": "jsonl", "path": work / "input.jsonl"}]},
        str(work), CurationConfig)


def identify_documents(cfg: CurateConfig, train: list[Document], languages: list[str], out: Path) -> Path:
    """Language ID and dedup of an experiment's training documents (`curate.engine: datatrove`), in
    `out/datatrove/corpus/`: a stage of its own, so runs that differ only in their filters share it."""
    return curate(_pipeline(cfg, train, languages, out / "datatrove"), parts=(IDENTIFY,))


def curate_documents(cfg: CurateConfig, train: list[Document], heldout: list[Document], languages: list[str],
                     out: Path, identified: Path | None = None) -> CurateResult:
    """An experiment's curate stage on the datatrove engine (`curate.engine: datatrove`).

    The held-out split (the same ids in every language, or given evaluation text) and the
    decontamination are the in-memory engine's; between them the training documents go through this
    pipeline, in `out/datatrove/`, each checked against its declared language; language ID and
    dedup are read from `identified` (an `identify_documents` folder) when given. Writes the same
    artifact to `out`."""
    work = out / "datatrove"
    pipeline = _pipeline(cfg, train, languages, work)
    if identified is None:
        curated = curate(pipeline)
    else:
        curated = curate(pipeline, parts=(FILTER,), identified=identified / "datatrove" / "corpus")
    curated = list(read_corpus(curated, "train"))
    kept, leaked = decontaminate(heldout)(curated)
    stats = {**json.loads((work / "corpus" / "stats.json").read_text(encoding="utf-8")),
             "decontaminated": dict(Counter(d.lang for d, _ in leaked)),
             "heldout": dict(Counter(d.lang for d in heldout))}
    for lang in languages:
        if not any(d.lang == lang for d in kept):
            raise LangadaptError(f"no training documents left for {lang} after datatrove curation",
                                 where=str(work / "corpus" / "removal_table.md"),
                                 fix="see which filter removed them; give thresholds that fit the text "
                                     "(`curate.datatrove.thresholds`) or use `curate.engine: in-memory`.")
    write_corpus(out, kept, heldout)
    write_json(out / "stats.json", stats)
    return CurateResult(train=kept, heldout=heldout, stats=stats)
