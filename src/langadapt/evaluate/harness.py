"""Bridge to lm-evaluation-harness: task YAMLs for local text, and lm-eval runs on model folders.

A langadapt model folder is a stock transformers folder, so lm-eval's own `hf` model loads it;
the task YAMLs read local JSONL through the `json` dataset builder, so nothing is downloaded.
lm-eval is an optional extra (`pip install 'langadapt[harness]'`).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from langadapt.atomic import write_jsonl, write_text
from langadapt.errors import LangadaptError
from langadapt.evaluate import require

BPB_METRICS = ["word_perplexity", "byte_perplexity", "bits_per_byte"]


def write_bpb_task(name: str, texts: list[str], folder: Path) -> Path:
    """Write `folder/NAME.jsonl` (one {"text": ...} per line) and an lm-eval task `folder/NAME.yaml`
    that scores it with `loglikelihood_rolling` (bits per byte over the whole file)."""
    folder = Path(folder).resolve()
    data = write_jsonl(folder / f"{name}.jsonl", ({"text": text} for text in texts))
    task = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "output_type": "loglikelihood_rolling",
        "test_split": "test",
        "doc_to_text": "",
        "doc_to_target": "text",
        "metric_list": [{"metric": metric} for metric in BPB_METRICS],
        "metadata": {"version": 1.0},
    }
    return write_text(folder / f"{name}.yaml", yaml.safe_dump(task, sort_keys=False, allow_unicode=True))


def run_harness(
    model_dir: Path, tasks: list[str], include_path: Path | None = None, batch_size: int = 16,
    limit: int | None = None, device: str | None = None,
) -> dict[str, dict[str, float]]:
    """Run lm-eval's `hf` model on a local model folder, offline (on CUDA when there is one, unless
    `device` says otherwise); return {task: {metric: value}}."""
    from langadapt.model.build import default_device

    device = device or str(default_device())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    lm_eval = require("lm_eval", "harness")
    from lm_eval.tasks import TaskManager
    if not (Path(model_dir) / "config.json").is_file():
        raise LangadaptError(f"{model_dir} is not a transformers model folder (no config.json)",
                             fix="pass a model folder such as runs/demo/train/full/final.")
    # Indexing lm-eval's ~15k built-in tasks takes half a minute: only do it for names not local.
    manager = TaskManager(include_path=str(include_path), include_defaults=False) if include_path else None
    if manager is None or any(task not in manager.all_tasks for task in tasks):
        manager = TaskManager(include_path=str(include_path) if include_path else None)
    unknown = [task for task in tasks if task not in manager.all_tasks]
    if unknown:
        raise LangadaptError(f"unknown lm-eval task(s): {', '.join(unknown)}",
                             fix="name tasks lm-eval knows, or pass --tasks-dir with your task YAMLs.")
    output = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(model_dir), "dtype": "float32"}, tasks=tasks,
        batch_size=batch_size, device=device, limit=limit, task_manager=manager, log_samples=False,
    )
    return {task: {key.split(",")[0]: float(value) for key, value in metrics.items()
                   if isinstance(value, int | float) and "_stderr" not in key and key != "sample_len"}
            for task, metrics in output["results"].items()}
