"""Every path a user can name — each path-typed key of every config schema, each path flag of the
CLI — is checked before any work starts: missing, empty, a folder for a file (and the reverse),
the wrong format. Each case is one paragraph naming the key, the path and the fix.

The cases are generated from the schemas (`schema.path_fields`), so a new key is covered, and a new
`Path` key without a kind fails `test_every_path_key_has_a_kind`."""

from __future__ import annotations

import inspect
import json
import types
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import parse_config
from langadapt.corpus.config import CurationConfig, CurationInput
from langadapt.data.config import DataConfig, SourceConfig
from langadapt.errors import LangadaptError
from langadapt.model.config import BaseModelConfig
from langadapt.paths import (
    CODE,
    CORPUS,
    JSONL,
    MODEL,
    PARQUET_INPUT,
    TEXT,
    TOKENIZER,
    ByFormat,
    OutputKind,
)
from langadapt.schema import Section, path_fields
from langadapt.train.config import TrainJobConfig

SAMPLE = {"name": "s", "format": "sample", "languages": ["hsb_Latn"]}
REQUIRED = {  # the least each schema needs besides the key under test
    CurationInput: {"format": "jsonl", "path": "{valid}"},
    CurationConfig: {"languages": ["hsb_Latn"], "inputs": [{"format": "jsonl", "path": "{valid}"}]},
    SourceConfig: {"name": "s"},
    DataConfig: {"sources": [SAMPLE]},
    TrainJobConfig: {"name": "job", "data": {"sources": [SAMPLE]}},
    BaseModelConfig: {},
}


def all_schemas() -> list[type[Section]]:
    found, todo = [], [Section]
    while todo:
        schema = todo.pop()
        todo += schema.__subclasses__()
        found.append(schema)
    return sorted({s for s in found if s is not Section}, key=lambda s: s.__name__)


