"""Language identification with an offline model that ships inside a pip package (py3langid).

Short catalog strings are hard to identify, so the check only removes a document when the
model is confident it is in a *different* language; languages the model does not know are
reported as unchecked rather than silently filtered.
"""

from __future__ import annotations

from functools import cache

import langcodes


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def model_label(lang: str) -> str | None:
    """The py3langid label for a `xxx_Scrp` code, or None if the model does not know it."""
    labels = set(_identifier().labels)
    alpha3 = lang.split("_")[0]
    candidates = [alpha3, langcodes.Language.get(alpha3).language]
    return next((label for label in candidates if label in labels), None)


def identify(text: str) -> tuple[str, float]:
    """The most likely label and its probability."""
    label, prob = _identifier().classify(text)
    return label, float(prob)
