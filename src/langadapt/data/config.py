"""The data schemas: a training job's sources and mixture (`data:`), translation prompts, an
experiment's adaptation mixture (`adapt.mix`), and canary sets injected on a schedule (`canaries:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from langadapt.paths import (
    ANY_INPUT,
    CODE,
    CORPUS,
    JSONL,
    TEXT,
    ByFormat,
    CodeGlob,
    ModelFolder,
    TextFile,
    TokenizerSpec,
)
from langadapt.schema import ByLanguage, LanguageCode, Section, direction_pair


class MixConfig(Section):
    """What is mixed into the target text during adaptation; weights are relative to the target's 1."""

    replay: float = Field(default=0.0, ge=0, description="source-language training text (against forgetting)")
    parallel: float = Field(default=0.0, ge=0, description="interlinear documents: a pivot sentence, then its "
                            "target translation (pairs matched by document id), alternating")
    code: float = Field(default=0.0, ge=0, description="source code from `code_files`")
    pivot: LanguageCode | None = Field(default=None, description="language of the parallel side "
                                       "(default: first source)")
    pairs_per_document: int = Field(default=8, ge=1)
    code_files: list[CodeGlob] = Field(default=[], description="glob patterns of code files, e.g. 'src/**/*.py'")


    @model_validator(mode="after")
    def _code_given(self):
        if self.code and not self.code_files:
            raise ValueError("mix.code > 0 needs mix.code_files (glob patterns of code files)")
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
    names: ByLanguage[str] = Field(default={}, description="language → name in the template "
                                     "(default: the code)")
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


    def rates(self, languages: list[str]) -> dict[tuple[str, str], float]:
        """(source, target) → share of this source's documents; each code must be one of `languages`."""
        if self.directions == "both":
            return {(a, b): 1.0 for a in languages for b in languages if a != b}
        named = self.directions if isinstance(self.directions, dict) else dict.fromkeys(self.directions, 1.0)
        rates = {}
        for direction, rate in named.items():
            pair = direction_pair(direction)
            missing = [code for code in pair if code not in languages]
            if missing:
                raise ValueError(f"direction {direction!r} names {', '.join(missing)}, not in the data "
                                 f"(languages: {', '.join(languages)})")
            if rate <= 0:
                raise ValueError(f"direction {direction!r} has rate {rate}; rates must be > 0")
            rates[pair] = float(rate)
        return rates


TRANSLATION_FORMATS = ("translation", "backtranslation", "codeswitch")  # prompt → target documents, loss masked
LINE_FORMATS = ("text", "parallel", *TRANSLATION_FORMATS)  # files read line by line (`lines` cuts them)


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
    languages: list[LanguageCode] = Field(default=[], description="sample: languages to read; "
                                          "text/parallel: their codes")
    weight: float = Field(default=1.0, gt=0, description="sampling weight (ignored when data.alpha is set)")
    parallel_as: Literal["interlinear", "pairs"] = "interlinear"
    pairs_per_document: int = Field(default=8, ge=1)
    max_bytes: int | None = Field(default=None, ge=0, description="keep documents, in order, up to this many UTF-8 "
                                  "bytes (a data budget); 0 leaves the source out, so a sweep can switch it off")
    lines: tuple[int | None, int | None] | None = Field(default=None, description="[first, end): only these lines "
                                                      "of each file, as a Python slice (negative: from the end), "
                                                      "so one file gives a training part and a held-out part")
    translation: TranslationConfig = TranslationConfig()

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
        if self.lines is not None and (self.format not in LINE_FORMATS or any(Path(f).is_dir() for f in self.files)):
            raise ValueError(f"source {self.name!r}: `lines` cuts text files line by line, which a {self.format!r} "
                             "source of folders or documents is not; give line files (or, for a SIB-200 "
                             "folder, choose `translation.splits`)")
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
    eval_files: ByLanguage[TextFile] = Field(default={}, description="language → text file (one text per line) "
                                        "scored in bits per byte every train.eval_every steps")


GENERATE_KEYS = {  # kind → (required, optional) keys of `generate:` besides `count`
    "canary": (("prefix",), ("digits",)),
    "fact": (("prompt", "words_from"), ()),
    "heldout": (("texts_from",), ("max_chars",)),
}


