"""Tiny causal LMs from scratch, saved and loaded as stock transformers folders (safetensors)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel

from langadapt.config import ModelConfig
from langadapt.vocab.train import EOS, as_transformers


def build_gpt2(cfg: ModelConfig, tokenizer: Tokenizer) -> GPT2LMHeadModel:
    eos_id = tokenizer.token_to_id(EOS)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def save_model(model: PreTrainedModel, tokenizer: Tokenizer, path: Path) -> Path:
    """Write model (safetensors) and tokenizer into a temp folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(tmp)
        as_transformers(tokenizer).save_pretrained(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_model(path: Path) -> PreTrainedModel:
    """Load a local model folder: safetensors only, never remote code."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