def _bad_format(kind, tmp: Path) -> Path | None:
    """A file or folder that exists and is not empty but is not what `kind` reads."""
    if kind is TEXT:
        (tmp / "latin1.txt").write_bytes("Serbšćina\n".encode("utf-16"))
        return tmp / "latin1.txt"
    if kind is JSONL:
        (tmp / "bad.jsonl").write_text("id\ttext\n1\thello\n")
        return tmp / "bad.jsonl"
    if kind is CORPUS:
        (tmp / "notcorpus").mkdir()
        (tmp / "notcorpus" / "docs.txt").write_text("hello\n")
        return tmp / "notcorpus"
    if kind is MODEL:  # pickle-only weights
        (tmp / "pickled").mkdir()
        (tmp / "pickled" / "config.json").write_text(json.dumps({"model_type": "llama"}))
        (tmp / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
        return tmp / "pickled"
    if kind is TOKENIZER:
        (tmp / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
        return tmp / "tokenizer.json"
    if kind is PARQUET_INPUT:
        (tmp / "table.parquet").write_text("a,b\n1,2\n")
        return tmp / "table.parquet"
    return None


def cases(kind, tmp: Path) -> dict[str, tuple[str, str]]:
    """case name → (the bad path, a phrase the message must hold)."""
    tmp.mkdir(parents=True, exist_ok=True)
    if kind is CODE:
        return {"matches nothing": ("no_such_dir/**/*.py", "matches no file")}
    (tmp / "a_file.txt").write_text("text\n")
    (tmp / "a_folder").mkdir(exist_ok=True)
    (tmp / "a_folder" / "inside.txt").write_text("text\n")
    if isinstance(kind, OutputKind):
        return {"file for folder": (str(tmp / "a_file.txt"), "is a file")}
    (tmp / "empty_folder").mkdir(exist_ok=True)
    (tmp / "empty.txt").write_text("")
    found = {"missing": (str(tmp / "nowhere"), "does not exist")}
    if kind.folder is not False:
        found["empty folder"] = (str(tmp / "empty_folder"), "is empty")
    if kind.folder is not True:
        found["empty file"] = (str(tmp / "empty.txt"), "is empty")
    if kind.folder is False:
        found["folder for file"] = (str(tmp / "a_folder"), "is a folder")
    if kind.folder is True:
        found["file for folder"] = (str(tmp / "a_file.txt"), "is a file")
    bad = _bad_format(kind, tmp)
    if bad is not None:
        found["wrong format"] = (str(bad), "")
    return found


def _shaped(annotation, path: str):
    """`path` in the shape the field holds: a list item, a per-language mapping, or itself."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _shaped(inner[0], path)
    if origin is typing.Annotated:
        return _shaped(typing.get_args(annotation)[0], path)
    if origin is list:
        return [path]
    if origin is tuple:  # a pair of files (evaluate.translate: sources, references)
        return [_shaped(item, path) for item in typing.get_args(annotation)]
    if origin is dict:
        return {"hsb_Latn": _shaped(typing.get_args(annotation)[1], path)}
    return path


def path_cases() -> list[tuple]:
    """(schema, field, format value or None, kind) for every path-typed key of every schema."""
    found = []
    for schema in all_schemas():
        for name, kind in path_fields(schema).items():
            if isinstance(kind, ByFormat):
                found += [(schema, name, (kind.by, value), each) for value, each in kind.kinds.items()]
            elif kind is not None:
                found.append((schema, name, None, kind))
    return found


PATH_CASES = path_cases()


def test_every_path_key_has_a_kind():
    untyped = [f"{schema.__name__}.{name}" for schema in all_schemas()
               for name, kind in path_fields(schema).items() if kind is None]
    assert not untyped, f"give these Path keys a kind from langadapt.paths: {untyped}"
    assert len(PATH_CASES) >= 25  # a lost annotation would shrink this


@pytest.mark.parametrize(("schema", "key", "chosen", "kind"), PATH_CASES,
                         ids=[f"{s.__name__}.{k}" + (f"[{c[1]}]" if c else "") for s, k, c, _ in PATH_CASES])
def test_each_bad_path_is_named_with_its_key_and_a_fix(schema, key, chosen, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps({"id": "1", "text": "Dobry dźeń.", "lang": "hsb_Latn"}) + "\n")
    annotation = schema.model_fields[key].annotation
    checked = 0
    for case, (path, phrase) in cases(kind, tmp_path / "cases").items():
        data = json.loads(json.dumps(REQUIRED.get(schema, {})).replace("{valid}", str(valid)))
        if chosen is not None:
            data[chosen[0]] = chosen[1]
        if chosen and chosen == ("format", "parallel"):
            data[key] = [path, str(valid)]
        else:
            data[key] = _shaped(annotation, path)
        with pytest.raises(LangadaptError) as err:
            parse_config(data, f"{schema.__name__}.yaml", schema)
        message = err.value.message
        assert key in message and path in message and "Fix:" in message, (case, message)
        assert phrase in message, (case, message)
        assert "Traceback" not in message and "\n" not in message
        checked += 1
    assert checked >= 1


def test_a_gguf_file_that_is_not_in_the_folder_is_named(tmp_path):
    (tmp_path / "model.Q4_0.gguf").write_bytes(b"GGUF")
    for schema, data in ((BaseModelConfig, {"model": str(tmp_path)}),
                         (TrainJobConfig, {**REQUIRED[TrainJobConfig], "init_from": str(tmp_path)})):
        with pytest.raises(LangadaptError, match=r"has no GGUF file 'model.Q8_0.gguf'.*model.Q4_0.gguf"):
            parse_config({**data, "gguf_file": "model.Q8_0.gguf"}, "x.yaml", schema)


def test_a_truncated_safetensors_file_is_refused_by_name(tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"w": torch.zeros(64, 64)}, tmp_path / "model.safetensors")
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LangadaptError, match=r"model.safetensors is corrupted: it is truncated"):
        parse_config({"model": str(tmp_path)}, "x.yaml", BaseModelConfig)
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 100)
    with pytest.raises(LangadaptError, match=r"model.safetensors is corrupted"):
        parse_config({"model": str(tmp_path)}, "x.yaml", BaseModelConfig)


# ---------------------------------------------------------------------------------------------
# The command line: every Path argument and option of every command, and the LANG=FILE specs.

FLAG_SPECS = {  # options whose values hold paths inside LANG=FILE[,FILE] specs
    ("eval", "text"): "hsb_Latn={path}", ("eval", "retrieval"): "hsb_Latn={path},{path}",
    ("eval", "translate"): "hsb_Latn={path},{path}",
}


OUTPUTS = {("demo", "output_dir"): "folder", ("eval", "out"): "file", ("eval", "tasks_dir"): "folder",
           ("translate", "out"): "file", ("export", "out"): "folder"}
# commands whose other arguments get good-enough values
SEVERAL_ARGUMENTS = {"translate": ["model", "source"], "export": ["model_dir", "out"]}


def cli_path_params() -> list[tuple[str, str, bool]]:
    """(command, parameter, is an option) for every path-holding parameter of every command."""
    found = []
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        for param in inspect.signature(command.callback).parameters.values():
            is_path = param.annotation in ("Path", Path) or (name, param.name) in FLAG_SPECS
            if is_path:
                found.append((name, param.name, type(param.default).__name__ == "OptionInfo"))
    return found


CLI_CASES = cli_path_params()


@pytest.mark.parametrize(("command", "param", "option"), CLI_CASES, ids=[f"{c}:{p}" for c, p, _ in CLI_CASES])
def test_each_bad_command_line_path_is_one_paragraph(command, param, option, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "run"
    target.mkdir()
    (target / "notes.txt").write_text("x\n")
    config = tmp_path / "exp.yaml"
    config.write_text("name: x\n")
    positional = {"eval": [str(target)], "vocab": [str(config)], "report": [str(target)],
                  "translate": [str(target), str(target / "notes.txt"), "--to", "swh_Latn"],
                  "export": [str(target), str(tmp_path / "exported")]}
    bad = tmp_path / "nowhere"
    if (command, param) in OUTPUTS:  # output goes there: the bad case is a file for a folder, or the reverse
        bad = tmp_path / "in_the_way"
        bad.mkdir() if OUTPUTS[command, param] == "file" else bad.write_text("x\n")
    value = FLAG_SPECS.get((command, param), "{path}").format(path=bad)
    if option:
        args = [command, *positional.get(command, []), f"--{param.replace('_', '-')}", value]
    elif command in SEVERAL_ARGUMENTS:  # the bad one in its place, the others as in `positional`
        others = positional[command]
        args = [command, *[value if name == param else others[i] for i, name in enumerate(SEVERAL_ARGUMENTS[command])],
                *others[len(SEVERAL_ARGUMENTS[command]):]]
    else:
        args = [command, value]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert str(bad) in text and "Traceback" not in text and "Fix:" in text, text
    if option:  # an argument's message names the file itself
        assert f"--{param.replace('_', '-')}" in text, text


def test_an_empty_config_file_is_refused(tmp_path):
    (tmp_path / "empty.yaml").write_text("\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "empty.yaml")])
    assert result.exit_code == 2 and "the config file is empty" in " ".join(result.output.split())


def test_the_cases_cover_every_kind(tmp_path):
    """A count for the closing note, and a guard that each kind's cases exist."""
    total = sum(len(cases(kind, tmp_path / f"{i}")) for i, (_, _, _, kind) in enumerate(PATH_CASES))
    assert total >= 80 and len(CLI_CASES) >= 12


def test_eval_names_a_model_folder_it_cannot_load(tmp_path):
    pickled = _bad_format(MODEL, tmp_path)
    (tmp_path / "heldout.txt").write_text("Dobry dźeń.\n")
    result = CliRunner().invoke(app, ["eval", str(pickled), "--text", f"hsb_Latn={tmp_path / 'heldout.txt'}"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "TARGET" in text and "only pickle weights" in text, text
