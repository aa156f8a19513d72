"""A `langadapt run` killed with SIGKILL inside an adaptation resumes there and ends with the same
results table as a run never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from test_pipeline import TINY

from langadapt.config import parse_config
from langadapt.experiment.pipeline import run_experiment
from langadapt.train.loop import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = {**TINY, "name": "cut", "adapt": {**TINY["adapt"], "steps": 16, "checkpoint_every": 4,
                                               "methods": ["layra"]}}


def test_sigkilled_experiment_resumes_inside_its_adaptation(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    config = tmp_path / "cut.yaml"
    shared = {"stage_cache": str(tmp_path / ".stages")}  # the uninterrupted run reuses curation and pretraining
    config.write_text(json.dumps({**EXPERIMENT, **shared, "output_dir": str(tmp_path / "killed")}))
    command = [sys.executable, "-m", "langadapt.cli", "run", str(config)]
    adapting = tmp_path / "killed" / "cut.incomplete" / "train" / "layra" / "checkpoints"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = latest_checkpoint(adapting) if adapting.is_dir() else None
        if checkpoint is not None and checkpoint.name >= "step-0000008":
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed mid-adaptation"
    manifest = json.loads((adapting.parents[2] / "manifest.json").read_text())
    assert "adapt:layra" not in manifest["stages"] and "init" in manifest["stages"]

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resume" in rerun.stdout
    resumed = tmp_path / "killed" / "cut"
    assert "resumed" in json.loads((resumed / "manifest.json").read_text())
    log = [json.loads(line) for line in (resumed / "train" / "layra" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 17))

    whole = run_experiment(parse_config({**EXPERIMENT, **shared, "output_dir": str(tmp_path / "whole")}))
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "results.parquet"),
                                  pd.read_parquet(whole / "results.parquet"))
