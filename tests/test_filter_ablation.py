"""A filter ablation (Pretrainer's Guide): a sweep over `curate.datatrove.filters.enabled` computes
language ID and dedup once, and the comparison shows the documents each filter set kept."""

from __future__ import annotations

import json
from pathlib import Path

from langadapt.experiment.compare import kept_table
from langadapt.experiment.pipeline import compile_stages
from langadapt.experiment.run_folder import Run
from langadapt.experiment.stages import run_stages
from langadapt.experiment.sweep import expand_runs, load_runs

FILTER_SETS = {"none": [], "fineweb2": ["gopher_repetition", "fineweb_quality", "gopher_quality"]}


def test_a_filter_sweep_reuses_language_id_and_compares_documents_kept(tmp_path, shared):
    texts = {}
    for lang, code in (("ces_Latn", "ces"), ("pol_Latn", "pol")):
        lines = shared("ntrex128", f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()[:150]
        texts[lang] = [str(tmp_path / f"{code}.txt")]
        (tmp_path / f"{code}.txt").write_text("\n".join(lines), encoding="utf-8")
    runs = expand_runs({
        "name": "ablation", "output_dir": str(tmp_path / "runs"),
        "languages": {"source": ["ces_Latn"], "target": "pol_Latn"},
        "corpus": {"source": "text", "texts": texts},
        "curate": {"engine": "datatrove", "datatrove": {
            "thresholds": {"published_dir": str(shared("fineweb2", "configs"))},
            "filters": {"min_doc_words": 12},  # sentences as documents: Gopher's 50 words would remove all
            "dedup": {"minhash": False}}},
        "sweep": {"grid": {"curate.datatrove.filters.enabled": FILTER_SETS}},
    })
    done = []
    for sweep_run in runs:
        run = Run(sweep_run.config)
        run_stages(compile_stages(sweep_run.config)[:2], run, Path(sweep_run.config.stage_cache))
        done.append((run.finish(), sweep_run.values))
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder, _ in done]
    assert "reused" not in manifests[0]
    assert set(manifests[1]["reused"]) == {"curate:identify"}  # language ID and dedup: computed once
    assert manifests[0]["stages"]["curate:identify"] == manifests[1]["stages"]["curate:identify"]
    assert manifests[0]["stages"]["curate"] != manifests[1]["stages"]["curate"]

    table = kept_table(done)
    assert list(table.columns) == ["enabled", "ces_Latn", "pol_Latn"] and list(table.enabled) == list(FILTER_SETS)
    unfiltered, filtered = table.iloc[0], table.iloc[1]
    for lang in ("ces_Latn", "pol_Latn"):
        assert 0 < filtered[lang] < unfiltered[lang] <= 150  # the filters remove short sentences; none keeps them


def test_the_example_study_sweeps_three_filter_sets_on_the_datatrove_engine():
    runs = load_runs(Path(__file__).parents[1] / "examples" / "filter-ablation.yaml")
    assert [run.values["enabled"] for run in runs] == ["none", "repetition", "fineweb2"]
    assert {run.config.curate.engine for run in runs} == {"datatrove"}
    assert runs[2].config.curate.datatrove.filters.enabled == ["gopher_repetition", "fineweb_quality", "gopher_quality"]
