"""datatrove readers for the curation pipeline: JSONL, Parquet, folders of text files, HF datasets.

Each yields datatrove `Document`s with `id`, `text` and metadata (`source`, plus any `url`,
`date`, `lang` fields the input has). datatrove's own JSONL reader skips a malformed line with a
log warning; here the user chooses: `on_error: fail` stops with the file and line, `skip` counts
the line (`skipped_lines` in the stats) and goes on.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader, BaseReader
from loguru import logger

from langadapt.errors import LangadaptError
from langadapt.registry import READERS


class _BadInput:
    """What to do with an unreadable line or file: raise with its location, or count and skip it."""

    on_error: str

    def bad(self, what: str, where: str, fix: str) -> None:
        if self.on_error == "fail":
            raise LangadaptError(what, where=where, fix=fix + " Or set `on_error: skip` to count and skip such input.")
        self.stat_update("skipped_lines")
        logger.warning(f"{where}: {what}; skipped")


class CheckedJsonlReader(_BadInput, JsonlReader):
    name = "🐿 Jsonl (checked)"

    def __init__(self, *args, on_error: str = "fail", **kwargs):
        super().__init__(*args, **kwargs)
        self.on_error = on_error

    def read_file(self, filepath: str):
        with self.data_folder.open(filepath, "rb", compression=self.compression) as handle:
            for number, raw in enumerate(handle, start=1):
                where = f"{self.data_folder.resolve_paths(filepath)}, line {number}"
                if not raw.strip():
                    continue
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError as err:
                    invalid_utf8 = "utf-8" in str(err).lower()
                    self.bad("invalid UTF-8" if invalid_utf8 else f"malformed JSON ({err})", where,
                             "re-encode the file as UTF-8." if invalid_utf8 else
                             'each line must be one JSON object such as {"id": "1", "text": "..."}.')
                    continue
                if not isinstance(row, dict) or not isinstance(row.get(self.text_key), str):
                    self.bad(f"no string field {self.text_key!r}", where, f"give each line a {self.text_key!r} field.")
                    continue
                if not row[self.text_key].strip():
                    self.stat_update("empty_documents")
                    continue
                document = self.get_document_from_dict(row, filepath, number)
                if document:  # datatrove drops empty texts (counted by its reader stats)
                    yield document


class TextFolderReader(_BadInput, BaseDiskReader):
    """One document per text file; the id is the path relative to the folder."""

    name = "📄 Text files"

    def __init__(self, data_folder, glob_pattern: str | None = None, on_error: str = "fail", **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern or "**/*.txt", **kwargs)
        self.on_error = on_error

    def read_file(self, filepath: str):
        with self.data_folder.open(filepath, "rb") as handle:
            raw = handle.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.bad(f"invalid UTF-8 at byte {err.start}", self.data_folder.resolve_paths(filepath),
                     "re-encode the file as UTF-8.")
            return
        document = self.get_document_from_dict({"text": text, "id": filepath}, filepath, 0)
        if document:
            yield document


class DatasetsReader(BaseReader):
    """A `datasets` dataset saved with `save_to_disk`, or what `load_dataset` understands (local data
    files offline, a hub name online, through the library's own loader); each task reads its shard."""

    name = "🤗 datasets (local)"

    def __init__(self, path: str, text_key: str = "text", id_key: str = "id", default_metadata: dict | None = None):
        super().__init__(text_key=text_key, id_key=id_key, default_metadata=default_metadata)
        self.path = path

    def _load(self):
        import datasets

        path = Path(self.path)
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            dataset = datasets.load_from_disk(str(path))
        else:
            dataset = datasets.load_dataset(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = datasets.concatenate_datasets(list(dataset.values()))
        return dataset

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        shard = self._load().shard(world_size, rank, contiguous=True)
        for number, row in enumerate(shard):
            with self.track_time():
                document = self.get_document_from_dict(dict(row), self.path, f"{rank}/{number}")
            if document:
                self.stat_update("documents")
                yield document


def _disk_kwargs(spec) -> dict:
    return {"text_key": spec.text_key, "id_key": spec.id_key, "default_metadata": {"source": spec.source_name}}


def jsonl_reader(spec) -> PipelineStep:
    return CheckedJsonlReader(str(spec.path), glob_pattern=spec.glob, on_error=spec.on_error, **_disk_kwargs(spec))


def parquet_reader(spec) -> PipelineStep:
    return ParquetReader(str(spec.path), glob_pattern=spec.glob, **_disk_kwargs(spec))


def text_reader(spec) -> PipelineStep:
    kwargs = _disk_kwargs(spec)
    kwargs.pop("text_key"), kwargs.pop("id_key")
    return TextFolderReader(str(spec.path), glob_pattern=spec.glob, on_error=spec.on_error, **kwargs)


def datasets_reader(spec) -> PipelineStep:
    return DatasetsReader(str(spec.path), **_disk_kwargs(spec))


def make_reader(spec) -> PipelineStep:
    """The reader for one `inputs:` entry of the curation config."""
    path = Path(spec.path)
    if not path.exists() and spec.format != "hf":  # hf: a missing local path is a hub name (when online)
        raise LangadaptError(f"input not found: {path}", fix="check `inputs[].path` in the curation config.")
    if path.is_file() and spec.format != "hf":  # a single file: read its folder, matching only its name
        spec = spec.model_copy(update={"path": path.parent, "glob": path.name})
    return READERS[spec.format](spec)
