"""MiniLM distillation: a small student learns a frozen teacher's last-block self-attention.

MiniLM (Wang et al. 2020) transfers the last Transformer block's attention distributions and
value relations; MiniLMv2 splits queries, keys and values into R *relation heads*, so the
teacher and the student may have different head counts and widths. Here, per batch:

- forward hooks on the last block's q/k/v projections of both models capture Q, K, V (B × T × d,
  d the model's own width). GPT-2's fused `c_attn` is split in three; in the Llama family
  (Llama, Qwen2, Mistral, Gemma) grouped key/value heads are repeated to the query heads, as
  the attention itself does, and RoPE is applied to Q and K from the block's own
  `position_embeddings`, so Q·Kᵀ are the logits the model really attends with (with R = the
  model's head count the attention term's distributions are exactly its attention weights);
- each of Q, K, V is split into R heads of d / R and, causally masked,
  attention  KL( softmax(Q_t K_tᵀ / √d_r) ‖ softmax(Q_s K_sᵀ / √d_r) ),
  values     KL( softmax(V_t V_tᵀ / √d_r) ‖ softmax(V_s V_sᵀ / √d_r) ),
  averaged over batch rows, relation heads and query positions;
- optionally a logit term KL(p_t^τ ‖ p_s^τ)·τ² and the student's own next-token loss.

**Expanded tokenizers.** The student's tokenizer is the teacher's or extends it (every teacher
token keeps its id). A position holding an id the teacher lacks gets no teacher signal: the
teacher reads its end-of-text id there, that position is dropped from both models' relations
(as a query and as a key), and from the logit term, as is every position whose next token is new
to the teacher. Only the `lm` term trains those rows.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import extract_model_from_parallel
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.data.packing import Batch
from langadapt.errors import LangadaptError
from langadapt.train.config import DistillConfig

GPT2_QKV = re.compile(r"(?:^|\.)h\.(\d+)\.attn\.c_attn$")
LLAMA_ATTENTION = re.compile(r"(?:^|\.)layers\.(\d+)\.self_attn$")
NEG = torch.finfo(torch.float32).min


@dataclass
class Attention:
    """Where a model's last-block Q, K and V come from."""

    fused: torch.nn.Module | None  # GPT-2's c_attn (Q, K, V side by side)
    block: torch.nn.Module | None  # a Llama-family self_attn (q_proj, k_proj, v_proj, RoPE)
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def width(self) -> int:
        return self.heads * self.head_dim


