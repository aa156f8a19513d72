"""Path kinds: what a file or folder named in a config (or on the command line) must be.

Every path-typed config key is annotated with one `PathKind` (`TextFile`, `JsonlFile`,
`ModelFolder`, ...) or, where the expected kind depends on the section's `format`, with a
`ByFormat` table of them. Both are checked when the config is validated (schema.py), so a
missing, unreadable or empty file, a folder where a file belongs (or the reverse) and a file of
the wrong format are refused before any work starts, with a message naming the key, the path and
the fix.

No torch here: config validation must stay light. `check_model_files` is the file-level half of
`model.base.check_base` (which adds the tokenizer and architecture checks).
"""

from __future__ import annotations

import codecs
import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from langadapt.errors import LangadaptError
from langadapt.public_data import fetch_hint, wanted

PEEK = 1 << 16  # bytes read to recognise a format; whole files are read by the stage that needs them
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


class PathProblem(ValueError):
    """A path that is not what its key expects: `what` went wrong and the `fix`; `fetch` lists the
    (set, language) pairs `langadapt data get` installs when the paths are missing data-home files."""

    def __init__(self, what: str, fix: str, fetch: list[tuple[str, str | None]] | None = None):
        self.what, self.fix, self.fetch = what, fix, fetch or []
        super().__init__(f"{what}. Fix: {fix}")


_PENDING: ContextVar[tuple[Path, ...]] = ContextVar("pending_folders", default=())


@contextmanager
def pending(folders: Iterable[Path]) -> Iterator[None]:
    """Paths inside `folders` (a sweep's sibling runs, not computed yet) pass unchecked meanwhile:
    the run that reads them is validated again once they exist (`SweepRun.ready`)."""
    token = _PENDING.set(tuple(Path(folder).absolute() for folder in folders))
    try:
        yield
    finally:
        _PENDING.reset(token)


def is_pending(path: Path) -> bool:
    path = Path(path).absolute()
    return any(path == folder or folder in path.parents for folder in _PENDING.get())


@dataclass(frozen=True)
class PathKind:
    """One kind of input path: a name, what it is (for messages) and its format check."""

    name: str
    expects: str
    folder: bool | None  # True: a folder, False: a file, None: either
    check_format: Callable[[Path], None] | None = None

    def check(self, path: Path) -> Path:
        """`path` itself if it is this kind; else a `PathProblem` saying what is wrong and the fix."""
        path = Path(path)
        if is_pending(path):
            return path
        if not path.exists():
            near = f" (relative paths start at {Path.cwd()})" if not path.is_absolute() else ""
            fetch = wanted(path)
            fix = fetch_hint([fetch]) if fetch else f"give the path of {self.expects}."
            raise PathProblem(f"{path} does not exist{near}", fix, [fetch] if fetch else [])
        if self.folder is False and path.is_dir():
            raise PathProblem(f"{path} is a folder", f"name {self.expects} inside it.")
        if self.folder is True and not path.is_dir():
            raise PathProblem(f"{path} is a file, not a folder", f"give the path of {self.expects}.")
        readable = os.R_OK | (os.X_OK if path.is_dir() else 0)
        if not os.access(path, readable):
            raise PathProblem(f"{path} is not readable", "check its permissions (`chmod u+r`).")
        if path.is_dir() and not any(path.iterdir()):
            raise PathProblem(f"the folder {path} is empty", f"give the path of {self.expects}.")
        if path.is_file() and path.stat().st_size == 0:
            raise PathProblem(f"the file {path} is empty", f"give the path of {self.expects}.")
        if self.check_format is not None:
            self.check_format(path)
        return path

    def __call__(self, path: Path) -> Path:  # pydantic's AfterValidator calls the kind itself
        return self.check(path)


@dataclass(frozen=True)
class ByFormat:
    """The kind of a path key that depends on the section's `format` (or another key): one kind
    per value; a value missing from `kinds` takes no paths to check."""

    kinds: dict[str, PathKind]
    by: str = "format"


