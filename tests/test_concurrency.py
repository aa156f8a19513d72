"""Two `langadapt run` processes sharing one stage cache compute each cached stage once (the second
waits on the stage's lock, then reuses it), and neither corrupts the cache or the other's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_pipeline import TINY

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import sys, time
from pathlib import Path
from langadapt.config import ExperimentConfig
from langadapt.experiment.run_folder import Run
from langadapt.experiment.stages import Stage, run_stages

out, cache, name, log = sys.argv[1:]

def stage(label):
    def compute(inputs, folder):
        with open(log, "a") as handle:
            handle.write(f"{label} {name}\\n")
        time.sleep(1.5)  # long enough for the other process to arrive while it computes
        (folder / "data.txt").write_text(label * 100_000)
    return compute

run = Run(ExperimentConfig(name=name, output_dir=out))
run_stages([Stage("corpus", "corpus", stage("c"), settings={"a": 1}),
            Stage("vocab", "vocab", stage("v"), {"corpus": "corpus"}, settings={"b": 2})], run, Path(cache))
run.finish()
"""


def test_two_processes_on_one_stage_cache_compute_each_stage_once(tmp_path):
    """The stage runner itself, in two real processes started together (fast)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    log = tmp_path / "computed.txt"
    processes = [subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "runs"), str(tmp_path / "cache"),
                                   name, str(log)], env=env, stderr=subprocess.PIPE, text=True)
                 for name in ("first", "second")]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    computed = log.read_text().split("\n")[:-1]
    assert sorted(line.split()[0] for line in computed) == ["c", "v"], computed  # each stage once, by either run
    for name in ("first", "second"):
        for folder, label in (("corpus", "c"), ("vocab", "v")):
            assert (tmp_path / "runs" / name / folder / "data.txt").read_text() == label * 100_000
    entries = [p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert sorted(entries) == ["corpus", "vocab"]  # one published output each, no half-published copy


@pytest.mark.slow
def test_two_runs_sharing_a_stage_cache_compute_each_stage_once(tmp_path):
    """The whole `langadapt run`, twice at once on one cache (two minutes on 2 busy cores)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // 2))}
    cache = tmp_path / "shared-cache"
    processes = []
    for name in ("first", "second"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(json.dumps({**TINY, "name": name, "output_dir": str(tmp_path / "runs"),
                                      "stage_cache": str(cache), "adapt": {**TINY["adapt"], "methods": ["full"]}}))
        processes.append(subprocess.Popen([sys.executable, "-m", "langadapt.cli", "run", str(config)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    manifests = [json.loads((tmp_path / "runs" / name / "manifest.json").read_text()) for name in ("first", "second")]
    cached = sorted({path.name.rsplit("-", 1)[0] for path in cache.iterdir() if not path.name.startswith(".")})
    assert cached == ["curate", "pretrain", "vocab"]
    for stage in cached:  # one run computed it, the other reused that very output
        reusers = [m["name"] for m in manifests if stage in m.get("reused", {})]
        assert len(reusers) == 1, (stage, reusers)
        assert len(list(cache.glob(f"{stage}-*"))) == 1
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(".")]  # no half-published stage
    results = [pd.read_parquet(tmp_path / "runs" / name / "results.parquet").drop(columns="experiment")
               for name in ("first", "second")]
    pd.testing.assert_frame_equal(*results)  # same inputs, same numbers: nothing was read half-written
