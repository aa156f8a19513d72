from collections import Counter

import pytest

from langadapt.corpus.config import CurateConfig
from langadapt.corpus.curate import curate, exact_dedup, near_dedup, split_heldout
from langadapt.corpus.document import Document
from langadapt.errors import LangadaptError

LANGS = ["ces_Latn", "pol_Latn", "hsb_Latn"]


def _copy(doc: Document, suffix: str, text: str | None = None) -> Document:
    return Document(id=doc.id + suffix, text=text if text is not None else doc.text, lang=doc.lang)


def test_heldout_is_the_same_content_in_every_language(sample_docs):
    train, heldout = split_heldout(sample_docs, 0.1, LANGS, seed=0)
    ids = {lang: {d.id for d in heldout if d.lang == lang} for lang in LANGS}
    assert ids["ces_Latn"] == ids["pol_Latn"] == ids["hsb_Latn"] and len(ids["ces_Latn"]) > 30
    assert not {d.id for d in train} & ids["ces_Latn"]


def test_injected_exact_and_near_duplicates_are_removed_and_counted(sample_docs):
    by_text = {d.text: d for d in sample_docs if d.lang == "hsb_Latn" and len(d.text) > 40}
    originals = list(by_text.values())[:50]
    exact = [_copy(d, "-copy") for d in originals]
    near = [_copy(d, "-near", d.text + ".") for d in originals]
    kept, removed = exact_dedup([_copy(d, "") for d in originals] + exact)
    assert {d.id for d in kept} == {d.id for d in originals}
    assert all(d.metadata["cluster_size"] == 2 for d in kept)
    kept, removed = near_dedup(0.8, 64, 5)(kept + near)
    assert len(removed) >= 0.95 * len(near)
    assert all(d.id.endswith("-near") for d, _ in removed)


def test_curate_writes_stats_and_removal_reasons(sample_docs, tmp_path):
    result = curate(CurateConfig(), sample_docs, LANGS, tmp_path, seed=0)
    stats = result.stats
    for lang in LANGS:
        removed = sum(step.get(lang, 0) for step in stats["removed"].values())
        assert stats["input"][lang] - removed == stats["kept"][lang] > 300
    assert stats["language_id_unchecked"] == ["hsb_Latn"]  # py3langid has no Upper Sorbian
    reasons = Counter(line.split('"step": "')[1].split('"')[0] for line in (tmp_path / "removed.jsonl").open())
    assert reasons["exact_dedup"] == sum(stats["removed"]["exact_dedup"].values())
    assert {p.name for p in tmp_path.iterdir()} == {"train.jsonl", "heldout.jsonl", "removed.jsonl", "stats.json"}


def test_language_id_removes_text_in_another_language(sample_docs, tmp_path):
    czech = [d for d in sample_docs if d.lang == "ces_Latn"]
    polish_labelled_czech = [Document(d.id, d.text, "pol_Latn") for d in czech]
    result = curate(CurateConfig(), czech + polish_labelled_czech, ["ces_Latn", "pol_Latn"], tmp_path, seed=0)
    long_enough = sum(len(d.text) >= 20 for d in czech)
    removed = result.stats["removed"]["language_id"]
    # Short UI strings are hard: the confident-mismatch rule catches a good share of the
    # mislabelled text while removing almost none of the correctly labelled text.
    assert removed["pol_Latn"] > 0.3 * long_enough
    assert removed.get("ces_Latn", 0) < 0.05 * long_enough


def test_empty_corpus_after_filtering_is_a_clear_error(sample_docs, tmp_path):
    with pytest.raises(LangadaptError, match="no training documents left for ces_Latn.*min_chars"):
        curate(CurateConfig(min_chars=10_000), sample_docs, LANGS, tmp_path, seed=0)
    assert not list(tmp_path.iterdir())