def last_attention(model: torch.nn.Module) -> Attention:
    """The last block's attention of a GPT-2 or Llama-family model (also under peft, DDP, compile)."""
    config = extract_model_from_parallel(model).config
    found: dict[str, tuple[int, torch.nn.Module]] = {}
    for name, module in model.named_modules():
        for kind, pattern in (("gpt2", GPT2_QKV), ("llama", LLAMA_ATTENTION)):
            match = pattern.search(name)
            if match and int(match.group(1)) >= found.get(kind, (-1, None))[0]:
                found[kind] = (int(match.group(1)), module)
    if "gpt2" in found:
        return Attention(found["gpt2"][1], None, config.n_head, config.n_head, config.n_embd // config.n_head)
    if "llama" in found and hasattr(found["llama"][1], "q_proj"):
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return Attention(None, found["llama"][1], heads, config.num_key_value_heads or heads, head_dim)
    raise LangadaptError(f"cannot find the attention projections of a {type(config).__name__} model",
                         fix="distil from and into GPT-2 or Llama-family models (llama, qwen2, mistral, gemma).")


@contextlib.contextmanager
def captured(attention: Attention):
    """Collect the last block's Q, K, V (B × T × width, post-RoPE, K/V heads repeated) during a forward."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    if attention.fused is not None:
        hooks.append(attention.fused.register_forward_hook(
            lambda _m, _i, out: seen.update(zip("qkv", out.split(attention.width, dim=-1), strict=True))))
    else:
        block = attention.block
        hooks.append(block.register_forward_pre_hook(
            lambda _m, _a, kwargs: seen.update(rope=kwargs["position_embeddings"]), with_kwargs=True))
        for key in "qkv":
            hooks.append(getattr(block, f"{key}_proj").register_forward_hook(
                lambda _m, _i, out, key=key: seen.update({key: out})))
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()
    if attention.block is not None:
        _rotate_and_repeat(seen, attention)


def _rotate_and_repeat(seen: dict, attention: Attention) -> None:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    def heads(x: torch.Tensor, count: int) -> torch.Tensor:  # B × T × (count·hd) → B × count × T × hd
        return x.view(*x.shape[:2], count, attention.head_dim).transpose(1, 2)

    q, k = heads(seen["q"], attention.heads), heads(seen["k"], attention.kv_heads)
    v = heads(seen["v"], attention.kv_heads)
    cos, sin = seen.pop("rope")
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    repeat = attention.heads // attention.kv_heads
    k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    for key, x in zip("qkv", (q, k, v), strict=True):
        seen[key] = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], attention.width)


def relation_logits(left: torch.Tensor, right: torch.Tensor, relation_heads: int) -> torch.Tensor:
    """B × R × T × T scaled dot products of `left` and `right` (B × T × d) split into R heads."""
    batch, length, width = left.shape
    size = width // relation_heads
    a = left.float().view(batch, length, relation_heads, size).transpose(1, 2)
    b = right.float().view(batch, length, relation_heads, size).transpose(1, 2)
    return a @ b.transpose(-1, -2) / math.sqrt(size)


def masked_kl(teacher: torch.Tensor, student: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean over the `rows` (bool, broadcast to the leading dims) of KL(softmax(teacher) ‖ softmax(student))
    over the last dim, where only `keys` (bool, broadcast to the logits) take part."""
    log_t = teacher.float().masked_fill(~keys, NEG).log_softmax(-1)
    log_s = student.float().masked_fill(~keys, NEG).log_softmax(-1)
    kl = (log_t.exp() * (log_t - log_s)).masked_fill(~keys, 0.0).sum(-1)
    rows = rows.expand_as(kl)
    return kl[rows].sum() / rows.sum().clamp(min=1)


class MiniLM:
    """A training objective (`train(..., objective=MiniLM(...))`) holding a frozen teacher."""

    def __init__(self, teacher: PreTrainedModel, teacher_vocab: int, teacher_eos: int, cfg: DistillConfig):
        # eval mode (no dropout) and frozen; any attention implementation (sdpa, eager) will do,
        # because the hooks read the projections and RoPE inputs, not the attention weights
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_vocab, self.teacher_eos, self.cfg = teacher_vocab, teacher_eos, cfg
        self.teacher_attention = last_attention(teacher)
        self._check_width(self.teacher_attention, "teacher")

    def _check_width(self, attention: Attention, who: str) -> None:
        if attention.width % self.cfg.relation_heads:
            raise LangadaptError(f"distill.relation_heads {self.cfg.relation_heads} does not divide the {who}'s "
                                 f"attention width {attention.width}",
                                 fix="choose R dividing both widths (e.g. their common head count).")

    def losses(self, model: PreTrainedModel, batch: Batch) -> dict[str, torch.Tensor]:
        """Each loss term, unweighted (the objective sums them with the `distill:` weights)."""
        ids, labels = batch["input_ids"], batch["labels"]
        known = ids < self.teacher_vocab  # positions the teacher can read
        if next(self.teacher.parameters()).device != ids.device:
            self.teacher.to(ids.device)
        student_attention = last_attention(model)
        self._check_width(student_attention, "student")
        with torch.no_grad(), captured(self.teacher_attention) as teacher:
            teacher_ids = ids.masked_fill(~known, self.teacher_eos)
            if self.cfg.logits:
                teacher_logits = self.teacher(input_ids=teacher_ids, use_cache=False).logits
            else:  # the relations need the blocks only: skip the output layer (SmolLM2's is 49k × 576)
                self.teacher.base_model(input_ids=teacher_ids, use_cache=False)
        with captured(student_attention) as student:
            student_logits = model(input_ids=ids, use_cache=False).logits
        length = ids.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).tril()
        keys, rows = (causal & known[:, None, :])[:, None], known[:, None, :]  # B × 1 × T × T, B × 1 × T
        r = self.cfg.relation_heads
        out = {
            "attention": masked_kl(relation_logits(teacher["q"], teacher["k"], r),
                                   relation_logits(student["q"], student["k"], r), keys, rows),
            "values": masked_kl(relation_logits(teacher["v"], teacher["v"], r),
                                relation_logits(student["v"], student["v"], r), keys, rows),
        }
        if self.cfg.logits:
            scored = known & (labels >= 0) & (labels < self.teacher_vocab)
            tau = self.cfg.temperature
            out["logits"] = tau**2 * masked_kl(teacher_logits[..., : self.teacher_vocab] / tau,
                                               student_logits[..., : self.teacher_vocab] / tau,
                                               torch.ones_like(scored)[..., None], scored)
        if self.cfg.lm:
            out["lm"] = F.cross_entropy(student_logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return out

    def __call__(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        weights = {"attention": self.cfg.attention, "values": self.cfg.values, "logits": self.cfg.logits,
                   "lm": self.cfg.lm}
        return sum(weights[name] * value for name, value in self.losses(model, batch).items())


def check_tokenizers(teacher: Tokenizer, student: Tokenizer, where: str) -> None:
    """The student's tokenizer must be the teacher's or extend it: every teacher token at its own id."""
    teacher_vocab, student_vocab = teacher.get_vocab(with_added_tokens=True), student.get_vocab(with_added_tokens=True)
    moved = sorted((token for token, index in teacher_vocab.items() if student_vocab.get(token) != index),
                   key=teacher_vocab.get)
    if moved:
        examples = ", ".join(repr(token) for token in moved[:5])
        raise LangadaptError(
            f"the student's tokenizer does not extend the teacher's: {len(moved)} of the teacher's "
            f"{len(teacher_vocab)} tokens are missing or have another id (e.g. {examples})", where=where,
            fix="train the student on the teacher's tokenizer (`data.tokenizer: teacher`) or on one expanded "
                "from it (`langadapt vocab` keeps every old id).")


def build_minilm(teacher_path: Path, cfg: DistillConfig, student_tokenizer: Tokenizer) -> MiniLM:
    """Load and freeze the teacher folder (or GGUF file in it) after checking the tokenizers match."""
    from langadapt.model.base import check_base
    from langadapt.model.build import load_model
    from langadapt.vocab.tokenizer import end_of_text

    base = check_base(teacher_path, cfg.gguf_file)
    teacher_tokenizer = base.tokenizer.backend_tokenizer
    check_tokenizers(teacher_tokenizer, student_tokenizer, where=f"teacher {teacher_path}")
    eos = end_of_text(teacher_tokenizer, base.config.eos_token_id)
    return MiniLM(load_model(teacher_path, cfg.gguf_file), teacher_tokenizer.get_vocab_size(), eos, cfg)
