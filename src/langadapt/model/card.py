"""`langadapt.json`: what a model folder is, written beside its weights.

A model folder alone does not say which vocabulary rows are new (their embeddings come from an
initialiser, not from pretraining), which base it descends from, or how it was trained. Later
commands need that: `langadapt train` with `init_from:` trains the new rows with every method,
a report names the base. So every folder langadapt writes carries this small card (litgpt's
checkpoint folders carry their config the same way), and every job's output carries it forward.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from langadapt.atomic import write_json
from langadapt.errors import LangadaptError

CARD = "langadapt.json"


@dataclass
class ModelCard:
    base: str | None = None  # the pretrained model it descends from (a path or a name); None: trained from scratch
    gguf_file: str | None = None  # the GGUF file inside `base` it was imported from
    eos_token: str | None = None  # the token that ends a document (vocab.tokenizer.end_of_text)
    new_ids: list[int] = field(default_factory=list)  # vocabulary rows added to the base's vocabulary
    languages: list[str] = field(default_factory=list)  # languages it was expanded or trained for
    method: str | None = None  # the adaptation method that produced these weights; None: not adapted
    initialiser: str | None = None  # how the new rows were initialised
    trained_from: str | None = None  # the folder the last training started from
    translation: dict | None = None  # translation training: {"template", "names", "directions"}, to prompt alike

    @property
    def first_new_id(self) -> int | None:
        return min(self.new_ids) if self.new_ids else None


def write_card(card: ModelCard, folder: Path) -> Path:
    return write_json(Path(folder) / CARD, asdict(card))


def read_card(folder: Path) -> ModelCard | None:
    """The card of a model folder; None when it has none (a folder langadapt did not write)."""
    path = Path(folder) / CARD
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LangadaptError(f"the model card is not valid JSON ({err})", where=str(path),
                             fix="delete it (the folder then counts as a plain base) or rewrite it.") from None
    known = {f.name for f in fields(ModelCard)}
    unknown = sorted(set(data) - known) if isinstance(data, dict) else ["(not a JSON object)"]
    if unknown:
        raise LangadaptError(f"the model card has unknown keys {', '.join(unknown)}", where=str(path),
                             fix=f"keep only {', '.join(sorted(known))}.")
    return ModelCard(**data)
