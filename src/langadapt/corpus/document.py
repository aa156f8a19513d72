"""The one document type every stage passes along (datatrove-style: id, text, metadata), with the
language as a field, and the corpus artifact both curation engines write: a folder with
`train.jsonl` and `heldout.jsonl`, one `Document` a line (`write_corpus` / `read_corpus`)."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langadapt.atomic import write_jsonl
from langadapt.errors import LangadaptError

log = logging.getLogger("langadapt")

SPLITS = ("train", "heldout")


@dataclass
class Document:
    id: str
    text: str
    lang: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_documents(path: Path) -> Iterator[Document]:
    """Stream documents from a JSONL file with `id`, `text`, `lang` (and optional `metadata`)."""
    path = Path(path)
    if not path.is_file():
        raise LangadaptError(f"no such file: {path}", fix="check the path in your config.")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}, line {number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark is not JSON
            except UnicodeDecodeError as err:
                raise LangadaptError(
                    f"invalid UTF-8 at byte {err.start}", where=where,
                    fix="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).",
                ) from err
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise LangadaptError(
                    f"malformed JSON ({err.msg}, column {err.colno})", where=where,
                    fix='each line must be one JSON object such as {"id": "1", "text": "...", "lang": "hsb_Latn"}.',
                ) from err
            missing = [key for key in ("text", "lang") if not isinstance(row, dict) or key not in row]
            if missing:
                raise LangadaptError(
                    f"missing field(s) {', '.join(missing)}", where=where,
                    fix='each line needs at least "text" and "lang"; "id" defaults to the line number.',
                )
            yield Document(
                id=str(row.get("id", f"{path.name}:{number}")),
                text=str(row["text"]),
                lang=str(row["lang"]),
                metadata=dict(row.get("metadata") or {}),
            )


def write_corpus(folder: Path, train: Iterable[Document], heldout: Iterable[Document]) -> Path:
    """The corpus artifact: `folder/train.jsonl` and `folder/heldout.jsonl`, each written atomically."""
    for split, docs in zip(SPLITS, (train, heldout), strict=True):
        write_jsonl(Path(folder) / f"{split}.jsonl", (doc.to_dict() for doc in docs))
    return Path(folder)


def read_corpus(folder: Path, split: str = "train", languages: list[str] | None = None) -> Iterator[Document]:
    """The documents of one split of a corpus artifact (of `languages` only, when given); a folder
    that is not one is an error naming it."""
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise LangadaptError(f"{folder} is not a curated corpus (no {path.name})",
                             fix="point at the output folder of `langadapt curate` or of an experiment's "
                                 "curate stage (it holds train.jsonl and heldout.jsonl).")
    return (doc for doc in read_documents(path) if not languages or doc.lang in languages)


def read_curated(folder: Path, languages: list[str] | None = None) -> list[Document]:
    """Both splits of a corpus artifact, each document marked with its split (`metadata["split"]`),
    so that a curation run over them keeps the held-out split as it is."""
    return [Document(doc.id, doc.text, doc.lang, {**doc.metadata, "split": split})
            for split in SPLITS for doc in read_corpus(folder, split, languages)]


Part = tuple[int | None, int | None] | None  # [first, end) of a file's lines, as a Python slice


def read_lines(path: Path, keep_empty: bool = False, part: Part = None) -> list[str]:
    """The stripped lines of a UTF-8 text file, one text each; a `.tsv` file (SIB-200/FLORES
    style, with a header) gives its `text` column. `part` keeps the lines [first, end) (negative:
    counted from the end), so one file can give a training part and a held-out part. Empty lines
    are dropped unless `keep_empty` (line-parallel files keep them, so line i still matches line i).
    Errors name the file and line."""
    path = Path(path)
    lines = ([row.get("text", "") for row in read_tsv(path)] if path.suffix == ".tsv"
             else read_utf8(path).splitlines())
    lines = lines[slice(*part)] if part is not None else lines
    return [line.strip() for line in lines if keep_empty or line.strip()]


def read_tsv(path: Path, columns: tuple[str, ...] = ("text",)) -> list[dict[str, str]]:
    """The rows of a tab-separated file with a header (SIB-200/FLORES style) as {column: cell}, in
    file order. Cells are CSV-quoted (a text holding quotes is written `"He said ""yes""."`), so
    splitting lines on tabs would keep the quoting as part of the sentence. A header without
    `columns` is an error naming the file and the fix."""
    table = list(csv.reader(io.StringIO(read_utf8(path), newline=""), delimiter="\t"))
    header = table[0] if table else []
    if missing := [column for column in columns if column not in header]:
        raise LangadaptError(f"the TSV header {header} lacks the column(s) {', '.join(missing)}",
                             where=f"{path}, line 1", fix="give a tab-separated file whose header names them "
                                                          "(SIB-200: index_id, category, text).")
    return [dict(zip(header, (cell.strip() for cell in cells), strict=False)) for cells in table[1:] if cells]


def read_parallel(source: Path, target: Path, limit: int | None = None,
                  part: Part = None) -> tuple[list[str], list[str]]:
    """Two line-parallel files (line i of one translates line i of the other): the pairs in which
    both sides have text (of the lines in `part`), at most `limit` of them."""
    left, right = read_lines(source, True, part), read_lines(target, True, part)
    if len(left) != len(right):
        raise LangadaptError(f"{source} has {len(left)} lines but {target} has {len(right)}",
                             fix="pass two line-parallel files (line i translates line i).")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if a and b][:limit]
    if not pairs:
        raise LangadaptError(f"no sentence pairs in {source} and {target}", fix="pass non-empty parallel files.")
    return [a for a, _ in pairs], [b for _, b in pairs]


def read_utf8(path: Path) -> str:
    """A whole UTF-8 text file; a missing file or bad bytes name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LangadaptError(f"no such file: {path}", fix="check the path in your config.")
    try:
        return path.read_text(encoding="utf-8").removeprefix("\ufeff")  # a byte-order mark is not text
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise LangadaptError(f"invalid UTF-8 at byte {err.start}", where=f"{path}, line {line}",
                             fix="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from err


class LanguageFilter:
    """Keeps the documents of `languages` and counts the ones it drops, so a file of mislabelled
    (or other-language) documents is reported as such — how many, which labels, where — instead of
    surfacing later as a source with too few tokens or an empty held-out split."""

    def __init__(self, languages: Iterable[str], where: str):
        self.languages, self.where = list(languages), where
        self.kept: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            if doc.lang in self.languages:
                self.kept[doc.lang] += 1
                yield doc
            else:
                self.dropped[doc.lang] += 1

    def dropped_note(self) -> str:
        total = sum(self.kept.values()) + sum(self.dropped.values())
        labels = ", ".join(f"{lang}: {count}" for lang, count in self.dropped.most_common(5))
        return (f"{sum(self.dropped.values())} of the {total} documents in {self.where} were dropped because their "
                f"`lang` label is not a configured language ({labels}; configured: {', '.join(self.languages)})")

    def check(self) -> None:
        """Warn about dropped documents; raise when a configured language kept none."""
        empty = [lang for lang in self.languages if not self.kept[lang]]
        if empty:
            raise LangadaptError(f"no document of {', '.join(empty)} in {self.where}"
                                 + (f": {self.dropped_note()}" if self.dropped else " (the files hold no documents)"),
                                 fix="correct the documents' `lang` field, or configure the languages they are in.")
        if self.dropped:
            log.warning("%s", self.dropped_note())


SLICE_CHARS = 1 << 16  # a text is tokenised in pieces of at most this many characters


def slices(text: str, size: int = SLICE_CHARS) -> Iterator[tuple[int, str]]:
    """(character offset, piece) of `text` in pieces of at most `size` characters, each cut just
    before a space, where a whitespace-splitting pre-tokenizer cuts anyway, so the pieces give the
    tokens the whole text gives (a text without spaces is cut at `size`)."""
    begin = 0
    while len(text) - begin > size:
        cut = text.rfind(" ", begin + 1, begin + size)
        cut = cut if cut > begin else begin + size
        yield begin, text[begin:cut]
        begin = cut
    yield begin, text[begin:]