def _text(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(PEEK)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at PEEK is fine
    except UnicodeDecodeError as err:
        raise PathProblem(f"{path} is not UTF-8 text (bad byte at offset {err.start})",
                          "re-encode it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None


def _jsonl(path: Path) -> None:
    _text(path)
    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        row = json.loads(first)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        raise PathProblem(f"{path} is not JSON lines (its first line is not a JSON object)",
                          'give a file of one JSON object a line, e.g. {"id": "1", "text": "...", "lang": "hsb_Latn"}.')


def _corpus(path: Path) -> None:
    for split in ("train", "heldout"):
        if not (path / f"{split}.jsonl").is_file():
            raise PathProblem(f"{path} is not a curated corpus (no {split}.jsonl)",
                              "point at the output folder of `langadapt curate` or of an experiment's curate stage.")
        if (path / f"{split}.jsonl").stat().st_size:
            _jsonl(path / f"{split}.jsonl")


def _tokenizer(path: Path) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or "model" not in data:
        raise PathProblem(f"{path} is not a tokenizers JSON file (tokenizer.json)",
                          "give a tokenizer.json saved by HF tokenizers, or `bpe` / `bytes` / `teacher`.")


def _parquet(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            if handle.read(4) != b"PAR1":
                raise PathProblem(f"{path} is not a Parquet file", "give a .parquet file or a folder of them.")


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or corrupted safetensors file by its header: a length, a JSON table of
    tensors and their byte ranges, all of which must lie inside the file."""
    size = path.stat().st_size
    problem = None
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if length is None or length > size - 8:
            problem = "its header is cut off"
        else:
            try:
                header = json.loads(handle.read(length))
                end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"),
                          default=0)
            except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
                problem = "its header is not valid"
            else:
                if 8 + length + end > size:
                    problem = f"it is truncated ({size} bytes, its header needs {8 + length + end})"
    if problem:
        raise PathProblem(f"the weights file {path} is corrupted: {problem}",
                          "copy or download the file again (compare its size or checksum with the source).")


def check_weights(folder: Path, where: str, fix: str | None = None) -> None:
    """Every safetensors file in `folder` intact, before a library loads it: a truncated file is named
    as a LangadaptError `where` it was met (with `fix`, else the file check's own), not a library trace."""
    for weights in sorted(Path(folder).glob("*.safetensors")):
        try:
            check_safetensors(weights)
        except PathProblem as err:
            raise LangadaptError(err.what, where=where, fix=fix or err.fix) from None


def check_model_files(path: Path, gguf_file: str | None = None) -> None:
    """A local model folder as langadapt loads it: config.json and safetensors weights (intact,
    never pickle-only), no remote code; or a folder holding the GGUF file `gguf_file`."""
    path = Path(path)
    if is_pending(path):
        return
    MODEL_FOLDER_BASE.check(path)
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            found = sorted(p.name for p in path.glob("*.gguf"))
            raise PathProblem(f"{path} has no GGUF file {gguf_file!r}",
                              f"use one of {', '.join(found)}." if found else "this folder holds no .gguf file.")
        return
    if not (path / "config.json").is_file():
        raise PathProblem(f"{path} has no config.json, so it is not a transformers model folder",
                          "save the model with `save_pretrained`, or name its GGUF file (gguf_file).")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern))
        if pickles:
            raise PathProblem(f"{path} has only pickle weights ({', '.join(pickles)}); langadapt loads "
                              "safetensors only, since unpickling can run arbitrary code",
                              "convert it once where you trust the file: `AutoModelForCausalLM.from_pretrained("
                              "folder).save_pretrained(folder)` writes model.safetensors.")
        raise PathProblem(f"{path} has no weights (*.safetensors)", "copy the model's .safetensors files into it.")
    for file in weights:
        check_safetensors(file)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise PathProblem(f"{path / 'config.json'} is not valid JSON", "save the model again with "
                          "`save_pretrained`.") from None
    if "auto_map" in config:
        raise PathProblem(f"{path} needs custom code from the model's own files (config.json has `auto_map`); "
                          "langadapt never runs remote code", "use a model that stock transformers implements.")


def _model_folder(path: Path) -> None:
    if (path / "config.json").is_file() or not list(path.glob("*.gguf")):
        check_model_files(path)  # a GGUF-only folder is checked with its gguf_file by the section


TEXT = PathKind("text file", "a UTF-8 text file (one text a line, or a .tsv with a `text` column)", False, _text)
JSONL = PathKind("JSONL file", "a JSONL file of documents (id, text, lang)", False, _jsonl)
FILE = PathKind("file", "a non-empty file", False)
FOLDER = PathKind("folder", "a folder of the data it names", True)
CORPUS = PathKind("corpus folder", "a corpus folder from `langadapt curate` (train.jsonl, heldout.jsonl)", True,
                  _corpus)
MODEL_FOLDER_BASE = PathKind("model folder", "a local transformers model folder (config.json, *.safetensors, "
                             "tokenizer files) or a folder holding a GGUF file", True)
MODEL = PathKind("model folder", MODEL_FOLDER_BASE.expects, True, _model_folder)
TOKENIZER = PathKind("tokenizer file", "a tokenizer.json", False, _tokenizer)
# curation inputs: malformed lines are for `on_error` (fail or skip) to handle, so only the path is checked here
JSONL_INPUT = PathKind("JSONL input", "a JSONL file, or a folder of them", None)
PARQUET_INPUT = PathKind("Parquet input", "a Parquet file, or a folder of them", None, _parquet)
TEXT_INPUT = PathKind("text input", "a folder of .txt files (or one .txt file)", None)
ANY_INPUT = PathKind("input", "a file or folder of input data", None)

TextFile = Annotated[Path, AfterValidator(TEXT), TEXT]
JsonlFile = Annotated[Path, AfterValidator(JSONL), JSONL]
InputFile = Annotated[Path, AfterValidator(FILE), FILE]
InputFolder = Annotated[Path, AfterValidator(FOLDER), FOLDER]
ModelFolder = Annotated[Path, AfterValidator(MODEL), MODEL]
TokenizerFile = Annotated[Path, AfterValidator(TOKENIZER), TOKENIZER]


def _tokenizer_spec(value: str) -> str:
    return value if value in ("bpe", "bytes", "teacher") else str(TOKENIZER.check(Path(value)))


TokenizerSpec = Annotated[str, AfterValidator(_tokenizer_spec), TOKENIZER]  # bpe | bytes | teacher | a tokenizer.json


class OutputKind(PathKind):
    """Where output goes: it may not exist yet; if it does, it is the right type, and its nearest
    existing folder is writable."""

    def check(self, path: Path) -> Path:
        path = Path(path)
        if path.exists() and path.is_dir() != self.folder:
            found, wanted = ("a file", "folder") if self.folder else ("a folder", "file")
            raise PathProblem(f"{path} is {found}, but output goes into a {wanted} there",
                              f"name a {wanted} (it is created), or move the one there away.")
        parent = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PathProblem(f"{parent} is not writable, so {path} cannot be written",
                              "choose a folder you can write to, or fix its permissions.")
        return path


OUTPUT = OutputKind("output folder", "a folder to write into", True)
OUTPUT_FILE = OutputKind("output file", "a file to write", False)
OutputFolder = Annotated[Path, AfterValidator(OUTPUT), OUTPUT]


class GlobKind(PathKind):
    """Glob patterns (code files): one must match at least one file."""

    def check(self, path: Path) -> Path:
        pattern = str(path)
        if not any(p.is_file() for p in Path().glob(pattern)):
            raise PathProblem(f"the code pattern {pattern!r} matches no file (from {Path.cwd()})",
                              "give a glob relative to the working directory, e.g. 'src/**/*.py'.")
        return path


CODE = GlobKind("code pattern", "a glob pattern of code files", None)
CodeGlob = Annotated[str, AfterValidator(lambda pattern: str(CODE.check(pattern))), CODE]


def check_path(path: Path | str, kind: PathKind, key: str) -> Path:
    """Check a path given outside a config (a command-line flag); the error names `key`."""
    try:
        return kind.check(Path(path))
    except PathProblem as err:
        raise LangadaptError(f"{key} {str(path)!r}: {err.what}", fix=err.fix) from None
