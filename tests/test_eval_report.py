"""`langadapt eval` and `langadapt report` on a finished (tiny) run: merged results, a report whose
plots show exactly the table's numbers, and an HTML page that renders in headless Chromium."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_pipeline import TINY
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import parse_config
from langadapt.evaluate.transfer import transfer_matrix
from langadapt.experiment.pipeline import run_experiment
from langadapt.report.figures import figures
from langadapt.report.tables import bpb_table, delta_table, loss_logs, metric_table, tokenizer_table

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, shared):
    """A tiny run, then `langadapt eval` with Tatoeba retrieval."""
    run = run_experiment(parse_config({**TINY, "name": "tiny-eval",
                                       "output_dir": str(tmp_path_factory.mktemp("runs"))}))
    tatoeba = shared("tatoeba")
    result = CliRunner().invoke(app, ["eval", str(run), "--limit", "60", "--retrieval",
                                      f"hsb_Latn={tatoeba / 'tatoeba.hsb-eng.hsb'},{tatoeba / 'tatoeba.hsb-eng.eng'}"])
    assert result.exit_code == 0, result.output
    return run


def test_eval_merges_new_metrics_without_duplicating_rows(evaluated_run):
    results = pd.read_parquet(evaluated_run / "results.parquet")
    assert not results.duplicated(["run", "language", "metric"]).any()
    assert "init:mean" in set(results.run)  # rows of models eval does not reload are kept
    new = results[results.metric == "retrieval_src2tgt"]
    assert set(new.run) == {"base", "full", "layra"} and (new.experiment == "tiny-eval").all()
    assert set(new[new.run == "full"].method) == {"full"}  # config columns copied from the run's rows
    assert set(new.role) == {"target"} and new.value.between(0, 1).all()


@pytest.mark.slow
def test_lm_eval_agrees_on_every_model_and_language_of_a_run(evaluated_run):
    """`langadapt eval RUN --harness bpb`: lm-eval's bits per byte on the held-out text is within 1 %."""
    result = CliRunner().invoke(app, ["eval", str(evaluated_run), "--harness", "bpb"])
    assert result.exit_code == 0, result.output
    results = pd.read_parquet(evaluated_run / "results.parquet")
    wide = results.pivot_table(index=["run", "language"], columns="metric", values="value")
    both = wide[["bpb", "lm_eval:bits_per_byte"]].dropna()
    assert len(both) == 9
    assert ((both.bpb - both["lm_eval:bits_per_byte"]).abs() / both.bpb < 0.01).all()


def test_every_plotted_value_is_the_results_table(evaluated_run):
    results = pd.read_parquet(evaluated_run / "results.parquet")
    figs = figures(results, evaluated_run)
    assert set(figs) == {"bpb", "delta", "transfer", "fertility", "tokenizers", "loss"}

    def bars(fig) -> dict[str, list[float]]:
        return {c.get_label(): [p.get_height() for p in c.patches] for c in fig.axes[0].containers}

    for name, table in (("bpb", bpb_table(results)), ("fertility", metric_table(results, "bytes_per_token")),
                        ("delta", delta_table(results).iloc[:-1])):
        expected = table.drop(columns=["language", "role"])
        assert bars(figs[name]) == {run: list(expected[run]) for run in expected.columns}
    fertility = tokenizer_table(results).set_index("language").filter(like="fertility ")
    assert bars(figs["tokenizers"]) == {column: list(fertility[column]) for column in fertility.columns}
    assert np.allclose(figs["transfer"].axes[0].images[0].get_array(), transfer_matrix(results).to_numpy())
    lines = {line.get_label(): list(line.get_ydata()) for line in figs["loss"].axes[0].lines}
    logs = loss_logs(evaluated_run)
    assert lines == {run: list(log.loss) for run, log in logs.items()}
    first = json.loads((evaluated_run / "train" / "base" / "log.jsonl").read_text().splitlines()[0])
    assert lines["base"][0] == first["loss"]


def test_report_command_writes_a_self_contained_page(evaluated_run):
    shutil.rmtree(evaluated_run / "report")
    result = CliRunner().invoke(app, ["report", str(evaluated_run)])
    assert result.exit_code == 0, result.output
    page = (evaluated_run / "report" / "index.html").read_text()
    assert page.count("src='data:image/png;base64,") == 6
    assert "http" not in page and "<script" not in page  # nothing to fetch, nothing to run
    bpb = pd.read_parquet(evaluated_run / "results.parquet").query("metric == 'bpb'")
    assert all(f"{v:.4f}" in page for v in bpb.value)
    tables = (evaluated_run / "report" / "tables.md").read_text()
    assert "Δ bpb = adapted − base" in tables and "altruistic" in tables and "retrieval_src2tgt" in tables


def test_report_renders_in_headless_chromium(evaluated_run, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); the HTML report is not rendered")
    page = evaluated_run / "report" / "index.html"
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,1600"]
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert "Held-out bits per byte" in dom.stdout and dom.stdout.count("<img") == 6
    subprocess.run([str(CHROMIUM), *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    # The first plot's bars are drawn in matplotlib's blue (#1f77b4): the embedded images did render.
    blue = np.abs(pixels - np.array([0x1F, 0x77, 0xB4]) / 255).max(axis=-1) < 0.05
    assert pixels.shape[:2] == (1600, 1200) and blue.sum() > 2000
    shutil.copy(shot, evaluated_run / "report" / "screenshot.png")


def test_eval_explains_a_malformed_option_in_one_paragraph(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--retrieval", "only-one-file.txt"])
    assert result.exit_code == 2
    assert "is not LANG=FILE[,FILE]" in " ".join(result.output.split()) and "Traceback" not in result.output
