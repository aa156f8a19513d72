"""A transformers causal-LM folder as one GGUF file, for llama.cpp, Ollama and LM Studio.

Why here and not llama.cpp's converter: an adapted model carries a vocabulary langadapt grew
(new merges, new rows, control tokens), and converters that rebuild the tokenizer from a base
repository drop or mangle exactly those. This writer reads the folder's own `tokenizer.json`.

Everything GGUF-specific comes from the `gguf` package itself: tensor names from its mapping
tables (`get_tensor_name_map`: `model.layers.3.self_attn.q_proj` → `blk.3.attn_q`), metadata
keys from `GGUFWriter`'s methods, Q8_0 blocks from `gguf.quants`. What this module adds is the
per-family layout llama.cpp expects, which transformers' GGUF loader undoes on reading:

- llama (and Mistral, written as llama): q/k rows permuted from rotate-half to interleaved rotary
  pairs (the loader's `_reverse_permute_weights` is the inverse);
- Gemma 2/3: RMSNorm weights stored as `1 + w` (the loader subtracts 1 from every `*norm.weight`);
- Qwen2/Qwen3: as they are (llama.cpp uses the rotate-half layout for them);
- Phi-3: as they are too: llama.cpp's `attn_qkv` and `ffn_up` are Phi-3's own fused `qkv_proj`
  (q, k, v rows in that order) and `gate_up_proj` (gate rows, then up rows), rotate-half rotary;
- GPT-2: Conv1D weights (stored input × output) transposed to linear layout (the loader transposes
  them back), learned positions as `position_embd`, LayerNorm with biases, no rotary keys.

A file is checked by `check_gguf`: reloaded with transformers' GGUF loader, it must tokenise
text into the same ids and give logits within quantisation tolerance of the folder's model.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel

from langadapt.atomic import write_with
from langadapt.errors import LangadaptError
from langadapt.model.gguf_tokenizer import write_tokenizer

log = logging.getLogger("langadapt")

QUANTS = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class Family:
    """How llama.cpp lays out one transformers model type."""

    arch: str  # GGUF `general.architecture` (a value of gguf.MODEL_ARCH_NAMES)
    permute_qk: bool = False  # llama.cpp's interleaved rotary layout for the q/k rows
    norm_offset: float = 0.0  # Gemma's RMSNorm scales by (1 + w); llama.cpp stores 1 + w
    sliding_window: bool = False  # the file says the window (Gemma 2/3)
    softcapping: bool = False  # attention and final logit soft-capping (Gemma 2)
    conv1d: bool = False  # GPT-2: Conv1D weights transposed, LayerNorm eps, learned positions, no rotary


FAMILIES: dict[str, Family] = {
    "llama": Family("llama", permute_qk=True),
    # llama.cpp's architecture for Mistral; it reloads as Llama, which computes the same up to the sliding
    # window (llama.cpp's llama graph has none).
    "mistral": Family("llama", permute_qk=True),
    "qwen2": Family("qwen2"),
    "qwen3": Family("qwen3"),
    "gemma2": Family("gemma2", norm_offset=1.0, sliding_window=True, softcapping=True),
    "gemma3_text": Family("gemma3", norm_offset=1.0, sliding_window=True),
    "phi3": Family("phi3", sliding_window=True),
    "gpt2": Family("gpt2", conv1d=True),
}

# Model types with a reason they are not written. The round trip through transformers' loader is
# the check every export gets, so a family only counts as supported once that check passes.
REFUSED: dict[str, str] = {
    "gemma": "transformers' GGUF loader has no `gemma` (Gemma 1) architecture, so the file cannot be checked",
}


@dataclass(frozen=True)
class RoundTrip:
    """How a GGUF file reloaded by transformers compares with the folder it came from."""

    tokens: int  # token ids compared
    same_ids: bool  # the file's tokenizer gives the folder's ids on the check text
    max_abs_logit_diff: float  # max |Δ logit| over those positions and the whole vocabulary
    top1_agreement: float  # share of positions where both models predict the same next token

    def __str__(self) -> str:
        return (f"{self.tokens} tokens, ids {'identical' if self.same_ids else 'DIFFER'}, "
                f"max |Δlogit| {self.max_abs_logit_diff:.2e}, same top-1 prediction at {self.top1_agreement:.1%}")


def check_quant(quant: str) -> str:
    if quant not in QUANTS:
        raise LangadaptError(f"unknown GGUF quantisation {quant!r}", fix=f"use one of {', '.join(QUANTS)}.")
    return quant


def family(config: PretrainedConfig) -> Family:
    """The layout of `config`'s model type, or a LangadaptError saying why it has none."""
    model_type = config.model_type
    if model_type in REFUSED:
        raise LangadaptError(f"cannot export a {model_type} model to GGUF: {REFUSED[model_type]}",
                             fix=f"export it with `--to merged` instead; GGUF export supports {', '.join(FAMILIES)}.")
    if model_type not in FAMILIES:
        raise LangadaptError(f"cannot export a {model_type} model to GGUF: its llama.cpp layout is not known here",
                             fix=f"export it with `--to merged` instead; GGUF export supports {', '.join(FAMILIES)}.")
    rope = getattr(config, "rope_parameters", None) or {}
    parts = [part for part in (rope.values() if "rope_type" not in rope else [rope]) if isinstance(part, dict)]
    kinds = {part.get("rope_type", "default") for part in parts}
    if kinds - {"default"}:
        raise LangadaptError(f"cannot export this {model_type} model to GGUF: its rotary scaling "
                             f"{sorted(kinds - {'default'})} is not written: llama.cpp keeps it in rope.scaling "
                             "keys or a rope_freqs tensor, which transformers' GGUF loader does not read back, so "
                             "the file could not be checked (it would reload without scaling)",
                             fix="export it with `--to merged` instead.")
    partial = {part.get("partial_rotary_factor", 1.0) for part in parts}
    partial |= {getattr(config, "partial_rotary_factor", 1.0)}
    if partial - {1.0, None}:  # e.g. Phi-4-mini's 0.75: the loader reads no rotary dimension count for phi3
        raise LangadaptError(f"cannot export this {model_type} model to GGUF: it rotates only part of each head "
                             f"(partial_rotary_factor {sorted(partial - {1.0, None})}), which transformers' GGUF "
                             "loader reads back as a full rotation", fix="export it with `--to merged` instead.")
    if model_type == "gpt2" and (config.n_positions != 1024 or config.n_inner not in (None, 4 * config.n_embd)):
        raise LangadaptError(f"cannot export this gpt2 model to GGUF: transformers' GGUF loader reads every gpt2 file "
                             f"with GPT-2's 1024 positions and 4 × width MLP, and this one has n_positions "
                             f"{config.n_positions}, n_inner {config.n_inner}, so the file could not be checked",
                             fix="export it with `--to merged` instead.")
    return FAMILIES[model_type]


