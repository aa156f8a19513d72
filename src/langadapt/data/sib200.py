"""SIB-200: the FLORES sentences with a topic label, `<folder>/<language>/{train,dev,test}.tsv`
with the columns index_id, category and text. One reader for the probe, the classifiers and the
translation pairs (the files are CSV-quoted TSV, read by corpus.document.read_tsv)."""

from __future__ import annotations

from pathlib import Path

from langadapt.corpus.document import read_tsv
from langadapt.errors import LangadaptError


def split_file(folder: Path, language: str, split: str) -> Path:
    """Where one split of one language lies in a SIB-200/FLORES folder."""
    return Path(folder) / language / f"{split}.tsv"


def read_split(folder: Path, language: str, split: str, columns: tuple[str, ...] = ("category", "text")
               ) -> list[dict[str, str]]:
    """The rows of one split as {column: cell}, in file order; a language or split the folder lacks,
    or a header without `columns`, is an error naming the file and the fix."""
    folder = Path(folder)
    path = split_file(folder, language, split)
    if not path.is_file():
        known = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        close = [name for name in known if name.split("_")[0] == language.split("_")[0]] or known[:6]
        raise LangadaptError(f"language {language!r} has no SIB-200 {split} split", where=str(path),
                             fix=f"name a language folder of {folder} (e.g. {', '.join(close) or 'none found'}), or "
                                 "point at a SIB-200 folder (<lang>/{train,dev,test}.tsv).")
    return read_tsv(path, columns)


def read_topics(folder: Path, language: str, split: str) -> tuple[list[str], list[str]]:
    """(texts, topic labels) of one SIB-200 split (`<folder>/<language>/<split>.tsv`); a row without
    a label is an error naming its line."""
    rows = read_split(folder, language, split)
    for number, row in enumerate(rows, start=2):
        if not row.get("category"):
            raise LangadaptError("a text has no label (empty `category`)",
                                 where=f"{Path(folder) / language / f'{split}.tsv'}, line {number}",
                                 fix="give every row its topic, or remove the row.")
    return [row.get("text", "") for row in rows], [row["category"] for row in rows]
