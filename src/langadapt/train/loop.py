"""One readable training loop (nanoGPT's shape) on `accelerate`.

AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay,
gradient accumulation, clipping, optional bf16 autocast and `torch.compile`, a progress bar
with loss and tokens/s, and a JSONL log. With `checkpoint_dir`, a checkpoint is written
atomically every `checkpoint_every` steps (model, optimiser, scheduler, every RNG, sampler
position, step) and a rerun resumes from it exactly: the same batches, dropout masks and
updates as a run that was never stopped. A NaN or inf loss stops the run with a clear message
and leaves the last good checkpoint as it was. Losses stay on the device and are read back
every `READ_BACK_EVERY` steps and before every checkpoint and evaluation, so the device is
never made to wait for the host within a step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedType, PartialState
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_cosine_schedule_with_warmup

from langadapt.atomic import write_jsonl, write_text
from langadapt.data.packing import Batch
from langadapt.errors import LangadaptError, os_cause
from langadapt.paths import check_weights
from langadapt.registry import OBJECTIVES
from langadapt.train.config import TrainConfig
from langadapt.train.objectives import Objective

Batches = Callable[[], Batch]
Evaluate = Callable[[PreTrainedModel], dict[str, float]]
LATEST = "latest"  # a file in the checkpoint folder naming the newest complete checkpoint
READ_BACK_EVERY = 10  # steps between reading losses back: each read waits for the device to finish


def _optimizer(modules: list[torch.nn.Module], cfg: TrainConfig, lr_scale: dict[torch.nn.Parameter, float]
               ) -> torch.optim.Optimizer:
    """AdamW over `modules`' trainable parameters; a parameter in `lr_scale` learns at `cfg.lr` times its scale."""
    params = [p for module in modules for p in module.parameters() if p.requires_grad]
    kinds: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}  # (decayed, lr scale): parameters
    for decay in (True, False):  # matrices first, as checkpoints written before the scales expect
        for p in (p for p in params if (p.dim() >= 2) == decay):
            kinds.setdefault((decay, lr_scale.get(p, 1.0)), []).append(p)
    groups = [{"params": members, "weight_decay": cfg.weight_decay if decay else 0.0, "lr": cfg.lr * scale}
              for (decay, scale), members in kinds.items()]
    # fused: one kernel over all tensors per step instead of a Python loop over them (CPU and CUDA)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=True)


def _several_cpu_processes() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def make_accelerator() -> Accelerator:
    """The run's `Accelerator`; several processes without CUDA (`accelerate launch --multi_gpu
    --num_processes 2` on a CPU machine) run on CPU with the gloo backend."""
    # one schedule step per optimiser step
    return Accelerator(cpu=_several_cpu_processes(), step_scheduler_with_optimizer=False)


def process_state() -> PartialState:
    """This process's place in an `accelerate launch`, set up as `make_accelerator` sets it up: the
    state is made once per process, so asking before the accelerator exists must not pick another
    backend (a bare `PartialState()` on CPU makes every process think it is the main one)."""
    return PartialState(cpu=_several_cpu_processes())


def process_share(batch_size: int, seed: int, accelerator: Accelerator) -> tuple[int, int]:
    """This process's rows of each batch and the seed of its own batch stream (each process of an
    `accelerate launch` draws its own share)."""
    if batch_size % accelerator.num_processes:
        raise LangadaptError(f"train.batch_size {batch_size} does not split over {accelerator.num_processes} "
                             "processes", fix="use a multiple of the process count.")
    return batch_size // accelerator.num_processes, seed + 1000 * accelerator.process_index


