"""The `evaluate:` sections: evaluations beyond held-out bits per byte, of an experiment's models
and of a training job's final model."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from langadapt.paths import InputFolder, TextFile
from langadapt.schema import LanguageCode, Section, normalise_code


def treebank_files(folder: Path) -> list[Path]:
    """The train and test files of a UD treebank folder that a POS task or probe reads."""
    return [path for split in ("train", "test") for path in sorted(Path(folder).glob(f"*-ud-{split}.conllu"))[:1]]


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
        named = {}
        for direction, files in value.items():
            parts = direction.split("-", 1)
            if len(parts) != 2:
                raise ValueError(f"translate: {direction!r} is not a direction `source-target`, e.g. "
                                 "eng_Latn-swh_Latn")
            named[f"{normalise_code(parts[0])}-{normalise_code(parts[1])}"] = files
        return named

    @model_validator(mode="after")
    def _probe_languages(self):
        if (self.sib200 is None) != (not self.probe_languages):
            raise ValueError("evaluate.sib200 and evaluate.probe_languages go together: the SIB-200 folder and "
                             "the languages a topic probe is trained and tested in")
        return self

    def files(self) -> list[Path]:
        """The files scoring reads, which the job's manifest hashes (a rerun refuses changed ones)."""
        files = [Path(path) for pair in self.translate.values() for path in pair]
        files += [Path(self.sib200) / language / f"{split}.tsv" for language in self.probe_languages
                  for split in ("train", "test")]
        return files + (treebank_files(self.pos) if self.pos is not None else [])
