"""The experiment config (`langadapt run`), assembled from the sections each stage declares
beside its code (corpus/, vocab/, model/, data/, train/, evaluate/ `config.py`), and the loaders
of every config kind: an experiment, a training job (`train/config.py`) and a curation
(`corpus/config.py`). Typos fail at load time, and every error names the key, the bad value and
the expected form (config_file.py), so a user can fix the file without reading this module.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from langadapt.config_file import read_yaml, validate
from langadapt.corpus.config import (
    CorpusConfig,
    CurateConfig,
    CurationConfig,
)
from langadapt.evaluate.config import EvaluateConfig
from langadapt.model.config import BaseModelConfig, ExportConfig, ModelConfig
from langadapt.paths import OutputFolder
from langadapt.schema import LanguageCode, Section
from langadapt.train.config import AdaptConfig, TrainConfig
from langadapt.vocab.config import VocabConfig


class LanguagesConfig(Section):
    source: list[LanguageCode] = Field(
        default=["eng_Latn", "deu_Latn", "ces_Latn", "pol_Latn", "slk_Latn"], min_length=1,
        description="languages the base model is pretrained on",
    )
    target: LanguageCode = Field(default="hsb_Latn", description="the new language the model is adapted to")

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


# ---------------------------------------------------------------------------------------------
# The experiment YAML (`langadapt run`).


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


def parse_config(data: dict, source: str = "<config>", schema: type[Section] = ExperimentConfig) -> Section:
    return validate(data, source, schema)


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


def load_curation_config(path: Path, on_error: str | None = None, data: dict | None = None) -> CurationConfig:
    """Read and validate a curation YAML (see examples/curate.yaml), or its mapping `data` already
    read; `on_error` overrides every input's."""
    data = read_yaml(path) if data is None else data
    if on_error is not None:
        data["inputs"] = [{**spec, "on_error": on_error} if isinstance(spec, dict) else spec
                          for spec in data.get("inputs") or []]
    return validate(data, str(path), CurationConfig)
