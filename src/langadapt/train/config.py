"""The training schemas: the loop's settings (`pretrain:`, `train:`, `adapt:`), a classifier task
(`task:`), contrastive context prediction (`ccp:`) and distillation (`distill:`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from langadapt.data.config import TRANSLATION_FORMATS, CanarySetConfig, DataConfig, MixConfig, check_canaries
from langadapt.evaluate.config import JobEvaluateConfig
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.paths import (
    InputFolder,
    ModelFolder,
    OutputFolder,
    TextFile,
    TokenizerFile,
    check_model_files,
)
from langadapt.registry import (
    ADAPTERS,
    BUILT_OBJECTIVES,
    OBJECTIVES,
    Registry,
    phases,
)
from langadapt.schema import Section


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
    phase_lr: dict[str, float] = Field(default={}, description="learning rate per phase of a method of "
                                       "several phases, e.g. {embeddings: 1e-2, layra: 1e-3}; other phases use `lr`")

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        """A registered objective or a built one (`ccp`): an unknown name is told both kinds."""
        return Registry("objective", dict.fromkeys([*OBJECTIVES, *BUILT_OBJECTIVES])).check(value)

    @field_validator("phase_lr")
    @classmethod
    def _known_phases(cls, value: dict[str, float]) -> dict[str, float]:
        ADAPTERS.check(value)
        if any(lr <= 0 for lr in value.values()):
            raise ValueError("every phase learning rate must be > 0")
        return value

    def for_phase(self, method: str) -> TrainConfig:
        """This config with the learning rate of phase `method`."""
        return self.model_copy(update={"lr": self.phase_lr.get(method, self.lr)})


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
        """Each method is an adapter or phases of adapters joined by `+` (`embeddings+layra`)."""
        ADAPTERS.check([phase for method in value for phase in phases(method)])
        return value


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


class DistillConfig(Section):
    """Weights of the distillation losses (train/distill.py); the teacher is the job's `teacher:`."""

    gguf_file: str | None = Field(default=None, description="a GGUF file inside the teacher folder")
    relation_heads: int = Field(default=4, ge=1, description="R: Q, K and V are split into R relation heads, "
                                "so teacher and student head counts may differ; R divides both widths")
    attention: float = Field(default=1.0, ge=0, description="weight of the last block's attention KL")
    values: float = Field(default=1.0, ge=0, description="weight of the value-relation KL softmax(V·Vᵀ/√d)")
    logits: float = Field(default=0.0, ge=0, description="weight of the logit KL (0: MiniLM's losses only)")
    temperature: float = Field(default=1.0, gt=0, description="softens both distributions of the logit term")
    lm: float = Field(default=0.0, ge=0, description="weight of the student's own next-token loss: the only "
                      "signal rows the teacher's vocabulary lacks ever get")


def check_teacher(teacher: Path | None, tokenizer: str, arch: str, objective: str) -> None:
    """The job keys that only make sense together: raise ValueError naming the key to fix."""
    if tokenizer == "teacher" and teacher is None:
        raise ValueError("data.tokenizer 'teacher' needs `teacher:` (the teacher's model folder)")
    if teacher is not None and arch == "bert":
        raise ValueError("distillation trains a causal student: model.arch bert is masked; use gpt2 or llama")
    if teacher is not None and objective != "causal":
        raise ValueError("with `teacher:` the distillation losses replace train.objective; leave it 'causal'")


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
    method: str = Field(default="full", description="adapter (model/adapters.py), or phases joined by +")
    lora: LoraConfig = LoraConfig()
    teacher: ModelFolder | None = Field(default=None, description="distil from this frozen model folder (MiniLM "
                                        "losses, train/distill.py) instead of training on next tokens")
    distill: DistillConfig = DistillConfig()
    canaries: list[CanarySetConfig] = Field(default=[], description="canary sets injected on a schedule and scored "
                                         "every train.eval_every steps (data/injection.py)")
    task: TaskConfig | None = Field(default=None, description="fine-tune a classifier head on labelled data")
    ccp: CCPConfig = CCPConfig()
    evaluate: JobEvaluateConfig | None = Field(default=None, description="scores of the final model beyond "
                                               "held-out bpb (probes, translation), into results.parquet")

    @model_validator(mode="after")
    def _data_or_task(self):
        if self.data is None and self.task is None:
            raise ValueError("a training job needs `data` (text to train on) or `task` (labelled data)")
        if self.evaluate is not None and self.task is not None:
            raise ValueError("`evaluate:` scores a language model; a `task:` job scores its classifier itself")
        if self.evaluate is not None and self.evaluate.base and self.init_from is None:
            raise ValueError("evaluate.base scores the model the job starts from, and this job has no `init_from`")
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        ADAPTERS.check(phases(value))
        return value

    @model_validator(mode="after")
    def _teacher_and_canaries(self):
        if self.teacher is not None and self.data is None:
            raise ValueError("distillation (`teacher:`) trains on `data`, not on a classification `task`")
        check_teacher(self.teacher, self.data.tokenizer if self.data is not None else "bpe", self.model.arch,
                      self.train.objective)
        check_canaries(self.canaries, self.train.steps, self.method)
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
    def _phase_lr_names_phases(self):
        extra = sorted(set(self.train.phase_lr) - set(phases(self.method)))
        if extra:
            raise ValueError(f"train.phase_lr names {', '.join(extra)}, which method {self.method!r} does not "
                             f"train; its phases are {', '.join(phases(self.method))}")
        return self