def _rope_theta(config: PretrainedConfig, layer_type: str = "full_attention") -> float | None:
    """rope_theta from transformers 5's `rope_parameters` (per layer type for Gemma 3)."""
    rope = getattr(config, "rope_parameters", None) or {}
    rope = rope.get(layer_type, rope) if "rope_theta" not in rope else rope
    return rope.get("rope_theta", getattr(config, "rope_theta", None))


def _head_dim(config: PretrainedConfig) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _hyperparameters(writer, config: PretrainedConfig, fam: Family, name: str) -> None:
    writer.add_name(name)
    if fam.conv1d:  # GPT-2: what llama.cpp's gpt2 graph reads
        writer.add_context_length(config.n_positions)
        writer.add_embedding_length(config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(config.layer_norm_epsilon)
        writer.add_vocab_size(config.vocab_size)
        return
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = _head_dim(config)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if (theta := _rope_theta(config)) is not None:
        writer.add_rope_freq_base(float(theta))
    if fam.sliding_window and getattr(config, "sliding_window", None):
        writer.add_sliding_window(config.sliding_window)
        if (local := _rope_theta(config, "sliding_attention")) is not None and local != _rope_theta(config):
            writer.add_rope_freq_base_swa(float(local))
    if fam.softcapping:
        if getattr(config, "attn_logit_softcapping", None):
            writer.add_attn_logit_softcapping(config.attn_logit_softcapping)
        if getattr(config, "final_logit_softcapping", None):
            writer.add_final_logit_softcapping(config.final_logit_softcapping)


def _permute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Rotate-half rows → llama.cpp's interleaved pairs, per head (the inverse of transformers'
    `LlamaTensorProcessor._reverse_permute_weights`)."""
    return (weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _encode(array: np.ndarray, quant: str):
    """(data, raw GGML type or None) for one tensor: 1-D tensors (norms, biases) stay float32 as in
    llama.cpp, and Q8_0 falls back to F16 where a row is not a whole number of 32-value blocks."""
    from gguf import GGMLQuantizationType, quants

    if array.ndim == 1 or quant == "f32":
        return array.astype(np.float32), None
    if quant == "q8_0" and array.shape[-1] % 32 == 0:
        return quants.quantize(array.astype(np.float32), GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0
    return array.astype(np.float16), None


def _tensors(model: PreTrainedModel, fam: Family):
    """(GGUF name, float32 array) for every weight, named by gguf's own mapping tables."""
    import gguf

    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == fam.arch)
    names = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    config = model.config
    seen: set[int] = set()
    for hf_name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:  # a tied output layer is the embedding: llama.cpp reuses token_embd
            continue
        seen.add(id(tensor))
        stem, suffix = hf_name.rsplit(".", 1)
        gguf_name = names.get_name(stem)
        if gguf_name is None:
            raise LangadaptError(f"no GGUF name for the {config.model_type} tensor {hf_name!r} in gguf's mapping "
                                 f"table for {fam.arch}", fix="export it with `--to merged` instead.")
        array = tensor.detach().float().cpu().numpy()
        if fam.permute_qk and gguf_name.endswith((".attn_q", ".attn_k")):  # weights and biases alike
            heads = config.num_attention_heads if gguf_name.endswith(".attn_q") else config.num_key_value_heads
            array = _permute_qk(array, heads)
        if fam.conv1d and suffix == "weight" and gguf_name.endswith((".attn_qkv", ".attn_output", ".ffn_up",
                                                                       ".ffn_down")):
            array = array.T  # Conv1D keeps (input, output); GGUF rows are outputs, as in a linear layer
        if fam.norm_offset and gguf_name.endswith("norm") and suffix == "weight":
            array = array + fam.norm_offset
        yield f"{gguf_name}.{suffix}", array