class GenerateConfig(Section):
    """A canary set made instead of read (`generate:` in place of `file:`): a study needs no script
    to write its canary files first. Each kind takes its own keys (GENERATE_KEYS); the set is a pure
    function of them and the set's `seed`, written into the run folder (data/injection.py)."""

    count: int = Field(ge=1, le=10_000, description="items made: canaries, facts or texts")
    prefix: str | None = Field(default=None, description="canary: the text before each secret (numbered)")
    digits: int = Field(default=6, ge=1, description="canary: digits in each secret")
    prompt: str | None = Field(default=None, description="fact: the prompt, with `{name}` where a made-up name goes")
    words_from: TextFile | None = Field(default=None, description="fact: a training text; its lowercase "
                                        "alphabetic words longer than 4 letters give each answer and 3 distractors")
    texts_from: TextFile | None = Field(default=None, description="heldout: a text file (one text a line) or a "
                                        "SIB-200/FLORES .tsv (its `text` column); its first `count` texts are taken")
    max_chars: int | None = Field(default=None, ge=1, description="heldout: skip texts longer than this")

    def check_kind(self, kind: str) -> None:
        """Raise ValueError unless the keys given are the ones a `kind` set is made from."""
        required, optional = GENERATE_KEYS[kind]
        takes = ", ".join(("count", *required, *optional))
        if wrong := sorted(self.model_fields_set - {"count", *required, *optional}):
            raise ValueError(f"`generate.{wrong[0]}` is not for a {kind} set, which takes {takes}")
        if missing := [key for key in required if getattr(self, key) is None]:
            raise ValueError(f"a generated {kind} set needs `generate.{missing[0]}` (it takes {takes})")
        if any(char in text for text in (self.prefix or "", self.prompt or "") for char in "\t\n"):
            raise ValueError("`generate.prefix` and `generate.prompt` are one field of a tab-separated line: "
                             "write them without tabs or line breaks")
        if kind == "fact" and "{name}" not in self.prompt:
            raise ValueError("`generate.prompt` needs a `{name}` placeholder: each fact is about a made-up name")
        if kind == "heldout" and self.count < 2:
            raise ValueError("a heldout set needs `generate.count` 2 or more (half of it is injected)")


class CanarySetConfig(Section):
    """One canary set: what it injects (`file`, or `generate`), when (`steps` or `step_range`) and
    how often (`repeat`).

    File formats, one item per line, fields separated by tabs: canary `prefix<TAB>secret`; fact
    `prompt<TAB>answer<TAB>distractor[<TAB>distractor...]`; heldout: one text per line (a seeded half
    is injected, the other half never is). The injected text joins the fields it uses by a space."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["canary", "fact", "heldout"]
    file: TextFile | None = Field(default=None, description="the set's items (or give `generate`)")
    generate: GenerateConfig | None = Field(default=None, description="make the set instead of reading a `file`: "
                                            "written to <run folder>/canaries/<name>.tsv (.txt for heldout)")
    steps: list[int] = Field(default=[], description="the steps that receive inserts (or give `step_range`)")
    step_range: tuple[int, int] | None = Field(default=None, description="[first, last]: every step between")
    repeat: int = Field(default=1, ge=1, description="times each injected sequence is inserted in all, spread "
                        "evenly over the scheduled steps")
    alternatives: int = Field(default=100, ge=1, description="canary: seeded random alternatives it is ranked among")
    seed: int = Field(default=0, description="seeds the canary alternatives, the heldout split and `generate`")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.file is None) == (self.generate is None):
            has = "both `file` and `generate`" if self.file else "neither `file` nor `generate`"
            raise ValueError(f"canary set {self.name!r} has {has}; give one: `file` (a set to read) or `generate` "
                             "(a set to make)")
        if self.generate is not None:
            self.generate.check_kind(self.kind)
        return self

    @model_validator(mode="after")
    def _one_schedule(self):
        if bool(self.steps) == (self.step_range is not None):
            raise ValueError(f"canary set {self.name!r}: give either `steps` or `step_range`")
        first, last = self.step_range or (min(self.steps), max(self.steps))
        if first < 1 or last < first:
            raise ValueError(f"canary set {self.name!r}: steps start at 1 and a step_range is [first, last]")
        return self

    def scheduled_steps(self) -> list[int]:
        return sorted(set(self.steps)) if self.steps else list(range(self.step_range[0], self.step_range[1] + 1))

    def inputs(self) -> list[Path]:
        """The files the set is read or made from: what a run's manifest hashes."""
        if self.generate is None:
            return [self.file]
        return [path for path in (self.generate.words_from, self.generate.texts_from) if path is not None]


def check_canaries(canaries: list[CanarySetConfig], steps: int, method: str) -> None:
    """Checks that need the whole job: raise ValueError naming the canary set and the fix."""
    names = [canary.name for canary in canaries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"canary set names must differ; {', '.join(twice)} is used more than once")
    for canary in canaries:
        if max(canary.scheduled_steps()) > steps:
            raise ValueError(f"canary set {canary.name!r} injects at step {max(canary.scheduled_steps())}, beyond "
                             f"train.steps {steps}; schedule it within the run or raise train.steps")
    if canaries and "+" in method:
        raise ValueError(f"canary sets are injected into one training run; method {method!r} has phases")
