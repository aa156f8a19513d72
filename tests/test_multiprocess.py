"""`accelerate launch` with two CPU processes (gloo) trains the same model as one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from langadapt.config import load_config
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_track_the_single_process_loss(tmp_path):
    def job(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "output_dir": str(tmp_path / "runs"),
            "model": {"n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 32},
            "data": {"vocab_size": 800, "sources": [{"name": "hsb", "format": "sample", "languages": ["hsb_Latn"]}]},
            "train": {"steps": 80, "batch_size": 16, "lr": 3e-3, "warmup_steps": 8, "checkpoint_every": 40},
        }))
        return path

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "langadapt.cli", "train", str(job("two"))]
    subprocess.run(launch, env=env, check=True, capture_output=True, timeout=900)
    run_train_job(load_config(job("one"), schema=TrainJobConfig))

    def log(name):
        return [json.loads(line) for line in (tmp_path / "runs" / name / "log.jsonl").read_text().splitlines()]

    two, one = log("two"), log("one")
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one]  # same global batch
    assert [r["lr"] for r in two] == [r["lr"] for r in one]  # one schedule step per optimiser step
    tail = slice(-20, None)
    mean_two = sum(r["loss"] for r in two[tail]) / 20
    mean_one = sum(r["loss"] for r in one[tail]) / 20
    assert mean_two < two[0]["loss"] - 1.0 and abs(mean_two - mean_one) < 0.15
    checkpoint = tmp_path / "runs" / "two" / "checkpoints" / "step-0000080"
    assert {p.name for p in checkpoint.glob("sampler_*.pt")} == {"sampler_0.pt", "sampler_1.pt"}
    assert torch.load(checkpoint / "sampler_1.pt", weights_only=True)["generator"] is not None
