"""The `distill:` section of a training job (MiniLM distillation from `teacher:`), torch-free so
that config.py can validate a job without importing the training code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class DistillConfig(BaseModel):
    """Weights of the distillation losses (train/distill.py); the teacher is the job's `teacher:`."""

    model_config = ConfigDict(extra="forbid")

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