def write_gguf(model: PreTrainedModel, folder: Path, out: Path, quant: str = "f16") -> Path:
    """Write `model` (loaded from `folder`, whose tokenizer it uses) to the GGUF file `out`, atomically."""
    import gguf

    check_quant(quant)
    fam = family(model.config)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant]
    name = Path(folder).resolve().name
    if name == "mistral":  # transformers 5.24 reads a llama file named exactly this as Mistral, then fails
        name = "mistral-model"

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), fam.arch)
        _hyperparameters(writer, model.config, fam, name)
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        write_tokenizer(writer, Path(folder), model.config)
        for tensor_name, array in _tensors(model, fam):
            data, raw_type = _encode(array, quant)
            writer.add_tensor(tensor_name, data, raw_dtype=raw_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    return write_with(Path(out), write)


def export_gguf(model_dir: Path, out: Path, quant: str = "f16") -> Path:
    """A model folder (stock transformers, safetensors) as a GGUF file at `out`; returns `out`.

    The entry point for tests and the architecture matrix: the folder's model and tokenizer as
    they are (an adapter folder is merged first by `model.export.export_model`)."""
    from langadapt.model.build import load_model

    return write_gguf(load_model(Path(model_dir)), Path(model_dir), out, quant)


def check_text(folder: Path, ids: Sequence[int] = (), n: int = 96) -> str:
    """Text to check a round trip on when none is given: the folder's new tokens (`ids`, the
    card's new rows) and `n` ids spread over the vocabulary, decoded, so every part of the
    vocabulary is exercised without reading a corpus."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    size = len(tokenizer)
    spread = np.linspace(0, size - 1, n).astype(int).tolist()
    return tokenizer.decode([*ids[:256], *spread], skip_special_tokens=True)


def check_gguf(model_dir: Path, gguf_file: Path, texts: Sequence[str], max_tokens: int = 256) -> RoundTrip:
    """Reload `gguf_file` with transformers' GGUF loader and compare it with `model_dir`'s model:
    the ids each tokenizer gives `texts`, and the logits both models give the folder's ids.

    The file is read through a link in an empty folder: transformers also reads tokenizer and
    config files lying beside a GGUF file, which would check those instead of the file."""
    from langadapt.model.build import load_model

    reference = load_model(Path(model_dir)).float().eval()
    ours = AutoTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as alone:
        link = Path(alone) / Path(gguf_file).name
        link.symlink_to(Path(gguf_file).resolve())
        theirs = AutoTokenizer.from_pretrained(alone, gguf_file=link.name)
        try:
            reloaded = AutoModelForCausalLM.from_pretrained(alone, gguf_file=link.name, dtype=torch.float32,
                                                            trust_remote_code=False).eval()
        except (ValueError, NotImplementedError, RuntimeError, KeyError) as err:
            raise LangadaptError(f"{gguf_file} was written, but transformers' GGUF loader cannot read it back "
                                 f"to check it ({type(err).__name__}: {err})", where=str(gguf_file),
                                 fix="export with --no-check to keep it unchecked, or use `--to merged`.") from None
    lost = sorted(set(reference.state_dict()) - set(reloaded.state_dict()))
    if lost:  # e.g. Llama's optional q/k/v/o biases: llama.cpp reads them, transformers' loader builds no slot
        raise LangadaptError(f"{gguf_file} holds every weight, but transformers' GGUF loader does not read back "
                             f"{', '.join(lost[:4])}{' ...' if len(lost) > 4 else ''}, so the file cannot be checked",
                             where=str(gguf_file), fix="keep the file unchecked with --no-check (llama.cpp reads "
                             "these tensors), or use `--to merged`.")
    ids = [ours(text).input_ids for text in texts]
    same = ids == [theirs(text).input_ids for text in texts]
    flat = [i for row in ids for i in row][:min(max_tokens, reference.config.max_position_embeddings)]
    batch = torch.tensor([flat])
    with torch.no_grad():
        expected, found = reference(batch).logits, reloaded(batch).logits
    agreement = (expected.argmax(-1) == found.argmax(-1)).float().mean().item()
    return RoundTrip(len(flat), same, (expected - found).abs().max().item(), agreement)
