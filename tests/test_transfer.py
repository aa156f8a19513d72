"""Gain, forgetting and transfer tags follow the sign convention and the rule in the docs."""

import pandas as pd
import pytest

from langadapt.evaluate.transfer import gain_forgetting, transfer_matrix, transfer_tags


def _results(bpb: dict[str, dict[str, float]], target: str) -> pd.DataFrame:
    """A results table in the pipeline's schema; `init:` models are untrained (steps 0)."""
    return pd.DataFrame([
        {"experiment": "x", "run": run, "language": lang, "role": "target" if lang == target else "source",
         "metric": "bpb", "value": value, "steps": 0 if run.startswith("init:") else 10}
        for run, per_lang in bpb.items() for lang, value in per_lang.items()
    ])


BASE = {"ces_Latn": 2.0, "pol_Latn": 2.0, "hsb_Latn": 4.0}


def test_gain_is_lower_bpb_on_the_target_and_forgetting_higher_bpb_elsewhere():
    results = _results({"base": BASE, "init:mean": {**BASE, "hsb_Latn": 5.0},
                        "full": {"ces_Latn": 2.5, "pol_Latn": 1.9, "hsb_Latn": 3.0}}, "hsb_Latn")
    changes = gain_forgetting(results).set_index("language")
    assert set(changes.run) == {"full"}  # the untrained init model is not an adapted run
    assert changes.loc["hsb_Latn", "gain"] == pytest.approx(1.0)
    assert changes.loc["ces_Latn", "forgetting"] == pytest.approx(0.5)
    assert changes.loc["pol_Latn", "forgetting"] == pytest.approx(-0.1)  # negative forgetting: it improved
    assert changes.delta_bpb.tolist() == pytest.approx([0.5, -0.1, -1.0])


@pytest.mark.parametrize(("adapted", "tag"), [
    ({"ces_Latn": 1.9, "pol_Latn": 2.0, "hsb_Latn": 3.0}, "altruistic"),  # ces gains 5 %
    ({"ces_Latn": 2.01, "pol_Latn": 2.1, "hsb_Latn": 3.0}, "selfish"),  # only the target gains
    ({"ces_Latn": 2.0, "pol_Latn": 2.0, "hsb_Latn": 3.99}, "stagnant"),  # 0.25 % < τ = 1 %
])
def test_tags_follow_the_documented_rule(adapted, tag):
    results = _results({"base": BASE, "full": adapted}, "hsb_Latn")
    assert transfer_tags(results).set_index("run").tag["full"] == tag
    matrix = transfer_matrix(results)
    assert matrix.loc["full ← hsb_Latn", "hsb_Latn"] == pytest.approx((4.0 - adapted["hsb_Latn"]) / 4.0)


def test_transfer_matrix_has_one_row_per_experiment_and_run():
    one = _results({"base": BASE, "full": {**BASE, "hsb_Latn": 3.0}}, "hsb_Latn")
    two = _results({"base": {**BASE, "slk_Latn": 3.0}, "full": {**BASE, "hsb_Latn": 3.5, "slk_Latn": 2.0}},
                   "slk_Latn").assign(experiment="y")
    matrix = transfer_matrix(pd.concat([one, two], ignore_index=True))
    assert list(matrix.index) == ["x/full ← hsb_Latn", "y/full ← slk_Latn"]
    assert matrix.loc["y/full ← slk_Latn", "hsb_Latn"] == pytest.approx(0.125)
    assert pd.isna(matrix.loc["x/full ← hsb_Latn", "slk_Latn"])  # never evaluated there
