"""Shared fixtures: real text only (the sample corpus and ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared():
    """`shared("udhr")` is a path under ../shared/data; a missing path fails (not skips) the test."""

    def locate(*parts: str) -> Path:
        path = SHARED_DATA.joinpath(*parts)
        if not path.exists():
            pytest.fail(f"test data missing: {path} (the tests read ../shared/data beside the project root)")
        return path

    return locate


@pytest.fixture(scope="session")
def sample_docs():
    from langadapt.corpus.sources import read_sample

    return list(read_sample(["ces_Latn", "pol_Latn", "hsb_Latn"]))


@pytest.fixture(scope="session")
def tokenizers(sample_docs):
    """A source tokenizer (ces+pol), a target one (hsb) and the expansion of the first by the second."""
    from langadapt.vocab.expand import expand_bpe
    from langadapt.vocab.train import train_bpe

    source = train_bpe([d.text for d in sample_docs if d.lang != "hsb_Latn"], 800)
    target = train_bpe([d.text for d in sample_docs if d.lang == "hsb_Latn"], 600)
    return source, target, expand_bpe(source, target, 200)
