import json
import sys

import polib
import pytest

from langadapt.corpus.document import read_documents
from langadapt.corpus.sources import read_catalog, read_sample, sample_input_files, sample_locales
from langadapt.errors import LangadaptError


def test_sample_covers_many_languages_with_canonical_codes():
    locales = sample_locales()
    assert len(locales) >= 80
    assert {"hsb_Latn", "dsb_Latn", "ces_Latn", "pol_Latn", "eng_Latn"} <= set(locales)


def test_sample_is_parallel_by_msgid(sample_docs):
    ids = {lang: {d.id for d in sample_docs if d.lang == lang} for lang in ("ces_Latn", "pol_Latn", "hsb_Latn")}
    shared_ids = ids["ces_Latn"] & ids["pol_Latn"] & ids["hsb_Latn"]
    assert len(shared_ids) > 0.8 * min(len(v) for v in ids.values())
    assert all(d.text.strip() for d in sample_docs)


def test_fuzzy_obsolete_and_untranslated_entries_are_dropped(tmp_path):
    real = sample_input_files(["hsb_Latn"])[0]
    before = len(list(read_catalog(real, "test", "hsb_Latn")))
    catalog = polib.pofile(str(real))
    translated = [e for e in catalog if e.msgstr]
    translated[0].flags.append("fuzzy")
    translated[1].msgstr = ""
    translated[2].obsolete = True
    edited = tmp_path / "django.po"
    catalog.save(str(edited))
    texts = [d.text for d in read_catalog(edited, "test", "hsb_Latn")]
    assert len(texts) == before - 3
    assert translated[0].msgstr not in texts or translated[0].msgstr in {e.msgstr for e in translated[3:]}
    msgids = [d.text for d in read_catalog(edited, "test", "eng_Latn", msgids=True)]
    assert translated[1].msgid in msgids and translated[0].msgid not in msgids


def test_language_absent_from_sample_lists_the_choices():
    with pytest.raises(LangadaptError, match="not in the built-in sample corpus.*hsb_Latn"):
        list(read_sample(["hsb_Latn", "zul_Latn"]))


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "Dobry dźeń", "lang": "hsb"}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(LangadaptError, match=r"docs.jsonl, line 2: malformed JSON"):
        list(read_documents(path))


def test_wrong_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    first = json.dumps({"text": "x", "lang": "deu"}).encode()
    path.write_bytes(first + b"\n" + '{"text": "Gr\xfc\xdfe"}'.encode("latin-1"))
    with pytest.raises(LangadaptError, match=r"latin1.jsonl, line 2: invalid UTF-8.*iconv"):
        list(read_documents(path))


def test_missing_sample_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "polib", None)  # as if `langadapt[sample]` were not installed
    with pytest.raises(LangadaptError, match=r"extra 'sample' \(polib is not installed\).*langadapt\[sample\]"):
        list(read_sample(["hsb_Latn"]))
