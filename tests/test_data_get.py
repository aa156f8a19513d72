"""`langadapt data get`: the examples' public data installed into the data home by one command.

What a user relies on: on an empty cache an example stops at validation with the command that
fetches its data; after `data get --from DIR` (the offline path) or a download from a mirror the
same example validates, reading the files from the cache, byte for byte what the source holds.
The source here is the suite's own fixture folder, laid out like the data home.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import load_config
from langadapt.data.public import SETS, data_home, get, missing_data
from langadapt.errors import LangadaptError
from langadapt.train.config import TrainJobConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "codeswitch-restore.yaml"  # ntrex128: English source and Swahili


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A user with nothing fetched yet: LANGADAPT_DATA unset, the data home in an empty cache."""
    monkeypatch.delenv("LANGADAPT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "langadapt" / "data"


def test_data_home_is_the_cache_unless_langadapt_data_names_one(empty_cache, monkeypatch, tmp_path):
    assert data_home() == empty_cache
    monkeypatch.setenv("LANGADAPT_DATA", str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"


def test_missing_data_names_the_command_before_any_work(empty_cache):
    with pytest.raises(LangadaptError) as err:
        load_config(EXAMPLE, TrainJobConfig)
    message = err.value.message
    assert "`langadapt data get ntrex128 --languages swa`" in message and str(empty_cache / "ntrex128") in message
    assert not empty_cache.exists()  # validation wrote nothing


def test_get_from_a_local_copy_then_the_example_validates(empty_cache, shared):
    result = CliRunner().invoke(app, ["data", "get", "ntrex128", "--languages", "swa", "--from",
                                      str(shared("ntrex128").parent)])
    assert result.exit_code == 0, result.output
    installed = sorted(p.name for p in (empty_cache / "ntrex128").iterdir())
    assert installed == ["newstest2019-ref.swa.txt", "newstest2019-src.eng.txt"]
    for name in installed:
        assert (empty_cache / "ntrex128" / name).read_bytes() == shared("ntrex128", name).read_bytes()
    cfg = load_config(EXAMPLE, TrainJobConfig)
    assert [Path(f) for f in cfg.data.sources[0].files] == [empty_cache / "ntrex128" / n for n in reversed(installed)]


def test_get_downloads_from_a_file_url_mirror(tmp_path, shared):
    """The download path itself (urllib), against a mirror laid out as upstream: NTREX-128/<file>."""
    mirror = tmp_path / "mirror" / "NTREX-128"
    mirror.mkdir(parents=True)
    for name in ("newstest2019-src.eng.txt", "newstest2019-ref.ces.txt"):
        (mirror / name).write_bytes(shared("ntrex128", name).read_bytes())
    files = get("ntrex128", ["ces"], home=tmp_path / "home", base_url=mirror.parent.as_uri())
    assert [f.read_bytes() for f in files] == [(mirror / f.name).read_bytes() for f in files]
    with pytest.raises(LangadaptError, match="ntrex128 has no file newstest2019-ref.xx.txt"):
        get("ntrex128", ["xx"], home=tmp_path / "home", base_url=mirror.parent.as_uri())
    assert sorted(p.name for p in (tmp_path / "home" / "ntrex128").iterdir()) == sorted(f.name for f in files)


def test_get_from_a_folder_without_the_language_says_what_is_missing(empty_cache, shared, tmp_path):
    source = tmp_path / "copy"
    (source / "sib200").mkdir(parents=True)
    with pytest.raises(LangadaptError, match=r"sib200/xyz_Latn/train.tsv is missing"):
        get("sib200", ["xyz_Latn"], source=source)
    result = CliRunner().invoke(app, ["data", "get", "nosuchset"])
    assert result.exit_code == 2 and "sib200" in result.output and "ntrex128" in result.output


def test_scripts_check_every_set_first(empty_cache, shared):
    """The study scripts call `missing_data` before any work: one message, every command needed."""
    message = missing_data({"sib200": ["kin_Latn"], "ntrex128": ["kin"]})
    assert str(empty_cache / "sib200" / "kin_Latn" / "train.tsv") in message
    assert "`langadapt data get sib200 --languages kin_Latn`" in message
    assert "`langadapt data get ntrex128 --languages kin`" in message
    assert missing_data({"ntrex128": ["swa"]}, shared("ntrex128").parent) is None


def test_every_example_names_the_command_for_each_set_it_reads():
    """An example reading `${LANGADAPT_DATA}/<set>` says at its top how to fetch that set."""
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        head = text[: text.index("\nname:")]
        for name in SETS:
            if f"${{LANGADAPT_DATA}}/{name}" in text:
                assert f"langadapt data get {name}" in head, (path.name, name)
        assert "${LANGADAPT_DATA:-" not in text, path.name  # no default beside the data home
