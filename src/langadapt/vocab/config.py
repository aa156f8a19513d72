"""The `vocab:` section: tokenizer training, expansion, and the new rows' initialisers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from langadapt.paths import (
    InputFile,
)
from langadapt.registry import (
    INITIALISERS,
)
from langadapt.schema import Section


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
