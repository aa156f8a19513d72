"""The run's one results table: every stage's rows (tokenizer metrics, initialised models, the
base, each adaptation job's own held-out scores, probes) gathered, and the report written from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_with
from langadapt.config import ExperimentConfig
from langadapt.evaluate.bpb import bpb_rows
from langadapt.evaluate.probes import ProbeTask
from langadapt.model.build import load_model
from langadapt.registry import PROBES
from langadapt.report.page import write_report
from langadapt.vocab.tokenizer import load_tokenizer

NOT_TRAINED = {"method": "none", "init": "none", "steps": 0, "trainable_params": 0}


def model_rows(model_dir: Path, heldout: dict[str, list[str]]) -> list[dict]:
    return bpb_rows(load_model(model_dir), load_tokenizer(model_dir / "tokenizer.json"), heldout)


def probe_rows(cfg: ExperimentConfig, name: str, model_dir: Path) -> list[dict]:
    """SIB-200 topic accuracy on the target language when `evaluate.sib200` is set."""
    if cfg.evaluate.sib200 is None:
        return []
    task = ProbeTask(cfg.evaluate.sib200, cfg.languages.target, limit=cfg.evaluate.probe_limit)
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir / "tokenizer.json")
    return [{"run": name, **row} for row in PROBES["sib200"](model, tokenizer, task)]


def adapted_rows(cfg: ExperimentConfig, method: str, job: Path) -> list[dict]:
    """The adaptation job's own held-out scores of its final model, as experiment rows."""
    scores = pd.read_parquet(job / "results.parquet").query("role == 'eval'")
    trainable = json.loads((job / "trainable.json").read_text(encoding="utf-8"))
    init = json.loads((job / "config.json").read_text(encoding="utf-8"))["init_from"]
    return [{"run": method, "language": row.language, "metric": row.metric, "value": row.value, "method": method,
             "init": Path(init).name, "steps": cfg.adapt.steps, "trainable_params": max(trainable.values())}
            for row in scores.itertuples()]


def write_rows(path: Path, rows: list[dict]) -> Path:
    return write_with(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


def write_results(cfg: ExperimentConfig, inputs: dict[str, Path], folder: Path, report_dir: Path) -> Path:
    """Gather every stage's rows (`inputs`: the vocab, init and evaluate folders, and one per
    adaptation method) into the run folder's one results table, and write the report from it."""
    adapted = [method for method in cfg.adapt.methods if method in inputs]
    frames = [pd.read_parquet(inputs["evaluate"] / "results.parquet"),
              pd.DataFrame(sum((adapted_rows(cfg, method, inputs[method]) for method in adapted), [])),
              pd.read_parquet(inputs["init"] / "results.parquet"),
              pd.read_parquet(inputs["vocab"] / "results.parquet")]
    results = pd.concat([frame for frame in frames if not frame.empty], ignore_index=True)
    roles = {lang: ("target" if lang == cfg.languages.target else "source") for lang in cfg.languages.all}
    results.insert(2, "role", results["language"].map(roles))
    results.insert(0, "experiment", cfg.name)
    path = write_with(folder / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    shutil.rmtree(report_dir, ignore_errors=True)
    write_report(results, report_dir, folder)
    return path
