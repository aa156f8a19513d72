"""The curation schemas: `langadapt curate`'s datatrove pipeline (language ID, thresholds, filters,
dedup, rehydration, executor) and an experiment's `corpus:` and `curate:` sections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from langadapt.paths import (
    ANY_INPUT,
    CORPUS,
    JSONL,
    JSONL_INPUT,
    PARQUET_INPUT,
    TEXT_INPUT,
    ByFormat,
    InputFile,
    InputFolder,
    OutputFolder,
    TextFile,
)
from langadapt.registry import (
    EXECUTORS,
    LID_BACKENDS,
    QUALITY_FILTERS,
)
from langadapt.schema import ByLanguage, LanguageCode, Section


class CurationInput(Section):
    format: Literal["jsonl", "parquet", "text", "hf"] = Field(description="text: a folder of .txt files, one "
                                                               "document each; hf: a save_to_disk folder or data files")
    path: Annotated[Path, ByFormat({"jsonl": JSONL_INPUT, "parquet": PARQUET_INPUT, "text": TEXT_INPUT,
                                    "hf": ANY_INPUT})]
    glob: str | None = Field(default=None, description="files to read inside `path` (default: all of the format)")
    text_key: str = "text"
    id_key: str = "id"
    on_error: Literal["fail", "skip"] = Field(default="fail", description="malformed lines: stop, or count and skip")
    name: str | None = Field(default=None, description="`source` in each document's metadata (default: format)")

    @property
    def source_name(self) -> str:
        return self.name or self.format


class CurationLid(Section):
    backend: str = Field(default="py3langid", description="py3langid (offline, built in), fasttext or glotlid")
    model_path: InputFile | None = Field(default=None, description="local .bin model for fasttext / glotlid")
    language_score: ByLanguage[Annotated[float, Field(gt=0, le=1)]] = Field(
        default={}, description="per language: the language-ID cutoff, instead of the derived or published one "
        "(lower it where `--check-thresholds` shows low recall on clean text)")


    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return LID_BACKENDS.check(value)


class CurationThresholds(Section):
    published_dir: InputFolder | None = Field(default=None, description="folder of FineWeb2 <lang>.yml configs")
    prefer: Literal["published", "derived"] = "published"
    reference: ByLanguage[list[TextFile]] = Field(default={}, description="per language: clean text files, one "
                                                                     "sentence or paragraph a line, to derive from")
    pass_rate: float = Field(default=0.99, gt=0.5, le=1, description="derived thresholds: the share of held-out "
                             "reference text each must pass (sets the quantile)")
    margin: float = Field(default=3.0, ge=0, description="derived thresholds: interquartile ranges of the reference "
                          "added beyond its tail, so clean text of other domains passes (0: the bare quantile)")
    stopwords: Literal["published", "derived"] = Field(
        default="derived", description="with reference text: the language's frequent words from it, also under "
        "published thresholds (FineWeb2's lists are tuned to web text)")


class CurationFilters(Section):
    enabled: list[str] = Field(default=["gopher_repetition", "fineweb_quality", "gopher_quality"],
                               description="FineWeb2's own pipeline applies these three and not `c4`")
    min_doc_words: int = Field(default=50, ge=0, description="Gopher quality: fewer words is too short")
    min_lines: int = Field(default=5, description="C4: fewer lines is too short (-1 disables)")
    char_duplicates_ratio: float = Field(default=0.1, gt=0, le=1)
    record_metrics: bool = Field(default=True, description="write each kept document's quality signals (the "
                                 "metrics the filters threshold) to metadata.quality, for ablations")

    @field_validator("enabled")
    @classmethod
    def _known_filters(cls, value: list[str]) -> list[str]:
        return QUALITY_FILTERS.check(value)


class CurationDedup(Section):
    exact: bool = True
    minhash: bool = True
    n_grams: int = Field(default=5, ge=1, description="MinHash shingles: word n-grams")
    num_buckets: int = Field(default=14, ge=1)
    hashes_per_bucket: int = Field(default=8, ge=1)


class CurationRehydrate(Section):
    enabled: bool = True
    weights: list[tuple[int, int]] = Field(
        default=[(1, 1), (2, 2), (3, 3), (5, 5), (100, 8), (1000, 1)],
        description="[smallest cluster size, copies] bands; FineWeb2's published weights by default")
    quality_key: str | None = Field(default=None, description="metadata key of a score that also scales copies")


class CurationExecutor(Section):
    kind: str = Field(default="local", description="local, slurm, ray, or one added to registry.EXECUTORS")
    tasks: int = Field(default=1, ge=1, description="shards the input is split into")
    workers: int = Field(default=1, ge=1, description="tasks run at once (local)")
    partition: str = Field(default="cpu", description="slurm partition")
    time: str = Field(default="04:00:00", description="slurm time limit per task")
    cpus_per_task: int = Field(default=1, ge=1)
    mem_per_cpu_gb: float = Field(default=2, gt=0)
    venv_path: str | None = Field(default=None, description="slurm: `source`d before each job")
    submit: bool = Field(default=True, description="slurm: submit with sbatch; false writes the scripts only")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return EXECUTORS.check(value)


class CurationStages(Section):
    """The datatrove pipeline's stages: `langadapt curate` and an experiment's `curate.datatrove`."""

    lid: CurationLid = CurationLid()
    thresholds: CurationThresholds = CurationThresholds()
    filters: CurationFilters = CurationFilters()
    dedup: CurationDedup = CurationDedup()
    rehydrate: CurationRehydrate = CurationRehydrate()
    executor: CurationExecutor = CurationExecutor()


class CorpusConfig(Section):
    source: Literal["sample", "jsonl", "text", "curated"] = "sample"
    files: Annotated[list[Path], ByFormat({"jsonl": JSONL, "curated": CORPUS}, by="source")] = Field(
        default=[], description="JSONL files with id/text/lang (source: jsonl); source: "
                              "curated — one corpus folder (train.jsonl + heldout.jsonl) from `langadapt curate`")
    texts: ByLanguage[list[TextFile]] = Field(default={}, description="source: text — per language, text "
                                         "files of one text a line (.txt, or .tsv with a `text` column); line-parallel "
                                         "files keep held-out text parallel")

    heldout: ByLanguage[list[TextFile]] = Field(default={}, description="per language, text files (.txt, or "
                                           ".tsv with a `text` column) of evaluation text, e.g. FLORES; given, nothing "
                                           "is held out of the corpus and training text equal to it is removed")


    @model_validator(mode="after")
    def _inputs_given(self):
        if self.source == "jsonl" and not self.files:
            raise ValueError("corpus.source is 'jsonl' but corpus.files is empty; list the JSONL files")
        if self.source == "curated" and len(self.files) != 1:
            raise ValueError("corpus.source is 'curated': corpus.files must name one folder written by `langadapt "
                             "curate` (with train.jsonl and heldout.jsonl)")
        if self.source == "text" and not self.texts:
            raise ValueError("corpus.source is 'text' but corpus.texts is empty; map each language to its files")
        return self


class CurateConfig(Section):
    engine: Literal["in-memory", "datatrove"] = Field(
        default="in-memory", description="in-memory: the steps below, for short catalog strings; datatrove: the "
        "`langadapt curate` pipeline (`curate.datatrove`) between the same held-out split and decontamination")
    datatrove: CurationStages = Field(default_factory=CurationStages,
                                      description="engine: datatrove — its language ID, thresholds, filters, dedup")
    heldout_fraction: float = Field(default=0.1, gt=0, lt=1)
    min_chars: int = Field(default=3, ge=0)
    lid_threshold: float = Field(default=0.9, gt=0, le=1)
    lid_min_chars: int = Field(default=20, ge=0, description="shorter texts skip the language-ID check")
    near_dup_threshold: float = Field(default=0.85, gt=0, le=1)
    minhash_perms: int = Field(default=64, ge=16)
    shingle_chars: int = Field(default=5, ge=1)


class CurationConfig(CurationStages):
    kind: ClassVar[str] = "curate"  # the YAML's `kind:` (langadapt/kinds.py)
    name: str = Field(default="curation", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    output_dir: OutputFolder = Path("curated")
    languages: list[LanguageCode] = Field(min_length=1, description="languages to keep (others are removed "
                                                                 "by language ID)")
    inputs: list[CurationInput] = Field(min_length=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1, description="documents held out of train.jsonl "
                                    "into heldout.jsonl, by a hash of their id")
    seed: int = Field(default=0, description="seed of the held-out hash")

    @model_validator(mode="after")
    def _cutoffs_for_configured_languages(self):
        if unknown := sorted(set(self.lid.language_score) - set(self.languages)):
            raise ValueError(f"lid.language_score names {', '.join(unknown)}, not in `languages` "
                             f"({', '.join(self.languages)}); set cutoffs only for configured languages")
        return self
