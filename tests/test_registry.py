"""One registry for every family a config names: lazy targets that all resolve, did-you-mean
errors, user entries, and validating a config without importing the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from langadapt import registry
from langadapt.config import ExperimentConfig, parse_config
from langadapt.errors import LangadaptError
from langadapt.registry import INITIALISERS, NEEDS, SIZE_PRESETS, Registry

FAMILIES = [value for value in vars(registry).values() if isinstance(value, Registry)]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.what)
def test_every_entry_resolves_to_what_it_names(family):
    for name in family:
        target = family[name]
        assert callable(target) or family is SIZE_PRESETS, f"{family.what} {name!r} is {target!r}"


def test_an_unknown_name_gets_the_closest_known_ones():
    with pytest.raises(ValueError, match=r"unknown initialiser 'fcous'; did you mean 'focus'\?.*known: random"):
        INITIALISERS.check(["mean", "fcous"])
    assert INITIALISERS.check("focus") == "focus" and set(NEEDS) <= set(INITIALISERS)


def test_a_config_typo_names_the_key_and_the_fix():
    with pytest.raises(LangadaptError, match=r"`adapt.methods`.*method 'layr'; did you mean 'layra'"):
        parse_config({"adapt": {"methods": ["embeddings+layr"]}})


def test_an_entry_of_ones_own_is_chosen_by_name(monkeypatch):
    probes = Registry("probe", {"mine": "builtins:len"})
    probes.add("sorted", sorted)
    assert probes["mine"] is len and probes["sorted"] is sorted and list(probes) == ["mine", "sorted"]
    monkeypatch.setattr(INITIALISERS, "_targets", {**INITIALISERS._targets, "zeros": "torch:zeros_like"})
    assert ExperimentConfig.model_validate({"vocab": {"initialisers": ["zeros"], "train_with": "zeros"}})


def test_validating_a_config_imports_no_model_or_curation_library():
    """`langadapt config FILE` answers in well under a second: no torch, transformers, peft, datatrove."""
    code = ("import sys; from langadapt.config import ExperimentConfig; "
            "ExperimentConfig.model_validate({'adapt': {'methods': ['embeddings+layra']}, "
            "'vocab': {'initialisers': ['focus'], 'train_with': 'focus'}, 'model': {'preset': 'mini'}}); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'peft', 'datatrove'}))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
