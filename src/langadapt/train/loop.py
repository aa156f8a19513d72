"""One readable training loop (nanoGPT's shape) on `accelerate`.

AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay,
gradient clipping, a progress bar with loss and tokens/s, and a JSONL log. A NaN or inf
loss stops the run with a clear message instead of writing a broken model.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_cosine_schedule_with_warmup

from langadapt.config import TrainConfig
from langadapt.errors import LangadaptError

Batches = Callable[[], tuple[torch.Tensor, torch.Tensor]]
Evaluate = Callable[[PreTrainedModel], dict[str, float]]


def _optimizer(model: PreTrainedModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def train(
    model: PreTrainedModel,
    next_batch: Batches,
    cfg: TrainConfig,
    seed: int,
    log_path: Path,
    desc: str = "train",
    evaluate: Evaluate | None = None,
) -> list[dict]:
    """Train `model` in place for `cfg.steps` steps; return (and write) the log records.

    `evaluate(model)` runs every `cfg.eval_every` steps and at the end; its figures (e.g.
    held-out bpb per language) go into the log, so over-fitting shows in `log.jsonl`.
    """
    torch.manual_seed(seed)
    accelerator = Accelerator()
    optimizer = _optimizer(model, cfg)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()

    log: list[dict] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tokens_seen, started = 0, time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log_file, tqdm(range(1, cfg.steps + 1), desc=desc) as bar:
        for step in bar:
            inputs, targets = (t.to(accelerator.device) for t in next_batch())
            logits = model(input_ids=inputs).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
            if not math.isfinite(loss.item()):
                raise LangadaptError(
                    f"{desc}: loss became {loss.item()} at step {step}",
                    fix="lower the learning rate (`lr`) or raise `warmup_steps`; no model was written.",
                )
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            tokens_seen += inputs.numel()
            record = {
                "step": step,
                "loss": round(loss.item(), 5),
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": round(float(grad_norm), 4),
                "tokens": tokens_seen,
                "tokens_per_s": round(tokens_seen / (time.perf_counter() - started), 1),
            }
            if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                model.eval()
                record["eval"] = evaluate(model)
                model.train()
            log.append(record)
            log_file.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
    model.eval()
    return log
