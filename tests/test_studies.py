"""YAML kinds and studies: each YAML says (or its sections show) whether it is an experiment, a
training job or a curation, and a sweep's runs may read a sibling run's folder.

What a user relies on: `langadapt run` takes a task job as it takes any training job; a file of
the wrong kind is refused naming the command that takes it; a study (pretrain once, fine-tune it
per seed) computes the pretraining first, here, in workers or on Slurm, and its report gives each
metric as mean ± sd over the seeds with n shown.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import parse_config
from langadapt.config_file import read_yaml
from langadapt.errors import LangadaptError
from langadapt.experiment.launch import waves
from langadapt.experiment.sweep import expand_runs
from langadapt.kinds import kind_of
from langadapt.train.config import TrainJobConfig

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result, " ".join(result.output.split())


@pytest.mark.parametrize(("data", "kind"), [
    ({"name": "x"}, "experiment"),  # every experiment key has a default
    ({"pretrain": {"steps": 3}}, "experiment"),
    ({"name": "j", "task": {}, "train": {}}, "train"),  # a task job: no `data:`
    ({"data": {}}, "train"),
    ({"languages": ["hsb"], "inputs": []}, "curate"),
    ({"kind": "train"}, "train"),
])
def test_a_yaml_kind_is_declared_or_read_from_its_sections(data, kind):
    assert kind_of(data, "x.yaml") == kind


def test_an_unknown_or_mixed_kind_is_refused_naming_the_file_and_the_fix():
    with pytest.raises(LangadaptError, match=r"x.yaml: unknown `kind: trian`; did you mean 'train'\?"):
        kind_of({"kind": "trian"}, "x.yaml")
    with pytest.raises(LangadaptError, match=r"different kinds of YAML: `pretrain` \(an experiment\); `task`, "
                                             r"`train` \(a training job\)"):
        kind_of({"pretrain": {}, "task": {}, "train": {}}, "x.yaml")
    with pytest.raises(LangadaptError, match=r"declares `kind: experiment`, but a `train` config is read here"):
        parse_config({"kind": "experiment", "name": "j"}, "x.yaml", TrainJobConfig)


def test_a_declared_kind_changes_nothing_in_the_config(shared):
    job = {"name": "j", "data": {"sources": [{"name": "t", "format": "text",
                                              "files": [str(shared("ntrex128", "newstest2019-ref.fao.txt"))]}]}}
    declared = parse_config({"kind": "train", **job}, "x.yaml", TrainJobConfig)
    assert declared.model_dump() == parse_config(job, "x.yaml", TrainJobConfig).model_dump()
    assert declared.kind == "train"


def test_run_dry_run_takes_a_task_job():
    """Measured before: rejected as an experiment ("unknown key `train`; did you mean 'pretrain'?")."""
    result, output = _run("run", "--dry-run", str(ROOT / "examples" / "classify-sib200.yaml"))
    assert result.exit_code == 0, output
    assert "runs/sib200-kin-run: compute" in output


@pytest.mark.parametrize(("command", "example", "expected"), [
    ("train", "quickstart.yaml", "this is an experiment YAML, and `langadapt train` takes a training job"),
    ("run", "curate.yaml", "this is a curation YAML, and `langadapt run` takes an experiment or a training job"),
    ("curate", "train-tiny.yaml", "this is a training job YAML, and `langadapt curate` takes a curation"),
])
def test_a_command_refuses_another_kind_naming_the_one_that_takes_it(command, example, expected):
    path = ROOT / "examples" / example
    result, output = _run(command, str(path))
    assert result.exit_code == 2 and expected in output
    assert {"train": "langadapt run", "run": "langadapt curate", "curate": "langadapt train"}[command] in output


@pytest.mark.parametrize("example", ["transfer.yaml", "pseudo-labels.yaml", "classify-sib200.yaml",
                                     "train-once-answer-all.yaml"])
def test_study_examples_dry_run(example):
    result, output = _run("run", "--dry-run", str(ROOT / "examples" / example))
    assert result.exit_code == 0 and "compute" in output, output


def test_the_maltese_study_dry_runs(tmp_path, monkeypatch, shared):
    """The fixtures hold no NTREX Maltese: any text stands in for it (nothing is computed)."""
    (tmp_path / "ntrex128").mkdir()
    (tmp_path / "ntrex128" / "newstest2019-ref.mlt.txt").write_bytes(shared("ntrex128",
                                                                            "newstest2019-ref.ces.txt").read_bytes())
    (tmp_path / "ud_maltese").symlink_to(shared("ud_maltese"))
    monkeypatch.setenv("LANGADAPT_DATA", str(tmp_path))
    result, output = _run("run", "--dry-run", str(ROOT / "examples" / "maltese.yaml"))
    assert result.exit_code == 0, output
    assert "pos-seed=0-bytes=50000-pretrain_steps=300: compute (after mlm-seed=0-bytes=50000-pretrain_steps=300)" \
        in output


# --- studies: runs that read a sibling's folder -----------------------------------------------

def _study(shared, folder: Path, lm_seeds: list[int] | None = None) -> dict:
    """Pretrain a tiny LM, then fine-tune a SIB-200 head from it per seed (the transfer study, tiny)."""
    lm = {"data": {"vocab_size": 300, "sources": [{"name": "t", "format": "text",
                                                    "files": [str(shared("ntrex128", "newstest2019-ref.kin.txt"))]}]},
          "train": {"steps": 3, "batch_size": 4, "warmup_steps": 1, "checkpoint_every": 0}}
    if lm_seeds:
        lm["sweep"] = {"grid": {"seed": lm_seeds}}
    return {"name": "study", "output_dir": str(folder),
            "model": {"arch": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 32},
            "runs": {
                "sib": {"init_from": "${runs.lm}/final",
                        "task": {"kind": "sequence", "data": str(shared("sib200")), "train_language": "kin_Latn",
                                 "test_languages": ["kin_Latn", "run_Latn"], "limit": 64, "max_tokens": 32},
                        "train": {"steps": 3, "batch_size": 4, "warmup_steps": 1, "checkpoint_every": 0},
                        "sweep": {"grid": {"seed": [0, 1]}}},
                "lm": lm}}


def test_a_run_reading_a_sibling_comes_after_it_once_per_sibling_run(shared, tmp_path):
    runs = expand_runs(_study(shared, tmp_path), "study.yaml")
    assert [run.config.name for run in runs] == ["lm", "sib-seed=0", "sib-seed=1"]
    assert runs[1].config.init_from == tmp_path / "study" / "lm" / "final"  # not written yet: checked later
    assert runs[1].needs == (tmp_path / "study" / "lm",) and runs[1].columns == {"group": "sib", "seed": "0"}
    assert [[run.config.name for run, _ in wave] for wave in waves([(run, "new") for run in runs])] == \
        [["lm"], ["sib-seed=0", "sib-seed=1"]]
    paired = expand_runs(_study(shared, tmp_path, lm_seeds=[0, 1]), "study.yaml")  # seed 1 reads the seed-1 LM
    assert [(run.config.name, [n.name for n in run.needs]) for run in paired][2:] == \
        [("sib-seed=0", ["lm-seed=0"]), ("sib-seed=1", ["lm-seed=1"])]


def test_what_a_run_reads_from_a_sibling_is_checked_before_it_starts(shared, tmp_path):
    _, run, _ = expand_runs(_study(shared, tmp_path), "study.yaml")
    (tmp_path / "study" / "lm" / "final").mkdir(parents=True)  # the sibling ran, but wrote no model
    (tmp_path / "study" / "lm" / "final" / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(LangadaptError, match=r"sweep run sib-seed=0: invalid config: `init_from`.*has no config.json"):
        run.ready()


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda d: d["runs"]["sib"].update(init_from="${runs.lmm}/final"),
     r"`runs.sib` reads \$\{runs.lmm\}, but there is no run 'lmm'.*name one of the runs: sib, lm"),
    (lambda d: d["runs"]["lm"]["data"].update(tokenizer="${runs.sib}/tokenizer.json"),
     r"the runs read each other in a cycle: sib → lm → sib"),
    (lambda d: d.update(sweep={"grid": {"seed": [0]}}), r"a top-level `sweep:` is ambiguous"),
    (lambda d: d["runs"]["lm"].update(sweep={"grid": {"seed": [5]}}), r"`runs.sib` pairs with no run of lm"),
    (lambda d: d.update(runs=None, init_from="${runs.lm}/final"), r"reads \$\{runs.lm\}, but it has no `runs:`"),
])
def test_unknown_siblings_cycles_and_unpaired_runs_fail_before_any_work(shared, tmp_path, change, pattern):
    data = _study(shared, tmp_path)
    change(data)
    if data.get("runs") is None:
        del data["runs"]
    with pytest.raises(LangadaptError, match=pattern):
        expand_runs(data, "study.yaml")


def test_a_study_pretrains_then_fine_tunes_per_seed_and_reports_mean_sd(shared, tmp_path):
    import yaml

    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(_study(shared, tmp_path / "runs")), encoding="utf-8")
    result, output = _run("run", str(config))
    assert result.exit_code == 0, output
    summary = tmp_path / "runs" / "study"
    for seed in (0, 1):
        job = pd.read_parquet(summary / f"sib-seed={seed}" / "results.parquet")
        assert set(job.init) == {"pretrained"} and set(job.seed) == {seed}
    results = pd.read_parquet(summary / "results.parquet")
    assert {"group", "seed"} <= set(results.columns) and set(results.group) == {"lm", "sib"}
    tables = (summary / "report" / "tables.md").read_text(encoding="utf-8")
    accuracy = tables[tables.index("## sib200_finetune_acc per run"):]
    row = next(line for line in accuracy.splitlines() if line.startswith("| sib |"))
    kin = results[(results.group == "sib") & (results.language == "kin_Latn") & (results.run == "final")].value
    assert f"{kin.mean():.3f} ± {kin.std():.3f} (n=2)" in row
    again, output = _run("run", str(config))
    assert again.exit_code == 0 and output.count("reuse (already finished)") == 3


def test_slurm_jobs_wait_for_the_runs_they_read(shared, tmp_path, monkeypatch):
    """A stand-in `sbatch` keeps each script submitit writes; submitit itself is real."""
    pytest.importorskip("submitit")
    import yaml

    sbatch, srun = tmp_path / "bin" / "sbatch", tmp_path / "bin" / "srun"
    sbatch.parent.mkdir()
    sbatch.write_text(f'#!/bin/sh\nn=$(ls {tmp_path}/script-* 2>/dev/null | wc -l)\ncp "$1" {tmp_path}/script-$n.sh\n'
                      f'echo "Submitted batch job 42$n"\n')
    srun.write_text("#!/bin/sh\nexit 1\n")
    for tool in (sbatch, srun):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{sbatch.parent}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(_study(shared, tmp_path / "runs")), encoding="utf-8")
    result, output = _run("run", str(config), "--slurm", "cpu")
    assert result.exit_code == 0, output
    assert "Submitted 3 Slurm job(s): 420, 421_0, 421_1" in output
    assert "--dependency" not in (tmp_path / "script-0.sh").read_text()
    assert "#SBATCH --dependency=afterok:420" in (tmp_path / "script-1.sh").read_text()


def test_a_comparison_reads_each_runs_final_figures_not_their_mean_over_training():
    """Canary figures logged at steps 40 and 80 of a 120-step run stay in results.parquet; the
    report compares the step-120 ones (measured before: the mean over all three steps)."""
    from langadapt.experiment.compare import final_rows

    rows = pd.DataFrame({"experiment": ["a"] * 4 + ["b"] * 2, "metric": ["canary_exposure"] * 3 + ["bpb", "x", "x"],
                         "value": [1.0, 2.0, 6.0, 3.0, 5.0, 7.0], "step": [40, 80, 120, None, 10, 20]})
    assert final_rows(rows).value.tolist() == [6.0, 3.0, 7.0]


def test_the_canary_study_reports_each_sets_final_metric_over_seeds(tmp_path):
    """examples/train-once-answer-all.yaml's `all` run, shrunk to 4 steps: its generated sets are
    scored at steps 2 and 4, and the report's cell is the mean ± sd of the seeds' step-4 figures."""
    import yaml

    study = read_yaml(ROOT / "examples" / "train-once-answer-all.yaml")  # ${LANGADAPT_DATA}: the fixture cuts
    study.update(output_dir=str(tmp_path), model={**study["model"], "n_layer": 1, "n_embd": 32, "block_size": 160},
                 data={**study["data"], "vocab_size": 300},
                 train={**study["train"], "steps": 4, "batch_size": 4, "eval_every": 2, "checkpoint_every": 0})
    canaries = study["runs"]["all"]["canaries"]
    for probe, steps in zip(canaries, ([1, 4], [2, 4], [3, 4]), strict=True):
        probe.update(step_range=steps, repeat=1)
        probe["generate"]["count"] = 2
    canaries[0]["alternatives"] = 10
    study["runs"] = {"all": {**study["runs"]["all"], "sweep": {"grid": {"seed": [0, 1]}}}}
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    result, output = _run("run", str(config))
    assert result.exit_code == 0, output
    summary = tmp_path / "train-once-answer-all"
    assert (summary / "all-seed=0" / "canaries" / "facts.tsv").is_file()
    results = pd.read_parquet(summary / "results.parquet")
    assert set(results[results.metric == "canary_exposure"].step) == {2, 4}  # every step kept here
    final = results[(results.metric == "canary_exposure") & (results.step == 4)].value
    tables = (summary / "report" / "tables.md").read_text(encoding="utf-8")
    section = tables[tables.index("## canary_exposure per run"):]
    assert f"{final.mean():.3f} ± {final.std():.3f} (n=2)" in section
