import pytest

from langadapt.errors import LangadaptError
from langadapt.experiment.sweep import expand

BASE = {"name": "study", "output_dir": "out"}


def test_grid_times_zip_gives_one_named_run_per_combination():
    runs = expand({**BASE, "sweep": {
        "grid": {"adapt.lr": [0.001, 0.003], "vocab.train_with": ["mean", "subword-mean"]},
        "zip": {"pretrain.steps": [100, 200], "adapt.steps": [10, 20]},
    }})
    assert len(runs) == 2 * 2 * 2
    names = [r.name for r in runs]
    assert "lr=0.001-train_with=subword-mean-pretrain.steps=200-adapt.steps=20" in names
    first = runs[0]
    assert (first.adapt.lr, first.vocab.train_with, first.pretrain.steps, first.adapt.steps) == (0.001, "mean", 100, 10)
    assert all(str(r.output_dir) == "out/study" for r in runs)


def test_no_sweep_is_one_run():
    (run,) = expand(BASE)
    assert run.name == "study"


@pytest.mark.parametrize(
    ("sweep", "pattern"),
    [
        ({"grid": {"adapt.lrr": [1]}}, r"sweep key `adapt.lrr` does not exist: adapt has no key 'lrr'"),
        ({"grid": {"adapt.lr.x": [1]}}, r"'lr' is a value, not a section"),
        ({"grid": {"adapt.lr": []}}, r"`adapt.lr` needs a non-empty list"),
        ({"grid": {"adapt.lr": [1e-3]}, "zip": {"adapt.lr": [1e-3]}}, r"appear in both `grid` and `zip`"),
        ({"zip": {"adapt.lr": [1e-3, 2e-3], "adapt.steps": [1]}}, r"`sweep.zip` lists differ in length"),
        ({"grid": {"adapt.lr": [-1.0]}}, r"sweep run lr=-1.0.*`adapt.lr` = -1.0: Input should be greater than 0"),
        ({"gird": {"adapt.lr": [1]}}, r"`sweep` must be a mapping with `grid` and/or `zip`"),
    ],
)
def test_bad_sweeps_fail_before_any_computation(sweep, pattern):
    with pytest.raises(LangadaptError, match=pattern):
        expand({**BASE, "sweep": sweep}, "exp.yaml")
