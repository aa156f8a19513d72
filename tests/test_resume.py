"""Checkpoints: a run killed with SIGKILL and rerun ends exactly where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from langadapt.config import load_config
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.build import build_model
from langadapt.model.config import ModelConfig
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint, train
from langadapt.vocab.tokenizer import EOS

ROOT = Path(__file__).resolve().parents[1]


def write_job(tmp_path: Path, name: str, **train) -> Path:
    job = {
        "name": name, "output_dir": str(tmp_path / "runs"),
        "model": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32},
        "data": {"vocab_size": 500, "control_tokens": ["lang"], "sources": [
            {"name": "hsb", "format": "sample", "languages": ["hsb_Latn"], "weight": 3},
            {"name": "replay", "format": "sample", "languages": ["ces_Latn"], "weight": 1}]},
        "train": {"steps": 30, "batch_size": 8, "lr": 3e-3, "warmup_steps": 5, "checkpoint_every": 5,
                  "grad_accum": 2, **train},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())}


def cli(config: Path) -> list[str]:
    return [sys.executable, "-m", "langadapt.cli", "train", str(config)]


class Interrupted(Exception):
    pass


def test_interrupted_loop_resumes_exactly(tokenizers, sample_docs, tmp_path):
    """Model, optimiser, schedule, dropout RNG and sampler position all come back (in-process, fast)."""
    source, _, _ = tokenizers
    tokens = pack([d.text for d in sample_docs if d.lang == "pol_Latn"], source, source.token_to_id(EOS), 0)
    cfg = TrainConfig(steps=16, lr=3e-3, batch_size=4, warmup_steps=3, checkpoint_every=5, grad_accum=2)

    def run(folder: Path, stop_at: int | None = None) -> list[dict]:
        torch.manual_seed(123)  # a fresh process builds its model from whatever RNG state it has
        model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), source)

        def stop(model):  # runs every `stop_at` steps: the first call kills the run
            if stop_at is not None:
                raise Interrupted
            return {}

        cfg_run = cfg.model_copy(update={"eval_every": stop_at or 1000})
        return train(model, BlockSampler(tokens, 32, 4, 0), cfg_run, 0, folder / "log.jsonl", evaluate=stop,
                     checkpoint_dir=folder / "checkpoints")

    whole = run(tmp_path / "whole")
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", stop_at=12)  # dies at step 12; the last checkpoint is step 10
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints").name == "step-0000010"
    resumed = run(tmp_path / "cut")
    assert [r["step"] for r in resumed] == list(range(1, 17))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in whole]


def test_sigkilled_run_resumes_to_the_same_losses(tmp_path):
    """The real thing: SIGKILL a `langadapt train` process mid-run, rerun it (a minute or two on 2 cores)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    killed = write_job(tmp_path, "killed")
    run = tmp_path / "runs" / "killed"
    process = subprocess.Popen(cli(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else None
        if checkpoint is not None and checkpoint.name >= "step-0000010":
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed mid-way"
    stopped_at = max(losses(run))
    assert stopped_at < 30 and not (run / "final").exists()

    subprocess.run(cli(killed), env=env, check=True, capture_output=True, timeout=600)
    whole = run_train_job(load_config(write_job(tmp_path, "whole"), schema=TrainJobConfig))
    resumed, uninterrupted = losses(run), losses(whole.parent)
    assert sorted(resumed) == list(range(1, 31))
    assert resumed == uninterrupted  # the same loss at every step, to the logged 5 decimals


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tokenizers, sample_docs, tmp_path):
    source, _, _ = tokenizers
    model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), source)
    tokens = pack([d.text for d in sample_docs if d.lang == "ces_Latn"], source, source.token_to_id(EOS), 0)

    def diverge(model):  # at step 7 a weight blows up, as after a too-large update
        with torch.no_grad():
            model.get_input_embeddings().weight[:] = float("inf")
        return {}

    cfg = TrainConfig(steps=20, lr=3e-3, batch_size=4, checkpoint_every=5, eval_every=7)
    intact = "loss became nan at step 8; the last good checkpoint .*step-0000005 is intact"
    with pytest.raises(LangadaptError, match=intact):
        train(model, BlockSampler(tokens, 32, 4, 0), cfg, 0, tmp_path / "log.jsonl", evaluate=diverge,
              checkpoint_dir=tmp_path / "checkpoints")
    checkpoint = latest_checkpoint(tmp_path / "checkpoints")
    assert checkpoint.name == "step-0000005"
    weights = load_file(checkpoint / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
