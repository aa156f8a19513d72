"""Models from scratch by named size, saved and loaded as stock transformers folders (safetensors).

Every architecture is a stock transformers class, so a saved folder loads anywhere: GPT-2,
the Llama family (Llama, Qwen2, Mistral, Gemma: one builder, `AutoConfig.for_model`) and
BERT (masked LM). A folder can carry a model card (`langadapt.json`, model/card.py).
A preset names a shape (registry.SIZE_PRESETS); the parameter count also depends on the vocabulary
(its ≈ figures are for a 2-4k subword vocabulary; the Goldfish shapes reach their published sizes with a 50k
vocabulary). Byte-level models use `vocab.tokenizer.byte_tokenizer()`, whose vocabulary is the 256 bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from langadapt.atomic import write_folder
from langadapt.model.card import ModelCard, write_card
from langadapt.model.config import ModelConfig
from langadapt.model.kind import model_kind
from langadapt.paths import check_weights
from langadapt.registry import ARCHITECTURES
from langadapt.vocab.tokenizer import as_transformers, end_of_text

MASK = "<|mask|>"


def build_model(cfg: ModelConfig, tokenizer: Tokenizer) -> PreTrainedModel:
    """A freshly initialised model of `cfg.arch` and `cfg`'s shape, sized to `tokenizer`."""
    return ARCHITECTURES[cfg.arch](cfg, tokenizer)


def build_gpt2(cfg: ModelConfig, tokenizer: Tokenizer) -> GPT2LMHeadModel:
    eos_id = end_of_text(tokenizer)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=cfg.tie_embeddings,
        activation_function="gelu_pytorch_tanh",  # GPT-2's tanh GELU in one kernel, not five (same values)
    )
    return GPT2LMHeadModel(config)


def build_decoder(cfg: ModelConfig, tokenizer: Tokenizer) -> PreTrainedModel:
    """Llama-family: RMSNorm, rotary positions, a gated MLP (8/3 × width keeps GPT-2's MLP size);
    `cfg.arch` picks the stock class (Qwen2 adds q/k/v biases, Gemma scales embeddings by √d)."""
    eos_id = end_of_text(tokenizer)
    config = AutoConfig.for_model(
        cfg.arch,
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=cfg.n_embd,
        intermediate_size=32 * round(cfg.n_embd * 8 / 3 / 32),
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_kv_head or cfg.n_head,
        head_dim=cfg.n_embd // cfg.n_head,
        max_position_embeddings=cfg.block_size,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=None,
        tie_word_embeddings=cfg.tie_embeddings,
    )
    return AutoModelForCausalLM.from_config(config)


def build_bert(cfg: ModelConfig, tokenizer: Tokenizer) -> BertForMaskedLM:
    """BERT-style masked LM. Adds the `<|mask|>` special token to `tokenizer` if it lacks one."""
    if tokenizer.token_to_id(MASK) is None:
        tokenizer.add_special_tokens([MASK])
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=cfg.n_embd,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        intermediate_size=4 * cfg.n_embd,
        max_position_embeddings=cfg.block_size,
        type_vocab_size=1,
        pad_token_id=end_of_text(tokenizer),
        tie_word_embeddings=cfg.tie_embeddings,
    )
    config.mask_token_id = tokenizer.token_to_id(MASK)
    return BertForMaskedLM(config)


def save_model(model: PreTrainedModel, tokenizer: Tokenizer | PreTrainedTokenizerBase, path: Path,
               card: ModelCard | None = None) -> Path:
    """Write model (safetensors, generation config), tokenizer and `card` into a temp folder, then
    rename it into place. A `tokenizers.Tokenizer` is wrapped by `as_transformers`; pass a
    transformers tokenizer (`as_transformers(tok, like=base)`) to keep a base's chat template."""
    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        saved = tokenizer if isinstance(tokenizer, PreTrainedTokenizerBase) else as_transformers(tokenizer)
        saved.save_pretrained(tmp)
        if card is not None:
            write_card(card, tmp)

    return write_folder(path, fill)


def default_device() -> torch.device:
    """Where a model is evaluated outside the training loop (which `accelerate` places): CUDA if present."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(path: Path, gguf_file: str | None = None) -> PreTrainedModel:
    """Load a local model folder (safetensors only, never remote code), or a GGUF file in it.

    Masked-LM folders (BERT, any encoder-only model: model/kind.py) load as masked LMs, everything
    else as a causal LM; transformers dequantises GGUF weights to float on load.
    """
    if gguf_file is not None:
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file, trust_remote_code=False)
        model.hf_quantizer = None  # dequantised on load: plain float weights, which save_pretrained may write
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        return model
    check_weights(path, f"model {path}")
    masked = model_kind(AutoConfig.from_pretrained(path)) == "masked"
    auto = AutoModelForMaskedLM if masked else AutoModelForCausalLM
    return auto.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
