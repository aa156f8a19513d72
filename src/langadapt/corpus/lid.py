"""Language identification with an offline model that ships inside a pip package (py3langid).

Short catalog strings are hard to identify, so the check only removes a document when the
model is confident it is in a *different* language; languages the model does not know are
reported as unchecked rather than silently filtered. A model label counts for a configured language
when `languages.equivalent` says so: itself, or its macrolanguage or one of its individual languages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path

from langadapt.errors import LangadaptError
from langadapt.languages import equivalent, parse_label
from langadapt.registry import LID_BACKENDS


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_label(labels: list[str], lang: str) -> str | None:
    """The label among a model's `labels` that stands for `lang` (its own code first, else a
    macrolanguage equivalent), or None if the model cannot predict the language."""
    codes = [parse_label(label) for label in labels]
    exact = [label for label, code in zip(labels, codes, strict=True) if code == lang]
    return next(iter(exact), None) or next(
        (label for label, code in zip(labels, codes, strict=True) if equivalent(code, lang)), None)


@cache
def model_label(lang: str) -> str | None:
    """The py3langid label for a `xxx_Scrp` code, or None if the model does not know it."""
    return known_label(list(_identifier().labels), lang)


def identify(text: str) -> tuple[str, float]:
    """The most likely label and its probability."""
    label, prob = _identifier().classify(text)
    return label, float(prob)


# ---------------------------------------------------------------------------------------------
# Backends for the datatrove pipeline: one registry, one interface, labels as `xxx_Scrp` codes.


class LidBackend(ABC):
    """Predicts a document's language (`xxx_Scrp`) and the model's score for it."""

    @abstractmethod
    def predict(self, text: str) -> tuple[str, float]: ...

    @abstractmethod
    def knows(self, lang: str) -> bool:
        """Whether the model can predict `lang` at all (otherwise documents of it go unchecked)."""


def make_backend(name: str, model_path: Path | None = None) -> LidBackend:
    if name not in LID_BACKENDS:
        raise LangadaptError(f"unknown language-ID backend {name!r}", fix=f"choose one of: {', '.join(LID_BACKENDS)}.")
    return LID_BACKENDS[name](model_path)


class Py3LangId(LidBackend):
    """The default: 97 languages, its model ships inside the pip package, so it works offline."""

    def __init__(self, model_path: Path | None = None):
        if model_path is not None:
            raise LangadaptError("the py3langid backend ships its own model and takes no model_path",
                                 fix="remove `lid.model_path`, or set `lid.backend: fasttext`.")

    def predict(self, text: str) -> tuple[str, float]:
        label, prob = identify(text.replace("\n", " "))
        return parse_label(label), prob

    def knows(self, lang: str) -> bool:
        return model_label(lang) is not None


class FastTextLid(LidBackend):
    """Any fastText classifier from a local file: GlotLID (`__label__deu_Latn`) or lid.176 (`__label__de`).

    datatrove's own LanguageFilter downloads its model at run time; this reads a path instead.
    """

    def __init__(self, model_path: Path | None = None):
        if model_path is None or not Path(model_path).is_file():
            raise LangadaptError(f"fastText language-ID model not found: {model_path}",
                                 fix="set `lid.model_path` to a local .bin file, such as GlotLID's model_v3.bin.")
        self.model_path = Path(model_path)
        self._model = None
        self._knows: dict[str, bool] = {}

    @property
    def model(self):
        if self._model is None:  # loaded lazily, so the block pickles cheaply to worker processes
            from fasttext.FastText import _FastText

            self._model = _FastText(str(self.model_path))
        return self._model

    def predict(self, text: str) -> tuple[str, float]:
        labels, scores = self.model.predict(text.replace("\n", " "), k=1)
        return parse_label(labels[0]), min(float(scores[0]), 1.0)

    def knows(self, lang: str) -> bool:
        if lang not in self._knows:
            self._knows[lang] = known_label(self.model.get_labels(), lang) is not None
        return self._knows[lang]
