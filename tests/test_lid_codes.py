"""Language-ID labels meet configured codes: exact GlotLID labels, macrolanguages as equivalents."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from langadapt.corpus import curate as thin
from langadapt.corpus.config import CurationConfig
from langadapt.corpus.curation import curate
from langadapt.corpus.document import Document
from langadapt.corpus.lid import make_backend, model_label
from langadapt.languages import equivalent, macrolanguage, match, parse_label

# The issue's pairs: (macrolanguage, individual language) in FineWeb2's spelling of the latter.
PAIRS = [("swa_Latn", "swh_Latn"), ("msa_Latn", "zsm_Latn"), ("fas_Arab", "pes_Arab"), ("ara_Arab", "arb_Arab"),
         ("zho_Hans", "cmn_Hani"), ("est_Latn", "ekk_Latn"), ("lav_Latn", "lvs_Latn"), ("nep_Deva", "npi_Deva"),
         ("ori_Orya", "ory_Orya"), ("uzb_Latn", "uzn_Latn"), ("aze_Latn", "azj_Latn"), ("mon_Cyrl", "khk_Cyrl"),
         ("grn_Latn", "gug_Latn")]


@pytest.mark.parametrize(("macro", "member"), PAIRS)
def test_macrolanguage_and_individual_language_are_equivalent(macro, member):
    assert equivalent(macro, member) and equivalent(member, macro)
    assert macrolanguage(member).split("_")[0] == macro.split("_")[0]


def test_different_languages_stay_different():
    assert not equivalent("pes_Arab", "prs_Arab")  # two individual languages of Persian
    assert not equivalent("swh_Latn", "swh_Arab")  # same language, other script
    assert not equivalent("ces_Latn", "slk_Latn")
    assert macrolanguage("ces_Latn") is None


def test_labels_are_parsed_exactly():
    assert parse_label("__label__swh_Latn") == "swh_Latn"
    assert parse_label("__label__prs_Arab") == "prs_Arab"  # langcodes alone would say fas_Arab
    assert parse_label("__label__de") == "deu_Latn" and parse_label("sw") == "swa_Latn"


def test_a_macrolanguage_match_is_logged_with_both_codes(caplog):
    from langadapt.languages import _warn_equivalent

    _warn_equivalent.cache_clear()  # said once per process: an earlier test may have said it already
    with caplog.at_level(logging.WARNING, logger="langadapt"):
        assert match("swa_Latn", ["eng_Latn", "swh_Latn"]) == "swh_Latn"
    assert "swa_Latn is the macrolanguage of swh_Latn" in caplog.text
    with caplog.at_level(logging.WARNING, logger="langadapt"):
        assert match("zho_Hans", ["cmn_Hani"]) == "cmn_Hani"  # py3langid's `zh` and FineWeb2's Mandarin
    assert "zho_Hans is the macrolanguage of cmn_Hani" in caplog.text
    assert match("deu_Latn", ["eng_Latn", "swh_Latn"]) is None


def _docs(shared, path, lines_per_doc=6, limit=20) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return ["\n".join(lines[i : i + lines_per_doc]) for i in range(0, len(lines), lines_per_doc)][:limit]


def test_swahili_requested_as_swh_keeps_its_documents(tmp_path, shared):
    """py3langid says `sw` (the macrolanguage); FineWeb2 and the user say `swh_Latn`."""
    swahili = _docs(shared, shared("ntrex128", "newstest2019-ref.swa.txt"))
    german = _docs(shared, shared("ntrex128", "newstest2019-ref.deu.txt"), limit=10)
    rows = [{"id": f"swh-{i}", "text": t} for i, t in enumerate(swahili)]
    rows += [{"id": f"deu-{i}", "text": t} for i, t in enumerate(german)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    cfg = CurationConfig.model_validate({
        "output_dir": str(tmp_path / "out"), "languages": ["swh_Latn"],
        "inputs": [{"format": "jsonl", "path": str(tmp_path / "in.jsonl")}],
        "thresholds": {"published_dir": str(shared("fineweb2", "configs"))},
        "filters": {"enabled": []}, "dedup": {"exact": False, "minhash": False}, "rehydrate": {"enabled": False},
    })
    out = curate(cfg)
    with gzip.open(next((out / "output" / "swh_Latn").glob("*.jsonl.gz")), "rt", encoding="utf-8") as handle:
        kept = [json.loads(line) for line in handle]
    assert len(kept) >= 0.95 * len(swahili) and all(r["id"].startswith("swh") for r in kept)
    assert {r["metadata"]["language"] for r in kept} == {"swh_Latn"}
    assert {r["metadata"]["lid_label"] for r in kept} == {"swa_Latn"}  # what the model said, kept as provenance

    # the in-memory curation of the experiment checks Swahili too, instead of leaving it unchecked
    assert model_label("swh_Latn") == "sw"
    unchecked: set[str] = set()
    docs = [Document(f"s{i}", t, "swh_Latn") for i, t in enumerate(swahili)]
    kept_docs, removed = thin.language_id_filter(0.9, 20, unchecked)(docs)
    assert not unchecked and not removed and all(d.metadata["lid"]["label"] == "sw" for d in kept_docs)


def test_glotlid_style_labels_are_read_exactly_and_match_macrolanguages(tmp_path, shared):
    """A fastText model with GlotLID's label style (`__label__prs_Arab`), trained here on SIB-200."""
    import fasttext

    train, held = [], []
    for lang in ("swh_Latn", "prs_Arab", "pes_Arab", "zul_Latn"):
        for split, bucket in (("train", train), ("test", held)):
            rows = shared("sib200", lang, f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
            bucket += [(lang, row.split("\t")[2]) for row in rows]
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__{lang} {text}\n" for lang, text in train), encoding="utf-8")
    model = fasttext.train_supervised(str(data), lr=0.1, epoch=10, dim=16, minn=2, maxn=4, thread=1, seed=0,
                                      verbose=0)
    model.save_model(str(tmp_path / "glot.bin"))
    backend = make_backend("glotlid", tmp_path / "glot.bin")
    labels = {backend.predict(text)[0] for _, text in held}
    assert labels <= {"swh_Latn", "prs_Arab", "pes_Arab", "zul_Latn"}  # not rewritten (prs → fas)
    assert backend.knows("swa_Latn") and backend.knows("fas_Arab")  # a configured macrolanguage is checkable
    assert not backend.knows("deu_Latn")
