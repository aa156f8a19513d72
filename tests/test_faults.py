"""Faults: a failed job leaves nothing half-made, a full disk while checkpointing stops the run with
a message and the previous checkpoint intact, a corrupted checkpoint is named, and a rerun says what
it continues from (the status marker and the newest complete checkpoint)."""

from __future__ import annotations

import hashlib
import logging
import resource
import signal
from pathlib import Path

import pytest
import torch

from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.build import build_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint, train
from langadapt.vocab.tokenizer import EOS

SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}


class Interrupted(Exception):
    pass


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def loop(tokenizers, sample_docs):
    """`run(folder, steps, stop_at)`: a tiny model trained by the real loop, checkpointing every 4 steps."""
    source, _, _ = tokenizers
    tokens = pack([d.text for d in sample_docs if d.lang == "pol_Latn"], source, source.token_to_id(EOS), 0)

    def run(folder: Path, stop_at: int | None = None) -> list[dict]:
        torch.manual_seed(7)
        model = build_model(ModelConfig(**SHAPE), source)

        def stop(model):
            if stop_at is not None:
                raise Interrupted
            return {}

        cfg = TrainConfig(steps=10, lr=3e-3, batch_size=4, warmup_steps=2, checkpoint_every=4,
                          eval_every=stop_at or 1000)
        return train(model, BlockSampler(tokens, 32, 4, 0), cfg, 0, folder / "log.jsonl", evaluate=stop,
                     checkpoint_dir=folder / "checkpoints")

    return run


def test_a_full_disk_while_checkpointing_stops_with_a_message_and_keeps_the_previous_one(loop, tmp_path):
    whole = loop(tmp_path / "whole")
    with pytest.raises(Interrupted):
        loop(tmp_path / "cut", stop_at=6)  # dies at step 6: the checkpoint of step 4 is the newest
    checkpoints = tmp_path / "cut" / "checkpoints"
    before = digest(checkpoints / "step-0000004")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
    smallest = min(p.stat().st_size for p in (checkpoints / "step-0000004").glob("*.safetensors"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (smallest // 2, hard))
    try:
        with pytest.raises(LangadaptError, match=r"writing checkpoint .*step-0000008 failed .*the previous "
                                                 r"checkpoint .*step-0000004 is intact.*Fix: free disk space"):
            loop(tmp_path / "cut")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert latest_checkpoint(checkpoints).name == "step-0000004" and digest(checkpoints / "step-0000004") == before
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step-0000004"]  # nothing half-written
    resumed = loop(tmp_path / "cut")  # disk freed: the rerun ends where an uninterrupted run ends
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]


def test_a_truncated_checkpoint_is_named(loop, tmp_path):
    with pytest.raises(Interrupted):
        loop(tmp_path, stop_at=6)
    weights = latest_checkpoint(tmp_path / "checkpoints") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(LangadaptError, match=r"checkpoint .*step-0000004: the weights file .*model.safetensors is "
                                             r"corrupted: it is truncated"):
        loop(tmp_path)


def job(tmp_path: Path, **update) -> TrainJobConfig:
    return TrainJobConfig.model_validate({
        "name": "job", "output_dir": str(tmp_path / "runs"), "model": SHAPE,
        "data": {"vocab_size": 400, "sources": [{"name": "hsb", "format": "sample", "languages": ["hsb_Latn"]}]},
        "train": {"steps": 6, "batch_size": 4, "checkpoint_every": 3}, **update})


def test_a_job_whose_data_fails_leaves_no_folder(tmp_path):
    cfg = job(tmp_path)
    cfg.data.sources[0].max_bytes = 40  # fewer tokens than one block
    with pytest.raises(LangadaptError, match="has only .* tokens"):
        run_train_job(cfg)
    assert not (tmp_path / "runs" / "job").exists()  # so a rerun does not take it for a job to resume


def test_a_job_that_fails_while_training_is_marked_and_the_rerun_says_why(tmp_path, tokenizers, caplog):
    source, _, _ = tokenizers
    broken = build_model(ModelConfig(**SHAPE), source)
    with torch.no_grad():  # weights that overflow: the loss is not finite at the first step
        broken.get_input_embeddings().weight[:] = float("inf")
    init = save_model(broken, source, tmp_path / "broken")
    cfg = job(tmp_path, init_from=str(init))
    with pytest.raises(LangadaptError, match="loss became nan at step 1"):
        run_train_job(cfg)
    status = (tmp_path / "runs" / "job" / "status.json").read_text()
    assert '"failed"' in status and "loss became nan" in status
    with caplog.at_level(logging.INFO, logger="langadapt"), pytest.raises(LangadaptError):
        run_train_job(cfg)
    note = "the last run failed: job full: loss became nan at step 1"
    assert note in caplog.text and "starting again from step 0 (no checkpoint had been written)" in caplog.text
