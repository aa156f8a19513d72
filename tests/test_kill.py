"""`kill -9` at several moments of `langadapt train` and `langadapt curate`: each rerun continues,
and the last one ends with exactly what an uninterrupted run makes (the same losses and token
files; the same documents, none twice, none lost). Slow: each moment is a fresh process."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from langadapt.config import load_config
from langadapt.corpus.config import CurationConfig
from langadapt.corpus.curation import curate
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(torch.get_num_threads())}

pytestmark = pytest.mark.slow


def kill_when(command: list[str], ready: Callable[[], bool], log: Path) -> None:
    """Start `command`, SIGKILL it the moment `ready()` holds; fail if it ends first."""
    with open(log, "a") as handle:
        process = subprocess.Popen(command, env=ENV, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if ready():
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        assert process.wait() == -signal.SIGKILL, f"{command} ended before the moment to kill it"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_killed_at_several_moments_ends_like_an_uninterrupted_run(tmp_path):
    def job(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "output_dir": str(tmp_path / "runs"),
            "model": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32},
            "data": {"vocab_size": 500, "sources": [
                {"name": "hsb", "format": "sample", "languages": ["hsb_Latn"], "weight": 3},
                {"name": "ces", "format": "sample", "languages": ["ces_Latn"]}]},
            "train": {"steps": 30, "batch_size": 8, "warmup_steps": 5, "checkpoint_every": 5}}))
        return path

    run, log = tmp_path / "runs" / "killed", tmp_path / "killed.log"
    command = [sys.executable, "-m", "langadapt.cli", "train", str(job("killed"))]

    def checkpoint_at(step: int) -> Callable[[], bool]:
        def ready() -> bool:
            latest = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else None
            return latest is not None and int(latest.name.removeprefix("step-")) >= step
        return ready

    kill_when(command, lambda: run.is_dir(), log)  # while preparing the data (tokenizer, token files)
    kill_when(command, checkpoint_at(5), log)  # just after a checkpoint
    kill_when(command, lambda: (run / "log.jsonl").is_file() and
              len((run / "log.jsonl").read_text().splitlines()) >= 17, log)  # between two checkpoints
    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "resuming from step 15" in " ".join(rerun.stdout.split())

    whole = run_train_job(load_config(job("whole"), schema=TrainJobConfig)).parent
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    uninterrupted = [json.loads(line) for line in (whole / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == list(range(1, 31))
    assert [r["loss"] for r in steps] == [r["loss"] for r in uninterrupted]
    for name in ("tokenizer.json", "tokens/hsb.bin", "tokens/ces.bin"):  # no lost or doubled text
        assert digest(run / name) == digest(whole / name), name


def test_curate_killed_at_several_moments_ends_with_the_same_documents(tmp_path, shared):
    docs = []
    for lang, name in {"ces_Latn": "newstest2019-ref.ces.txt", "pol_Latn": "newstest2019-ref.pol.txt"}.items():
        lines = shared("ntrex128", name).read_text(encoding="utf-8").splitlines()[:480]
        docs += [{"id": f"{lang}-{i}", "text": "\n".join(lines[i : i + 8])} for i in range(0, 480, 8)]
    docs += [{"id": f"copy-{d['id']}", "text": d["text"]} for d in docs[::7]]  # exact duplicates to remove
    (tmp_path / "web.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))

    def config(name: str) -> dict:
        return {"name": name, "output_dir": str(tmp_path / "out"), "languages": ["ces_Latn", "pol_Latn"],
                "inputs": [{"format": "jsonl", "path": str(tmp_path / "web.jsonl")}],
                "thresholds": {"published_dir": str(shared("fineweb2", "configs"))},
                "executor": {"tasks": 3}}

    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(config("killed")))
    out, log = tmp_path / "out" / "killed", tmp_path / "curate.log"
    command = [sys.executable, "-m", "langadapt.cli", "curate", str(tmp_path / "killed.yaml")]

    def completed(count: int) -> Callable[[], bool]:
        return lambda: len(list(out.glob("logs/*/completions/*"))) >= count

    kill_when(command, completed(1), log)  # inside the first stage, after its first task
    kill_when(command, completed(5), log)  # a few stages on
    kill_when(command, completed(9), log)
    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:]

    whole = curate(CurationConfig.model_validate(config("whole")))
    for split in ("train", "heldout"):
        killed = [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
        uninterrupted = [json.loads(line) for line in (whole / f"{split}.jsonl").read_text().splitlines()]
        ids = [doc["id"] for doc in killed]
        assert len(ids) == len(set(ids)), f"{split}: a document written twice"
        assert sorted(map(json.dumps, killed)) == sorted(map(json.dumps, uninterrupted)), split
    assert (tmp_path / "out" / "killed" / "stats.json").read_text() == (whole / "stats.json").read_text()
