"""Per-language thresholds: FineWeb2's published files, derivation from reference text, word splitting."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from langadapt.corpus.lid import Py3LangId
from langadapt.corpus.thresholds import derive, load_published, metrics, reference_documents, resolve
from langadapt.corpus.words import word_tokenizer
from langadapt.errors import LangadaptError


def _ntrex(shared, code: str) -> list[str]:
    return shared("ntrex128", f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()


def test_published_thresholds_are_read_as_written(shared):
    folder = shared("fineweb2", "configs")
    raw = yaml.safe_load((folder / "ces_Latn.yml").read_text(encoding="utf-8"))
    th = load_published(folder, "ces_Latn")
    assert th.language_score == raw["language_score"] and th.dup_line_frac == raw["dup_line_frac"]
    assert th.dup_n_grams == tuple(tuple(pair) for pair in raw["dup_n_grams"])
    assert list(th.stopwords) == raw["stopwords"] and th.source == "published"
    assert load_published(folder, "xxx_Latn") is None


def test_derived_thresholds_keep_unseen_clean_text_of_the_language(shared):
    """Derived on one half of NTREX Czech, the bounds pass most documents of the other half."""
    docs = reference_documents(_ntrex(shared, "ces"), "ces_Latn")
    fit, held = docs[: len(docs) // 2], docs[len(docs) // 2 :]
    th = derive("ces_Latn", fit, Py3LangId())
    assert th.source == "derived" and 0.3 <= th.language_score <= 0.9
    tokenizer = word_tokenizer("ces_Latn")
    held_metrics = [metrics(doc, tokenizer.word_tokenize(doc)) for doc in held]
    bounds = {
        "dup_line_frac": lambda m: m["dup_line_frac"] <= th.dup_line_frac,
        **{f"dup_{n}_gram": (lambda m, n=n, v=v: m[f"dup_{n}_gram"] <= v) for n, v in th.dup_n_grams},
        **{f"top_{n}_gram": (lambda m, n=n, v=v: m[f"top_{n}_gram"] <= v) for n, v in th.top_n_grams},
        "min_avg_word_length": lambda m: m["avg_word_length"] >= th.min_avg_word_length,
        "max_avg_word_length": lambda m: m["avg_word_length"] <= th.max_avg_word_length,
        "alpha_words": lambda m: m["max_non_alpha_words_ratio"] >= th.max_non_alpha_words_ratio,
    }
    for name, keeps in bounds.items():  # a 5 % tail on the fit half stays a small tail on unseen text
        assert np.mean([not keeps(m) for m in held_metrics]) <= 0.15, name
    published = load_published(shared("fineweb2", "configs"), "ces_Latn")
    assert len(set(th.stopwords) & set(published.stopwords)) >= 5  # same frequent function words


def test_language_without_config_or_reference_is_a_clear_error(shared):
    with pytest.raises(LangadaptError, match="no filter thresholds for hsb_Latn") as err:
        resolve("hsb_Latn", shared("fineweb2", "configs") / "missing", None, None)
    assert "thresholds.reference.hsb_Latn" in err.value.message


def test_scripts_without_spaces_are_split_into_words(shared):
    for lang, code in (("tha_Thai", "tha"), ("cmn_Hani", "zho-CN"), ("zho_Hans", "zho-CN"), ("jpn_Jpan", "jpn"),
                       ("khm_Khmr", "khm")):
        sentence = _ntrex(shared, code)[0]
        words = word_tokenizer(lang).word_tokenize(sentence)
        assert len(words) >= 8, (lang, words[:5])  # not one "word" per space-free sentence
        assert "".join(words) == "".join(sentence.split())  # nothing lost or invented


def test_reference_text_that_is_missing_empty_or_another_language_is_named(tmp_path, shared):
    from langadapt.corpus.thresholds import read_reference

    with pytest.raises(LangadaptError, match=r"reference text not found: .*missing.txt"):
        read_reference("swh_Latn", [tmp_path / "missing.txt"], Py3LangId())
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(LangadaptError, match=r"reference text .*empty.txt is empty"):
        read_reference("swh_Latn", [tmp_path / "empty.txt"], Py3LangId())
    german = tmp_path / "german.txt"
    german.write_text("\n".join(_ntrex(shared, "deu")[:80]), encoding="utf-8")
    with pytest.raises(LangadaptError, match=r"german.txt is not swh_Latn: language ID finds it deu_Latn") as err:
        read_reference("swh_Latn", [german], Py3LangId())
    assert "thresholds.reference.swh_Latn" in err.value.message
    swahili = tmp_path / "swahili.txt"
    swahili.write_text("\n".join(_ntrex(shared, "swa")[:80]), encoding="utf-8")
    assert len(read_reference("swh_Latn", [swahili], Py3LangId())) == 80  # the macrolanguage label counts


def test_derived_thresholds_state_their_held_out_pass_rate(shared):
    docs = reference_documents(_ntrex(shared, "zul"), "zul_Latn")
    th = derive("zul_Latn", docs, Py3LangId(), pass_rate=0.99)
    assert all("held-out half passes" in note for key, note in th.notes.items() if key != "language_score")
    rates = [float(note.rsplit(" ", 1)[1]) for key, note in th.notes.items() if key != "language_score"]
    assert min(rates) >= 0.99  # every metric (and the stopword rule) reaches the stated rate on held-out text
