"""End to end on a tiny budget: the demo's stages, run folder, manifest, results and report."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import parse_config
from langadapt.errors import LangadaptError
from langadapt.experiment.pipeline import run_experiment

TINY = {
    "languages": {"source": ["ces_Latn", "pol_Latn"], "target": "hsb_Latn"},
    "vocab": {"source_vocab_size": 600, "target_vocab_size": 400, "max_new_tokens": 100},
    "model": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32},
    "pretrain": {"steps": 8, "lr": 3e-3, "batch_size": 4, "warmup_steps": 2, "eval_every": 4},
    "adapt": {"steps": 4, "lr": 1e-3, "batch_size": 4, "warmup_steps": 1, "eval_every": 4},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_experiment(parse_config({**TINY, "name": "tiny", "output_dir": str(out)}))


def test_run_folder_holds_every_stage_output(finished_run):
    names = {p.relative_to(finished_run).as_posix() for p in finished_run.rglob("*") if p.is_file()}
    for expected in ["manifest.json", "results.parquet", "report/tables.md", "report/bpb.png",
                     "corpus/stats.json", "corpus/train.jsonl", "corpus/heldout.jsonl", "corpus/removed.jsonl",
                     "vocab/source/tokenizer.json", "vocab/expanded/tokenizer.json", "vocab/expansion.json",
                     "train/base/final/model.safetensors", "train/full/final/model.safetensors",
                     "train/layra/log.jsonl"]:
        assert expected in names
    assert not list(finished_run.parent.glob("*.incomplete"))


def test_manifest_records_config_inputs_and_versions(finished_run):
    manifest = json.loads((finished_run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["finished"] >= manifest["started"]
    assert manifest["config"]["languages"]["target"] == "hsb_Latn"
    assert manifest["inputs"] and all(len(h) == 64 for h in manifest["inputs"].values())
    assert manifest["versions"]["torch"].startswith("2.13.0")
    assert set(manifest["seconds"]) == set(manifest["stages"]) and all(s >= 0 for s in manifest["seconds"].values())


def test_results_have_one_row_per_run_language_metric(finished_run):
    results = pd.read_parquet(finished_run / "results.parquet")
    assert not results.duplicated(["run", "language", "metric"]).any()
    assert set(results.run) == {"base", "init:random", "init:mean", "init:subword-mean", "full", "layra",
                                "tokenizer:source", "tokenizer:expanded"}
    assert set(results.language) == {"ces_Latn", "pol_Latn", "hsb_Latn"}
    bpb = results[results.metric == "bpb"].set_index(["run", "language"]).value
    assert (bpb > 0).all() and (bpb < 16).all()
    # The report prints exactly these numbers.
    report = (finished_run / "report" / "tables.md").read_text()
    assert f"{bpb['full', 'hsb_Latn']:.3f}" in report


def test_user_error_leaves_no_run_folder(tmp_path):
    cfg = parse_config({**TINY, "name": "bad", "output_dir": str(tmp_path), "curate": {"min_chars": 5000}})
    with pytest.raises(LangadaptError, match="no training documents left"):
        run_experiment(cfg)
    assert not list(tmp_path.iterdir())


def test_cli_prints_one_paragraph_for_a_config_typo(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nvocab:\n  max_new_token: 10\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "unknown key `vocab.max_new_token`; did you mean 'max_new_tokens'" in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["demo", "run", "eval", "report", "languages", "config"])
def test_every_subcommand_has_help(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_a_finished_run_is_reused_and_a_different_one_is_refused(finished_run):
    from langadapt.experiment.launch import run_state

    same = parse_config({**TINY, "name": "tiny", "output_dir": str(finished_run.parent)})
    assert run_state(same) == "finished"
    other = parse_config({**TINY, "name": "tiny", "output_dir": str(finished_run.parent), "seed": 1})
    with pytest.raises(LangadaptError, match="holds a run of a different config.*--overwrite"):
        run_state(other)
    assert run_state(other, overwrite=True) == "overwrite"


def test_a_second_run_on_the_same_inputs_reuses_its_stages(finished_run):
    """Same corpus, tokenizer, model and pretraining: curation, tokenizers and the base model are
    reused, and every result of the run is the same as computing it again; a stage whose own
    settings changed is computed, the stages before it still reused. --dry-run says which."""
    out = finished_run.parent
    config = out / "again.yaml"
    config.write_text(json.dumps({**TINY, "name": "tiny-again", "output_dir": str(out)}))
    result = CliRunner().invoke(app, ["run", str(config), "--dry-run"])
    for stage in ("curate", "vocab", "pretrain"):
        assert f"  {stage}: reuse {out / '.stages' / stage}-" in result.output.replace("\n", "")
    again = run_experiment(parse_config({**TINY, "name": "tiny-again", "output_dir": str(out)}))
    manifest = json.loads((again / "manifest.json").read_text())
    assert set(manifest["reused"]) == {"curate", "vocab", "pretrain"}
    assert manifest["reused"]["pretrain"].startswith(str(out / ".stages" / "pretrain-"))
    first, second = (pd.read_parquet(run / "results.parquet").drop(columns="experiment")
                     for run in (finished_run, again))
    pd.testing.assert_frame_equal(first, second)
    logs = [(run / "train" / "base" / "log.jsonl").read_text() for run in (finished_run, again)]
    assert logs[0] == logs[1]

    longer = {**TINY, "pretrain": {**TINY["pretrain"], "steps": 9}}
    other = run_experiment(parse_config({**longer, "name": "tiny-longer", "output_dir": str(out)}))
    assert set(json.loads((other / "manifest.json").read_text())["reused"]) == {"curate", "vocab"}


def test_the_experiment_builds_the_configured_architecture(tmp_path):
    folder = run_experiment(parse_config({**TINY, "name": "llama", "output_dir": str(tmp_path),
                                          "model": {**TINY["model"], "arch": "llama"}}))
    for run in ("base", "full", "layra"):
        assert json.loads((folder / "train" / run / "final" / "config.json").read_text())["model_type"] == "llama"
    with pytest.raises(LangadaptError, match="model.arch 'bert' is masked"):
        parse_config({"model": {"arch": "bert"}})
