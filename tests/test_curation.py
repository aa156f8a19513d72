"""The datatrove curation pipeline on real text: language ID, junk, duplicates, provenance, executors."""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import dill
import pytest
from datatrove.executor import LocalPipelineExecutor
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.corpus.blocks import Rehydrate
from langadapt.corpus.config import CurationConfig
from langadapt.corpus.curation import curate
from langadapt.corpus.lid import make_backend
from langadapt.corpus.readers import make_reader
from langadapt.errors import LangadaptError

LANGS = {"ces_Latn": "newstest2019-ref.ces.txt", "pol_Latn": "newstest2019-ref.pol.txt",
         "eng_Latn": "newstest2019-src.eng.txt"}
JUNK = {
    "junk-spam": "Buy cheap watches now! Best prices online today.\n" * 30,
    "junk-lorem": "\n".join(["Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."] * 3
                            + [f"Ut enim ad minim veniam, quis nostrud exercitation number {i}." for i in range(6)]),
    "junk-symbols": "\n".join(" ".join(f"#{i * j:04x} || {j * 7}% => $$" for j in range(12)) for i in range(8)),
    "junk-short": "Ahoj.",
}


def _read(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("**/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle]
    return rows


def _perturb(text: str, rng: random.Random) -> str:
    """A near-duplicate: two words dropped from different lines (as a re-crawl with small edits)."""
    lines = text.split("\n")
    for index in rng.sample(range(len(lines)), 2):
        words = lines[index].split()
        del words[rng.randrange(len(words))]
        lines[index] = " ".join(words)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, shared):
    """Unlabelled JSONL of news documents in three languages (labels kept aside), with injected
    near-duplicates, exact duplicates and junk, plus one malformed line."""
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("mixed")
    docs, labels = [], {}
    for lang, name in LANGS.items():
        lines = shared("ntrex128", name).read_text(encoding="utf-8").splitlines()[:200]
        for i in range(0, 200, 8):
            doc_id = f"{lang}-{i}"
            docs.append({"id": doc_id, "text": "\n".join(lines[i : i + 8]), "url": f"https://example.org/{doc_id}"})
            labels[doc_id] = lang
    originals = rng.sample(docs, 12)
    duplicates = {}
    for k, doc in enumerate(originals):
        copy_id = f"{'near' if k % 2 else 'exact'}-{doc['id']}"
        text = _perturb(doc["text"], rng) if k % 2 else doc["text"].replace(" ", "  ")
        duplicates[copy_id] = doc["id"]
        labels[copy_id] = labels[doc["id"]]
        docs.append({"id": copy_id, "text": text})
    # a cluster of two near-duplicates that each have an exact copy: four documents in all
    base = next(doc for doc in docs if doc not in originals and doc["id"].startswith("ces"))
    near = _perturb(base["text"], random.Random(1))
    quad = {"exact4-" + base["id"]: base["text"].replace(" ", "  "), "near4-" + base["id"]: near,
            "exact4-near4-" + base["id"]: near.replace(" ", "  ")}
    docs += [{"id": doc_id, "text": text} for doc_id, text in quad.items()]
    labels.update(dict.fromkeys(quad, labels[base["id"]]))
    duplicates["cluster-of-4"] = [base["id"], *quad]
    docs += [{"id": doc_id, "text": text} for doc_id, text in JUNK.items()]
    # junk in a target language, which language ID keeps and the quality filters must catch; made of
    # documents outside the duplicate clusters (dedup runs first, FineWeb2's order: junk that near-
    # duplicates a page can be its cluster's survivor, and then the filters remove the whole cluster)
    ces, pol, eng = (next(d["text"] for d in reversed(docs) if d["id"].startswith(lang) and d not in originals)
                     for lang in LANGS)
    docs += [{"id": "junk-repeated-lines", "text": ces + ("\n" + ces.split("\n")[0]) * 12},
             {"id": "junk-lorem-line", "text": pol + "\nLorem ipsum dolor sit amet, consectetur adipiscing."},
             {"id": "junk-word-list", "text": "\n".join(dict.fromkeys(eng.split()))}]  # a menu-like list
    rng.shuffle(docs)
    path = folder / "web.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs) + "{not json\n",
                    encoding="utf-8")
    eng_reference = folder / "eng_reference.txt"
    eng_reference.write_text("\n".join(
        line.split("\t")[2] for line in shared("sib200", "eng_Latn", "train.tsv").read_text().splitlines()[1:]))
    cfg = CurationConfig.model_validate({
        "name": "mixed", "output_dir": str(folder / "out"), "languages": list(LANGS),
        "inputs": [{"format": "jsonl", "path": str(path), "on_error": "skip"}],
        "thresholds": {"published_dir": str(shared("fineweb2", "configs")),
                       "reference": {"eng_Latn": [str(eng_reference)]}},
        "filters": {"enabled": ["gopher_repetition", "fineweb_quality", "gopher_quality", "c4"]},  # c4: opt-in
    })
    out = curate(cfg)
    return cfg, out, labels, duplicates


def test_language_id_is_accurate_and_junk_is_removed(mixed):
    _, out, labels, _ = mixed
    kept = [row for row in _read(out / "output") if "#copy" not in row["id"]]
    assert len(kept) >= 0.7 * len(LANGS) * 25, "most clean news documents survive"
    correct = [row["metadata"]["language"] == labels[row["id"]] for row in kept]
    assert sum(correct) / len(correct) >= 0.95
    assert all(0 <= row["metadata"]["language_score"] <= 1 for row in kept)
    assert not [row["id"] for row in kept if row["id"].startswith("junk-")]
    assert {row["metadata"]["source"] for row in kept} == {"jsonl"}
    assert all(row["metadata"]["url"].endswith(row["id"]) for row in kept if row["id"][:4] not in ("near", "exac"))


def test_injected_duplicates_are_found_and_counted_on_the_survivor(mixed):
    _, out, _, duplicates = mixed
    rows = _read(out / "output")
    survivors = {row["id"]: row for row in rows if "#copy" not in row["id"]}
    pairs = [(copy, original) for copy, original in duplicates.items() if isinstance(original, str)
             and (copy in survivors or original in survivors)]  # pairs the quality filters left alone
    assert len(pairs) >= 8
    found = [not (copy in survivors and original in survivors) for copy, original in pairs]
    assert sum(found) / len(found) >= 0.95
    for copy, original in pairs:
        survivor = survivors.get(original) or survivors.get(copy)
        assert survivor["metadata"]["cluster_size"] >= 2
        copies = [row for row in rows if row["id"].split("#")[0] == survivor["id"]]
        assert len(copies) == survivor["metadata"]["rehydration_copies"] == 2  # FineWeb2: size 2 → 2 copies


def test_cluster_size_counts_the_exact_copies_of_every_near_duplicate(mixed):
    _, out, _, duplicates = mixed
    members = duplicates["cluster-of-4"]
    survivors = [row for row in _read(out / "output") if row["id"] in members]
    assert len(survivors) == 1 and survivors[0]["metadata"]["cluster_size"] == 4


def test_every_removal_is_recorded_with_reason_and_value(mixed):
    _, out, _, _ = mixed
    removed = {folder.name: _read(folder) for folder in (out / "removed").iterdir()}
    assert {"language_id", "exact_dedup", "minhash_dedup"} <= set(removed)
    by_id = {row["id"]: (name, row["metadata"]) for name, rows in removed.items() for row in rows}
    assert by_id["junk-repeated-lines"][0] == "gopher_repetition"
    assert by_id["junk-repeated-lines"][1]["filter_value"] > 0.3  # the duplicate-line fraction it crossed
    assert by_id["junk-lorem-line"][0] == "c4" and by_id["junk-word-list"][0] == "fineweb_quality"
    for name, metadata in by_id.values():  # every removal says why; the filters also say by how much
        assert metadata.get("filter_reason") or name.endswith("dedup")
        assert name.endswith("dedup") or "filter_value" in metadata
    stats = json.loads((out / "stats.json").read_text())
    assert stats["skipped_input_lines"] == 1  # the malformed line, counted
    assert sum(sum(per.values()) for per in stats["removed"].values()) == sum(map(len, removed.values()))
    table = (out / "removal_table.md").read_text()
    assert all(f"| {lang} |" in table for lang in LANGS)
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert thresholds["eng_Latn"]["source"] == "derived" and thresholds["ces_Latn"]["source"] == "published"


def test_a_rerun_resumes_without_duplicating_output(mixed):
    cfg, out, _, _ = mixed
    before = sorted(row["id"] for row in _read(out / "output"))
    (out / "logs" / "filter" / "completions" / "00000").unlink()  # as if killed before the last task ended
    curate(cfg)
    assert sorted(row["id"] for row in _read(out / "output")) == before


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": 1, "text": "fine"}\n{"id": 2, "text": "broken"\n')
    spec = CurationConfig.model_validate({"languages": ["ces_Latn"], "inputs": [
        {"format": "jsonl", "path": str(path)}]}).inputs[0]
    with pytest.raises(LangadaptError, match=r"bad.jsonl, line 2: malformed JSON"):
        list(make_reader(spec).run())
    path.write_bytes(b'{"id": 1, "text": "fine"}\n{"id": 2, "text": "\xff\xfe"}\n{"id": 3, "text": "  "}\n')
    reader = make_reader(spec.model_copy(update={"on_error": "skip"}))
    assert [doc.id for doc in reader.run()] == [1]
    assert reader.stats.stats["skipped_lines"].total == 1 and reader.stats.stats["empty_documents"].total == 1


def test_text_parquet_and_datasets_readers_yield_documents(tmp_path, shared):
    import datasets
    import pandas as pd

    lines = shared("ntrex128", "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()[:6]
    (tmp_path / "txt" / "sub").mkdir(parents=True)
    for i, line in enumerate(lines[:3]):
        (tmp_path / "txt" / "sub" / f"{i}.txt").write_text(line, encoding="utf-8")
    pd.DataFrame({"id": ["a", "b"], "text": lines[3:5], "date": ["2019", "2020"]}).to_parquet(tmp_path / "x.parquet")
    datasets.Dataset.from_dict({"text": lines, "url": ["u"] * 6}).save_to_disk(str(tmp_path / "hf"))
    base = {"languages": ["ces_Latn"]}
    specs = CurationConfig.model_validate({**base, "inputs": [
        {"format": "text", "path": str(tmp_path / "txt")}, {"format": "parquet", "path": str(tmp_path / "x.parquet")},
        {"format": "hf", "path": str(tmp_path / "hf"), "name": "news"}]}).inputs
    text, parquet, hf = ([doc for doc in make_reader(spec).run()] for spec in specs)
    assert sorted(doc.text for doc in text) == sorted(lines[:3]) and text[0].id.startswith("sub/")
    assert [d.metadata["date"] for d in parquet] == ["2019", "2020"]
    assert [d.text for d in hf] == lines and hf[0].metadata == {"url": "u", "source": "news"}


def test_fasttext_backend_reads_a_local_model(tmp_path, shared):
    """A fastText classifier trained here on SIB-200 serves as the language-ID backend by path."""
    import fasttext

    train, held = [], []
    for lang in ("ces_Latn", "pol_Latn", "eng_Latn"):
        for split, bucket in (("train", train), ("test", held)):
            rows = shared("sib200", lang, f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
            bucket += [(lang, row.split("\t")[2]) for row in rows]
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__{lang} {text}\n" for lang, text in train), encoding="utf-8")
    model = fasttext.train_supervised(str(data), lr=0.05, epoch=15, dim=16, minn=2, maxn=4, thread=1, seed=0,
                                      verbose=0)
    model.save_model(str(tmp_path / "lid.bin"))
    backend = make_backend("fasttext", tmp_path / "lid.bin")
    assert backend.knows("pol_Latn") and not backend.knows("hsb_Latn")
    predictions = [backend.predict(text) for _, text in held]
    accuracy = sum(label == lang for (lang, _), (label, _) in zip(held, predictions, strict=True)) / len(held)
    assert accuracy >= 0.9 and all(0 < score <= 1 for _, score in predictions)
    with pytest.raises(LangadaptError, match="model not found"):
        make_backend("glotlid", tmp_path / "missing.bin")


def test_rehydration_follows_fineweb2_weights():
    from datatrove.data import Document

    block = Rehydrate([(1, 1), (2, 2), (3, 3), (5, 5), (100, 8), (1000, 1)])

    sizes = [1, 2, 3, 4, 5, 99, 100, 999, 1000, 5000]
    copies = [block.copies(Document(text="x", id="i", metadata={"cluster_size": s})) for s in sizes]
    assert copies == [1, 2, 3, 3, 5, 5, 8, 8, 1, 1]
    by_quality = Rehydrate([(1, 1), (5, 4)], quality_key="quality")
    assert by_quality.copies(Document(text="x", id="i", metadata={"cluster_size": 6, "quality": 0.5})) == 2


def test_empty_input_is_a_clear_error(tmp_path, shared):
    from langadapt.config import parse_config

    def config(text: str) -> dict:
        (tmp_path / "in.jsonl").write_text(text, encoding="utf-8")
        return {"output_dir": str(tmp_path / "out"), "languages": ["ces_Latn"],
                "inputs": [{"format": "jsonl", "path": str(tmp_path / "in.jsonl")}],
                "thresholds": {"published_dir": str(shared("fineweb2", "configs"))}, "dedup": {"minhash": False}}

    with pytest.raises(LangadaptError, match=r"`inputs.0` .*the file .*in.jsonl is empty"):  # refused at load time
        parse_config(config(""), schema=CurationConfig)
    with pytest.raises(LangadaptError, match="yielded no documents"):  # blank lines only: found while curating
        curate(CurationConfig.model_validate(config("\n\n")))


def test_example_config_is_valid_and_bad_keys_are_named(tmp_path, monkeypatch, shared):
    from langadapt.config import load_curation_config

    example = Path(__file__).parents[1] / "examples" / "curate.yaml"
    monkeypatch.chdir(tmp_path)  # the example's relative paths, made real: inputs are checked at load time
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "web.jsonl").write_text(json.dumps({"id": "1", "text": "Dobry den."}) + "\n")
    shutil.copy(shared("ntrex128", "newstest2019-ref.ces.txt"), tmp_path / "data" / "hsb_clean.txt")
    shutil.copytree(shared("fineweb2", "configs"), tmp_path / "fineweb2" / "configs")
    cfg = load_curation_config(example, on_error="fail")
    assert cfg.languages == ["hsb_Latn", "ces_Latn"] and cfg.inputs[0].on_error == "fail"
    bad = tmp_path / "bad.yaml"
    bad.write_text(example.read_text().replace("gopher_repetition,", "gopher_repetiton,").replace("dedup:", "dedupe:"))
    with pytest.raises(LangadaptError, match=r"unknown filter 'gopher_repetiton'.*did you mean 'dedup'"):
        load_curation_config(bad)


def test_slurm_submission_scripts_from_one_config_key(tmp_path, shared):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(json.dumps({"id": "1", "text": "Dobrý den."}) + "\n", encoding="utf-8")
    config = tmp_path / "curate.yaml"
    config.write_text(json.dumps({
        "name": "hpc", "output_dir": str(tmp_path / "out"), "languages": ["ces_Latn"],
        "inputs": [{"format": "jsonl", "path": str(corpus)}],
        "thresholds": {"published_dir": str(shared("fineweb2", "configs"))},
        "executor": {"kind": "slurm", "tasks": 4, "partition": "cpu-long", "submit": False,
                     "venv_path": "/opt/venv/bin/activate"},
    }), encoding="utf-8")
    result = CliRunner().invoke(app, ["curate", str(config)])
    assert result.exit_code == 0, result.output
    logs = tmp_path / "out" / "hpc" / "logs"
    script = (logs / "lid" / "launch_script.slurm").read_text()
    assert "#SBATCH --partition=cpu-long" in script and "#SBATCH --array=0-3" in script
    assert "source /opt/venv/bin/activate" in script and f"launch_pickled_pipeline {logs}/lid/executor.pik" in script
    assert "#SBATCH --array=0-0" in (logs / "ces_Latn-minhash-3" / "launch_script.slurm").read_text()
    with open(logs / "lid" / "executor.pik", "rb") as handle:
        stage = dill.load(handle)
    assert stage.tasks == 4 and [type(step).__name__ for step in stage.pipeline][0] == "CheckedJsonlReader"
    # each job's pickled pipeline, every task, in the order the job dependencies give (here, without
    # Slurm): the last job writes the corpus artifact
    for name in ["lid", *(f"ces_Latn-{part}" for part in ("exact-1", "exact-2", "minhash-1", "minhash-2",
                                                            "minhash-3", "dedup")), "filter", "artifact"]:
        with open(logs / name / "executor.pik", "rb") as handle:
            job = dill.load(handle)
        LocalPipelineExecutor(job.pipeline, tasks=job.tasks, workers=1, logging_dir=job.logging_dir).run()
    assert {p.name for p in (tmp_path / "out" / "hpc").iterdir()} >= {"train.jsonl", "heldout.jsonl", "stats.json"}
    assert json.loads((tmp_path / "out" / "hpc" / "stats.json").read_text())["removed"]["ces_Latn"]


@pytest.mark.slow
def test_ray_executor_runs_the_same_pipeline(mixed, tmp_path):
    pytest.importorskip("ray", reason="the `ray` extra (pip install -e '.[ray]') is not installed")
    cfg, out, _, _ = mixed
    ray_cfg = cfg.model_copy(update={"name": "mixed-ray", "executor": cfg.executor.model_copy(update={"kind": "ray"})})
    ray_out = curate(ray_cfg)
    assert sorted(r["id"] for r in _read(ray_out / "output")) == sorted(r["id"] for r in _read(out / "output"))
