"""Experiments beyond one run: config variables, sweeps over training jobs, text corpora,
adaptation mixtures, the sweep comparison, and where runs execute (local workers, Slurm)."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import ExperimentConfig
from langadapt.config_file import read_yaml
from langadapt.corpus.document import Document, read_lines
from langadapt.corpus.sources import read_text_corpus
from langadapt.errors import LangadaptError
from langadapt.experiment.adaptation import adaptation_documents
from langadapt.experiment.sweep import expand_runs
from langadapt.train.config import TrainJobConfig
from langadapt.train.job_data import within_budget


def test_config_variables_take_the_environment_or_their_default(tmp_path, monkeypatch):
    path = tmp_path / "exp.yaml"
    path.write_text("output_dir: ${LA_OUT:-fallback}\nname: ${LA_NAME}\n", encoding="utf-8")
    monkeypatch.setenv("LA_NAME", "study")
    assert read_yaml(path) == {"output_dir": "fallback", "name": "study"}
    monkeypatch.setenv("LA_OUT", "/data/out")
    assert read_yaml(path)["output_dir"] == "/data/out"
    monkeypatch.delenv("LA_NAME")
    with pytest.raises(LangadaptError, match=r"uses \$\{LA_NAME\} but that environment variable is not set"):
        read_yaml(path)


JOB = {"name": "j", "output_dir": "out",
       "data": {"sources": [{"name": "own", "format": "text", "files": ["a.txt"]},
                            {"name": "multi", "format": "text", "files": ["b.txt"]}]}}


def test_a_training_job_sweeps_list_items_with_named_values_and_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # every run's files must exist: paths are checked when a run's config is made
    for name in ("a", "b", "fao", "eng"):
        (tmp_path / f"{name}.txt").write_text("Text.\n", encoding="utf-8")
    runs = expand_runs({**JOB, "sweep": {
        "grid": {"data.sources.0.files": {"fao": ["fao.txt"], "eng": ["eng.txt"]},
                 "data.sources.1.max_bytes": [0, 1000]},
        "labels": {"data.sources.0.files": "language", "data.sources.1.max_bytes": "multi_bytes"}}})
    assert all(isinstance(run.config, TrainJobConfig) for run in runs)
    assert [run.config.name for run in runs] == ["language=fao-multi_bytes=0", "language=fao-multi_bytes=1000",
                                                 "language=eng-multi_bytes=0", "language=eng-multi_bytes=1000"]
    last = runs[-1].config
    assert [str(p) for p in last.data.sources[0].files] == ["eng.txt"] and last.data.sources[1].max_bytes == 1000
    assert runs[-1].values == {"language": "eng", "multi_bytes": "1000"}


def test_an_experiment_sweep_sets_whole_sections_and_shares_its_stage_cache():
    runs = expand_runs({"name": "mixing", "output_dir": "out", "sweep": {"grid": {"adapt.mix": {
        "mono": {}, "code": {"code": 1.0, "code_files": ["src/**/*.py"]}}}}})
    assert [r.config.name for r in runs] == ["mix=mono", "mix=code"]
    assert runs[1].config.adapt.mix.code == 1.0 and runs[0].config.adapt.mix.code == 0.0
    assert {str(r.config.stage_cache) for r in runs} == {"out/.stages"}


@pytest.mark.parametrize(("sweep", "pattern"), [
    ({"grid": {"data.sources.x.weight": [1]}}, r"'sources' is a list; the next part must be an index"),
    ({"grid": {"data.sources.5.weight": [1.0]}}, r"the list has only 2 item\(s\)"),
    ({"grid": {"data.sources.0.wieght": [1]}}, r"data.sources.0 has no key 'wieght'"),
    ({"grid": {"data.alpha": {}}}, r"needs a non-empty list"),
    ({"grid": {"data.alpha": [0.5]}, "labels": {"data.vocab_size": "v"}}, r"names `data.vocab_size`, which is not"),
])
def test_bad_job_sweeps_fail_before_any_computation(sweep, pattern):
    with pytest.raises(LangadaptError, match=pattern):
        expand_runs({**JOB, "sweep": sweep}, "job.yaml")


def test_text_corpora_give_translations_the_same_id(shared):
    files = {"eng_Latn": [shared("ntrex128", "newstest2019-src.eng.txt")],
             "fao_Latn": [shared("ntrex128", "newstest2019-ref.fao.txt")]}
    docs = list(read_text_corpus(files, ["eng_Latn", "fao_Latn"]))
    by_lang = {lang: {d.id: d.text for d in docs if d.lang == lang} for lang in files}
    english = shared("ntrex128", "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    assert set(by_lang["eng_Latn"]) == set(by_lang["fao_Latn"]) and len(by_lang["fao_Latn"]) == len(english)
    assert by_lang["eng_Latn"]["0:10"] == english[10].strip()
    with pytest.raises(LangadaptError, match="corpus.texts has no files for isl_Latn"):
        list(read_text_corpus(files, ["isl_Latn"]))


def test_lines_come_from_tsv_text_columns_and_bad_bytes_name_the_line(shared, tmp_path):
    sib = read_lines(shared("sib200", "fao_Latn", "test.tsv"))
    assert len(sib) == 204 and not any("\t" in line for line in sib)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("góð\nlína\n".encode() + b"\xff\xfe broken\n")
    with pytest.raises(LangadaptError) as err:
        read_lines(bad)
    assert f"{bad}, line 3" in err.value.message


def test_a_quoted_tsv_cell_is_read_as_its_text_not_its_quoting(tmp_path):
    """SIB-200 files are CSV-quoted: measured before, read_lines kept the quoting as part of the text
    (24 of Swahili's 701 training lines), so training and held-out text carried it."""
    path = tmp_path / "train.tsv"
    path.write_text('index_id\tcategory\ttext\n1\tscience\t"""Maji"" ni uhai."\n2\thealth\tHabari\n',
                    encoding="utf-8")
    assert read_lines(path) == ['"Maji" ni uhai.', "Habari"]


def test_a_byte_budget_keeps_documents_in_order_and_cuts_at_a_character(shared):
    lines = read_lines(shared("ntrex128", "newstest2019-ref.fao.txt"))
    docs = [Document(str(i), line, "fao_Latn") for i, line in enumerate(lines)]
    kept = within_budget(docs, 1000)
    size = sum(len(d.text.encode("utf-8")) for d in kept)
    assert 1000 - len(lines[len(kept)].encode()) < size <= 1000
    assert [d.text for d in kept[:-1]] == lines[: len(kept) - 1] and lines[len(kept) - 1].startswith(kept[-1].text)
    assert within_budget(docs, None) == docs


def test_adaptation_mixtures_pair_translations_by_id_and_read_code(shared):
    cfg = ExperimentConfig.model_validate({"languages": {"source": ["eng_Latn", "isl_Latn"], "target": "fao_Latn"},
                                           "adapt": {"mix": {"parallel": 1.0, "replay": 0.5, "code": 0.5,
                                                             "pairs_per_document": 2,
                                                             "code_files": ["src/langadapt/experiment/sweep.py"]}}})
    train = {"eng_Latn": {"1": "One.", "2": "Two.", "3": "Three."}, "isl_Latn": {"1": "Eitt."},
             "fao_Latn": {"2": "Tvey.", "3": "Trý.", "4": "Fýra."}}
    texts = {part: [doc.text for doc in docs] for part, docs in adaptation_documents(cfg, train).items()}
    assert texts["target"] == ["Tvey.", "Trý.", "Fýra."]
    assert texts["parallel"] == ["Two.\nTvey.\nThree.\nTrý."]  # id 4 has no English side
    assert sorted(texts["replay"]) == ["Eitt.", "One.", "Three.", "Two."]
    assert texts["code"][0].startswith('"""Sweeps:')


@pytest.fixture(scope="module")
def job_sweep(tmp_path_factory, shared):
    """Two tiny from-scratch runs over two own-data budgets, computed by two local workers."""
    folder = tmp_path_factory.mktemp("sweep")
    own = shared("ntrex128", "newstest2019-ref.fao.txt")
    multi = shared("ntrex128", "newstest2019-ref.isl.txt")
    heldout = folder / "heldout.txt"
    heldout.write_text("\n".join(read_lines(shared("sib200", "fao_Latn", "test.tsv"))[:20]), encoding="utf-8")
    config = folder / "job.yaml"
    config.write_text(f"""
name: budget
output_dir: {folder}/runs
model: {{n_layer: 2, n_embd: 32, n_head: 2, block_size: 32}}
data:
  vocab_size: 300
  alpha: 1.0
  sources:
    - {{name: own, format: text, files: ["{own}"]}}
    - {{name: multi, format: text, files: ["{multi}"], max_bytes: 3000}}
  eval_files: {{fao_Latn: "{heldout}"}}
train: {{steps: 4, batch_size: 4, eval_every: 4, checkpoint_every: 2, warmup_steps: 1}}
sweep:
  grid:
    data.sources.0.max_bytes: [3000, 6000]
  labels:
    data.sources.0.max_bytes: own_bytes
""", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(config), "--workers", "2"])
    assert result.exit_code == 0, result.output
    return config, folder / "runs" / "budget", result.output


