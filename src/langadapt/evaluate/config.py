"""The `evaluate:` sections: evaluations beyond held-out bits per byte, of an experiment's models
and of a training job's final model."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from langadapt.paths import InputFolder, TextFile
from langadapt.schema import LanguageCode, Section, direction_pair


class EvaluateConfig(Section):
    """Evaluations beyond held-out bpb, run on the base and every adapted model."""

    sib200: InputFolder | None = Field(default=None, description="SIB-200 folder (<lang>/{train,test}.tsv): a topic "
                                "probe trained and tested on the target language")
    probe_limit: int | None = Field(default=None, ge=10, description="at most this many probe training sentences")


class JobEvaluateConfig(EvaluateConfig):
    """A training job's scores of its final model beyond held-out bpb (`data.eval_files`), written
    into its results.parquet: a study then compares them across runs and seeds with no script."""

    sib200: InputFolder | None = Field(default=None, description="SIB-200 folder (<lang>/{train,test}.tsv): a "
                                       "topic probe per `probe_languages` language")
    base: bool = Field(default=False, description="also score `init_from`'s model the same way (run `base`), "
                       "prompted with this job's translation template: what training changed")
    probe_languages: list[LanguageCode] = Field(default=[], description="sib200: one topic probe per language, "
                                                "trained on its train split and tested on its test split")
    pos: InputFolder | None = Field(default=None, description="a UD treebank folder: the linear POS probe")
    translate: dict[str, tuple[TextFile, TextFile]] = Field(default={}, description="direction `src-tgt` → "
                                                           "[sources, references]: chrF and BLEU of greedy output")
    limit: int | None = Field(default=None, ge=1, description="translate: at most this many sentences per direction")
    max_new_tokens: int = Field(default=64, ge=1, description="translate: longest translation generated")
    batch_size: int = Field(default=16, ge=1, description="translate: sentences decoded together")

    @field_validator("translate")
    @classmethod
    def _directions(cls, value: dict) -> dict:
        return {"-".join(direction_pair(direction)): files for direction, files in value.items()}

    @model_validator(mode="after")
    def _probe_languages(self):
        if (self.sib200 is None) != (not self.probe_languages):
            raise ValueError("evaluate.sib200 and evaluate.probe_languages go together: the SIB-200 folder and "
                             "the languages a topic probe is trained and tested in")
        return self