def sharded(accelerator: Accelerator) -> bool:
    """Whether each process holds only a shard of the weights (FSDP, DeepSpeed), so that a model is
    saved from weights gathered by `accelerator.get_state_dict`, never from one process's module."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    pointer = Path(checkpoint_dir) / LATEST
    return Path(checkpoint_dir) / pointer.read_text().strip() if pointer.is_file() else None


def _save_checkpoint(accelerator: Accelerator, sampler, checkpoint_dir: Path, state: dict) -> Path:
    """Write into `.step-N.partial/`, rename it to `step-N/`, then repoint `latest` and drop older ones.

    A kill at any moment leaves `latest` naming a complete checkpoint.
    """
    name = f"step-{state['step']:07d}"
    final, partial = checkpoint_dir / name, checkpoint_dir / f".{name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial), safe_serialization=True)
        torch.save(sampler.state_dict(), partial / f"sampler_{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            write_text(partial / "state.json", json.dumps(state))
    except Exception as err:  # safetensors, torch and the OS each word a full disk their own way
        shutil.rmtree(partial, ignore_errors=True)
        previous = latest_checkpoint(checkpoint_dir)
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise LangadaptError(f"writing checkpoint {final} failed ({os_cause(err)}); {kept}",
                             fix="free disk space (or raise the file-size limit, `ulimit -f`), then rerun the "
                                 "same command: it resumes from the last complete checkpoint.") from err
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        write_text(checkpoint_dir / LATEST, name)
        for old in checkpoint_dir.glob("step-*"):
            if old != final:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def _load_checkpoint(accelerator: Accelerator, sampler, path: Path) -> dict:
    check_weights(path, f"checkpoint {path}", f"restore the file, or delete {path.parent} to train again from step 0.")
    accelerator.load_state(str(path))
    sampler.load_state_dict(torch.load(path / f"sampler_{accelerator.process_index}.pt", weights_only=True))
    return json.loads((path / "state.json").read_text())


def _log_until(log_path: Path, step: int) -> list[dict]:
    """The log records of steps up to `step` (a resumed run rewrites the rest)."""
    if not log_path.is_file():
        return []
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if r["step"] <= step]


def train(
    model: PreTrainedModel,
    next_batch: Batches,
    cfg: TrainConfig,
    seed: int,
    log_path: Path,
    desc: str = "train",
    evaluate: Evaluate | None = None,
    checkpoint_dir: Path | None = None,
    evaluate_at_end: bool = True,
    objective: Objective | None = None,
    whole: PreTrainedModel | None = None,
) -> list[dict]:
    """Train `model` in place for `cfg.steps` steps; return (and write) the log records.

    `evaluate(model)` runs every `cfg.eval_every` steps and at the end (unless `evaluate_at_end`
    is off: a caller that scores the final model itself); its figures (e.g. held-out bpb per
    language) go into the log, so over-fitting shows in `log.jsonl`.
    `objective` replaces the registered `cfg.objective` with a built one (a loss holding a frozen
    teacher, say). Resuming from `checkpoint_dir` needs `next_batch` to have
    `state_dict`/`load_state_dict`.
    Under `accelerate launch` each process draws its own batches: seed the sampler per process.
    `whole`, an unsharded twin of `model` (for FSDP / DeepSpeed, see `sharded`), receives the
    trained weights gathered through `accelerator.get_state_dict` on the main process, for saving.
    """
    torch.manual_seed(seed)
    accelerator = make_accelerator()
    if cfg.gradient_checkpointing:  # non-reentrant: works with frozen inputs (adapters) and keeps RNG state
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    objective = objective or OBJECTIVES[cfg.objective]
    # an objective that is a module (a projection head, a memory bank) trains beside the model and
    # is checkpointed with it (accelerate saves every prepared module's state)
    modules = [model, objective] if isinstance(objective, torch.nn.Module) else [model]
    # an objective may slow parts of the model down (CCP: the transformer layers, see train/contrastive.py)
    optimizer = _optimizer(modules, cfg, objective.lr_scale(model) if hasattr(objective, "lr_scale") else {})
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.steps)
    model, *extra, optimizer, scheduler = accelerator.prepare(*modules, optimizer, scheduler)
    objective = extra[0] if extra else objective
    parameters = [p for module in [model, *extra] for p in module.parameters()]
    forward = torch.compile(model) if cfg.compile else model
    autocast = torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    state = {"step": 0, "tokens": 0}
    checkpoint = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint is not None:
        state = _load_checkpoint(accelerator, next_batch, checkpoint)
    log = _log_until(log_path, state["step"])
    if accelerator.is_main_process:
        write_jsonl(log_path, log)
    model.train()

    tokens_at_start, started = state["tokens"], time.perf_counter()
    steps = range(state["step"] + 1, cfg.steps + 1)
    bar = tqdm(steps, desc=desc, disable=not accelerator.is_main_process)
    log_file = open(log_path, "a", encoding="utf-8") if accelerator.is_main_process else contextlib.nullcontext()
    pending: list[tuple[dict, torch.Tensor, torch.Tensor]] = []  # records whose loss is still on the device

    def read_back() -> None:
        """Fill in the pending records' loss and gradient norm with one device-to-host copy, stop on
        NaN/inf (before any checkpoint could hold it) and write the records to the log."""
        losses = accelerator.reduce(torch.stack([loss for _, loss, _ in pending]), reduction="mean")
        norms = torch.stack([norm.float() for _, _, norm in pending])
        for (record, _, _), loss, norm in zip(pending, losses.tolist(), norms.tolist(), strict=True):
            if not math.isfinite(loss):
                kept = f"the last good checkpoint {checkpoint} is intact" if checkpoint else "no model was written"
                raise LangadaptError(
                    f"{desc}: loss became {loss} at step {record['step']}; {kept}",
                    fix="lower the learning rate (`lr`) or raise `warmup_steps`, then rerun (it resumes).",
                )
            record.update(loss=round(loss, 5), grad_norm=round(norm, 4))
            if accelerator.is_main_process:
                log_file.write(json.dumps(record) + "\n")
        if accelerator.is_main_process:
            log_file.flush()
        log.extend(record for record, _, _ in pending)
        pending.clear()
        bar.set_postfix(loss=f"{log[-1]['loss']:.3f}", tok_s=f"{log[-1]['tokens_per_s']:.0f}", refresh=False)

    with log_file, bar:
        for step in bar:
            loss_sum = torch.zeros((), device=accelerator.device)
            for micro in range(cfg.grad_accum):
                batch = {key: value.to(accelerator.device) for key, value in next_batch().items()}
                last = micro == cfg.grad_accum - 1  # gradients are averaged across processes once per step
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    with autocast:
                        loss = objective(forward, batch) / cfg.grad_accum
                    accelerator.backward(loss)
                loss_sum += loss.detach()
                state["tokens"] += batch["input_ids"].numel() * accelerator.num_processes
            grad_norm = accelerator.clip_grad_norm_(parameters, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            state["step"] = step
            record = {
                "step": step,
                "loss": None,
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": None,
                "tokens": state["tokens"],
                "tokens_per_s": round((state["tokens"] - tokens_at_start) / (time.perf_counter() - started), 1),
            }
            pending.append((record, loss_sum, grad_norm.detach()))
            evaluating = evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps and evaluate_at_end)
            saving = checkpoint_dir is not None and cfg.checkpoint_every and (
                step % cfg.checkpoint_every == 0 or step == cfg.steps)
            if evaluating:
                model.eval()
                if accelerator.is_main_process:
                    record["eval"] = evaluate(accelerator.unwrap_model(model))
                model.train()
            if evaluating or saving or step % READ_BACK_EVERY == 0 or step == cfg.steps:
                read_back()
            if saving:
                checkpoint = _save_checkpoint(accelerator, next_batch, Path(checkpoint_dir), state)
    model.eval()
    if whole is not None:
        weights = accelerator.get_state_dict(model)  # every process takes part; the main one gets all of them
        if accelerator.is_main_process:
            whole.load_state_dict(weights)
    return log