def test_a_job_sweep_records_its_data_and_compares_its_runs(job_sweep):
    _, summary, output = job_sweep
    results = pd.read_parquet(summary / "results.parquet")
    sizes = results[(results.metric == "train_bytes") & (results.language == "own")].set_index("own_bytes").value
    assert 2800 < sizes["3000"] <= 3000 and 5800 < sizes["6000"] <= 6000
    bpb = results[results.metric == "bpb"]
    assert set(bpb.own_bytes) == {"3000", "6000"} and bpb.language.unique().tolist() == ["fao_Latn"]
    for name in ("own_bytes=3000", "own_bytes=6000"):
        run = pd.read_parquet(summary / name / "results.parquet")
        assert run[run.metric == "bpb"].value.item() == bpb[bpb.own_bytes == name.split("=")[1]].value.item()
        assert (summary / name / "manifest.json").is_file() and (summary / name / "final" / "config.json").is_file()
    assert (summary / "report" / "bpb-vs-own_bytes.png").is_file()
    assert "| own_bytes | fao_Latn |" in (summary / "report" / "tables.md").read_text(encoding="utf-8")


def test_a_finished_sweep_is_reused_and_a_changed_one_refused(job_sweep):
    config, summary, _ = job_sweep
    before = pd.read_parquet(summary / "results.parquet")
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0 and result.output.count("reuse (already") == 2
    pd.testing.assert_frame_equal(pd.read_parquet(summary / "results.parquet"), before)
    changed = config.with_name("changed.yaml")
    changed.write_text(config.read_text(encoding="utf-8").replace("steps: 4", "steps: 5"), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(changed)])
    assert result.exit_code == 2 and "holds a run of a different config" in " ".join(result.output.split())


def test_slurm_submission_is_one_job_array(job_sweep, tmp_path, monkeypatch):
    """`sbatch` here is a stand-in that records the script submitit writes, and `srun` one that
    only exists (there is no Slurm); submitit itself is real."""
    config, _, _ = job_sweep
    sbatch, srun = tmp_path / "bin" / "sbatch", tmp_path / "bin" / "srun"
    sbatch.parent.mkdir()
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    srun.write_text("#!/bin/sh\nexit 1\n")
    for tool in (sbatch, srun):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{sbatch.parent}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(app, ["run", str(config), "--overwrite", "--slurm", "cpu", "--slurm-time", "30"])
    assert result.exit_code == 0, result.output
    assert "Submitted 2 Slurm job(s): 4242_0, 4242_1" in " ".join(result.output.split())
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --partition=cpu", "#SBATCH --time=30", "#SBATCH --cpus-per-task=4"):
        assert line in script
    assert "submitit.core._submit" in script
