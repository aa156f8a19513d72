"""One corpus artifact: both curation engines write train.jsonl / heldout.jsonl of one Document
type, and training jobs and experiments read it back with its held-out split intact."""

from __future__ import annotations

import json

import pytest
import yaml

from langadapt.config import ExperimentConfig, load_config
from langadapt.corpus import curate as thin
from langadapt.corpus.config import CurationConfig
from langadapt.corpus.curation import curate, curate_documents
from langadapt.corpus.document import Document, read_corpus
from langadapt.errors import LangadaptError
from langadapt.train.config import TrainJobConfig

FILES = {"ces_Latn": "newstest2019-ref.ces.txt", "pol_Latn": "newstest2019-ref.pol.txt"}


@pytest.fixture(scope="module")
def datatrove_corpus(tmp_path_factory, shared):
    """The datatrove engine over NTREX news pages in two languages, one of them copied exactly."""
    folder = tmp_path_factory.mktemp("artifact")
    rows = []
    for lang, name in FILES.items():
        lines = shared("ntrex128", name).read_text(encoding="utf-8").splitlines()[:320]
        rows += [{"id": f"{lang}-{i}", "text": "\n".join(lines[i : i + 8])} for i in range(0, 320, 8)]
    rows.append({**rows[0], "id": "copy-of-first"})
    (folder / "web.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    cfg = CurationConfig.model_validate({
        "output_dir": str(folder), "languages": list(FILES), "heldout_fraction": 0.2,
        "inputs": [{"format": "jsonl", "path": str(folder / "web.jsonl")}],
        "thresholds": {"published_dir": str(shared("fineweb2", "configs"))}, "dedup": {"minhash": False},
    })
    return curate(cfg)


def test_both_engines_write_the_same_artifact(datatrove_corpus, sample_docs, tmp_path, shared):
    thin_out = tmp_path / "thin"
    thin.curate(ExperimentConfig().curate, sample_docs, ["ces_Latn", "pol_Latn", "hsb_Latn"], thin_out, 0)
    for folder in (datatrove_corpus, thin_out):
        train, held = list(read_corpus(folder, "train")), list(read_corpus(folder, "heldout"))
        assert train and held and all(isinstance(d, Document) for d in train + held)
        assert {d.lang for d in train} >= {"ces_Latn", "pol_Latn"}  # the language is a field, not metadata
        assert not {d.text for d in train} & {d.text for d in held}  # held-out text is never trained on
    rows = list(read_corpus(datatrove_corpus, "train"))
    assert all("language" not in d.metadata and d.metadata["cluster_size"] >= 1 for d in rows)
    assert any(d.metadata["cluster_size"] == 2 for d in rows)  # the exact copy, counted on its survivor
    signals = {"dup_line_frac", "top_2_gram", "dup_10_gram", "line_punct_thr", "avg_word_length",
               "max_non_alpha_words_ratio", "new_line_ratio"}
    assert all(signals <= set(d.metadata["quality"]) for d in rows)  # for ablations: the filters' metrics
    assert all(d.metadata["quality"]["line_punct_thr"] > 0.5 for d in rows)  # news lines end in "."
    held = list(read_corpus(datatrove_corpus, "heldout"))
    assert 0.1 <= len(held) / (len(held) + len({d.id.split("#")[0] for d in rows})) <= 0.3


def test_a_training_job_reads_a_curated_source(datatrove_corpus, tmp_path):
    from langadapt.train.job import run_train_job

    job = {"name": "curated", "output_dir": str(tmp_path / "runs"),
           "model": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32},
           "data": {"vocab_size": 400, "sources": [{"name": "news", "format": "curated",
                                                    "files": [str(datatrove_corpus)], "languages": ["pol_Latn"]}]},
           "train": {"steps": 3, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    final = run_train_job(load_config(tmp_path / "job.yaml", schema=TrainJobConfig))
    assert (final / "model.safetensors").is_file()
    manifest = json.loads((final.parent / "manifest.json").read_text())
    assert str(datatrove_corpus / "train.jsonl") in manifest["inputs"]


def test_an_experiment_reads_a_curated_corpus_with_its_held_out_split(datatrove_corpus, tmp_path):
    from langadapt.experiment.corpus_text import read_corpus as read_experiment_corpus

    cfg = ExperimentConfig.model_validate({
        "languages": {"source": ["ces_Latn"], "target": "pol_Latn"},
        "corpus": {"source": "curated", "files": [str(datatrove_corpus)]}})
    result = thin.curate(cfg.curate, read_experiment_corpus(cfg), cfg.languages.all, tmp_path / "corpus", cfg.seed)
    assert {d.id for d in result.heldout} == {d.id for d in read_corpus(datatrove_corpus, "heldout")}
    assert len(result.train) >= 0.9 * len(list(read_corpus(datatrove_corpus, "train")))


def test_a_folder_that_is_not_a_corpus_is_named(tmp_path):
    with pytest.raises(LangadaptError, match=f"{tmp_path} is not a curated corpus"):
        list(read_corpus(tmp_path))
    with pytest.raises(LangadaptError, match="must name one folder"):
        from langadapt.config import parse_config

        parse_config({"corpus": {"source": "curated"}})


def test_an_experiment_curates_with_the_datatrove_engine(tmp_path, shared):
    """`curate.engine: datatrove`: parallel held-out ids and decontamination as in the in-memory engine."""
    docs = []
    for lang, name in FILES.items():
        lines = shared("ntrex128", name).read_text(encoding="utf-8").splitlines()[:240]
        docs += [Document(f"news-{i}", "\n".join(lines[i : i + 8]), lang) for i in range(0, 240, 8)]
    cfg = ExperimentConfig.model_validate({
        "languages": {"source": ["ces_Latn"], "target": "pol_Latn"},
        "curate": {"engine": "datatrove", "heldout_fraction": 0.2, "datatrove": {
            "thresholds": {"published_dir": str(shared("fineweb2", "configs"))}, "dedup": {"minhash": False}}}})
    first = thin.split_heldout(docs, 0.2, cfg.languages.all, 0)[1][0]
    docs.append(Document("leak", first.text, first.lang))  # a training page that copies a held-out one
    train, heldout = thin.training_and_heldout(cfg.curate, docs, cfg.languages.all, cfg.seed)
    result = curate_documents(cfg.curate, train, heldout, cfg.languages.all, tmp_path)
    held_ids = {lang: {d.id for d in result.heldout if d.lang == lang} for lang in FILES}
    assert held_ids["ces_Latn"] == held_ids["pol_Latn"] and held_ids["ces_Latn"]  # parallel held-out text
    assert "leak" not in {d.id for d in result.train} and result.stats["decontaminated"] == {first.lang: 1}
    assert len(result.train) >= 0.8 * (len(docs) - len(result.heldout) - 1)
    assert all(d.metadata["language_score"] > 0.5 for d in result.train)  # datatrove's language ID ran
    assert {d.id for d in read_corpus(tmp_path, "heldout")} == {d.id for d in result.heldout}
