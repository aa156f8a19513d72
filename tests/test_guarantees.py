"""What langadapt guarantees (docs/guarantees.md), one test per class of fault:
nothing silently wrong, nothing lost. Each asserts what a user sees: the exit code, a one-paragraph
message naming the file or key and the fix (no traceback), the previous good state untouched."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import ExperimentConfig, load_config
from langadapt.corpus.config import CorpusConfig
from langadapt.corpus.document import read_lines
from langadapt.data.packing import pack
from langadapt.errors import LangadaptError
from langadapt.lock import hold, lock_path
from langadapt.train.config import TrainJobConfig
from langadapt.vocab.tokenizer import EOS

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}


def write_job(path: Path, output_dir: Path, **update) -> Path:
    job = {"name": "job", "output_dir": str(output_dir), "model": SHAPE,
           "data": {"vocab_size": 400, "sources": [{"name": "hsb", "format": "sample", "languages": ["hsb_Latn"]}]},
           "train": {"steps": 6, "batch_size": 4, "checkpoint_every": 3}}
    for key, value in update.items():
        section, _, leaf = key.partition("__")
        if leaf:
            job[section] = {**job[section], leaf: value}
        else:
            job[key] = value
    path.write_text(yaml.safe_dump(job, allow_unicode=True), encoding="utf-8")
    return path


def cli(*args: str):
    result = CliRunner().invoke(app, list(map(str, args)))
    unexpected = result.exception if not isinstance(result.exception, SystemExit | None) else None
    return result.exit_code, " ".join(result.output.split()) + (f" UNEXPECTED {unexpected!r}" if unexpected else "")


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def no_traceback(output: str) -> bool:
    return "Traceback" not in output and "File \"" not in output


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny job: (its YAML, its run folder, a digest of the folder)."""
    root = tmp_path_factory.mktemp("finished")
    config = write_job(root / "job.yaml", root / "runs")
    code, output = cli("train", config)
    assert code == 0, output
    run = root / "runs" / "job"
    return config, run, digest(run)


# 1. a rerun resumes exactly the same job or says what changed ---------------------------------------


def test_a_rerun_of_an_edited_job_is_refused_naming_the_changes_and_the_folder_is_untouched(finished, tmp_path):
    config, run, before = finished
    edited = write_job(tmp_path / "edited.yaml", run.parent, train__steps=9,
                       data={"vocab_size": 400, "sources": [{"name": "hsb", "format": "sample",
                                                             "languages": ["dsb_Latn"]}]})
    for command in (["train", edited], ["run", edited]):
        code, output = cli(*command)
        assert code == 2 and no_traceback(output), output
        assert "holds a run of a different config" in output
        assert "train.steps: 6 → 9" in output and 'data.sources.0.languages.0: "hsb_Latn" → "dsb_Latn"' in output
        assert "--overwrite" in output and "new `name` or `output_dir`" in output
    assert digest(run) == before  # config.json and manifest.json still describe the training that happened

    code, output = cli("train", config)  # the same job: nothing to do, nothing rewritten
    assert code == 0 and digest(run) == before, output
    code, output = cli("run", config)
    assert code == 0 and "reuse (already finished)" in output


def test_a_rerun_after_an_input_file_changed_is_refused_naming_the_file(tmp_path, sample_docs):
    data = tmp_path / "hsb.jsonl"
    data.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in sample_docs
                            if d.lang == "hsb_Latn"), encoding="utf-8")
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", data={"vocab_size": 400, "sources": [
        {"name": "hsb", "format": "jsonl", "files": [str(data)], "languages": ["hsb_Latn"]}]})
    assert cli("train", config)[0] == 0
    before = digest(tmp_path / "runs" / "job")
    data.write_text(data.read_text(encoding="utf-8").replace("a", "o"), encoding="utf-8")
    code, output = cli("train", config)
    assert code == 2 and f"{data}: contents changed" in output and no_traceback(output), output
    assert digest(tmp_path / "runs" / "job") == before


# 3. --overwrite replaces the old run only once the new one has finished ------------------------------


def test_overwrite_keeps_the_finished_job_when_the_new_one_fails_and_replaces_it_when_it_succeeds(tmp_path):
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs")
    assert cli("train", config)[0] == 0
    run = tmp_path / "runs" / "job"
    before = digest(run)
    broken = write_job(tmp_path / "broken.yaml", tmp_path / "runs", data={"vocab_size": 400, "sources": [
        {"name": "hsb", "format": "sample", "languages": ["hsb_Latn"], "max_bytes": 40}]})  # under one block
    for command in (["train", broken, "--overwrite"], ["run", broken, "--overwrite"]):
        code, output = cli(*command)
        assert code == 2 and "has only" in output and no_traceback(output), output
        assert digest(run) == before
        assert sorted(p.name for p in run.parent.iterdir()) == ["job"]  # no half-made folder, no lock left

    longer = write_job(tmp_path / "longer.yaml", tmp_path / "runs", train__steps=9)
    code, output = cli("run", longer, "--overwrite")
    assert code == 0, output
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 9
    assert len((run / "log.jsonl").read_text().splitlines()) == 9
    assert sorted(p.name for p in run.parent.iterdir()) == ["job"]


# 2. one process per run folder ------------------------------------------------------------------------


HOLDER = """
import sys, time
from langadapt.lock import hold
with hold(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_run_folder_held_by_another_process_is_refused_naming_its_pid_then_taken_over(tmp_path):
    """Two real processes (fast): one holds the folder as `langadapt train` does; `langadapt train`
    here stops, naming it; once the holder is killed (SIGKILL) the same command runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs")
    run = tmp_path / "runs" / "job"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        code, output = cli("train", config)
        assert code == 2 and no_traceback(output), output
        assert f"{run} is in use by another langadapt process (pid {holder.pid})" in output
        assert f"wait for process {holder.pid} to finish" in output and not run.exists()
    finally:
        holder.kill()
        holder.wait()
    code, output = cli("train", config)  # the dead holder's lock is taken over
    assert code == 0 and (run / "final" / "model.safetensors").is_file(), output


@pytest.mark.slow
def test_a_second_process_on_a_held_run_folder_stops_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    """Two real `langadapt train` processes on one folder: a subprocess holds it while this one runs
    the same command (most of a minute on 2 busy cores: two processes import torch)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", train__steps=100_000)
    run = tmp_path / "runs" / "job"
    first = subprocess.Popen([sys.executable, "-m", "langadapt.cli", "train", str(config)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (lock_path(run).is_file() and lock_path(run).read_text()):
            assert first.poll() is None, "the first process ended early"
            time.sleep(0.05)
        code, output = cli("train", config)
        assert first.poll() is None, "the first process ended before the second one checked the lock"
        assert code == 2 and f"in use by another langadapt process (pid {first.pid})" in output, output
        assert no_traceback(output)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert lock_path(run).read_text().strip() == str(first.pid)  # the dead holder's lock file stays ...
    with hold(run):  # ... and is taken over
        assert lock_path(run).read_text().strip() == str(os.getpid())


# 4. file-system errors: one paragraph, the path and the fix, the last good state intact ---------------


def test_an_output_dir_that_cannot_be_created_is_one_paragraph(tmp_path):
    config = write_job(tmp_path / "job.yaml", Path("/proc/langadapt-runs"))  # a virtual file system
    code, output = cli("train", config)
    assert code == 2 and no_traceback(output), output
    assert "/proc/langadapt-runs" in output and "Fix:" in output


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 8 MB file system (tmpfs), so a full disk is the kernel's ENOSPC; needs root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root: {made.stderr.decode().strip()}")
    yield mount
    gc.collect()  # a training run's memory-mapped token files close when collected; until then the mount is busy
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_while_final_is_saved_names_the_path_and_keeps_the_checkpoint(tiny_disk, tmp_path):
    config = write_job(tmp_path / "job.yaml", tiny_disk / "runs")
    assert cli("train", config)[0] == 0
    run = tiny_disk / "runs" / "job"
    whole = (run / "final" / "model.safetensors").read_bytes()
    for made in ("final", "results.parquet", "status.json"):  # as if killed just after the last checkpoint
        subprocess.run(["rm", "-r", str(run / made)], check=True)
    checkpoint = digest(run / "checkpoints")
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (free - len(whole) // 2))  # room for half the weights
    code, output = cli("train", config)
    assert code == 2 and no_traceback(output), output
    assert f"writing {run / 'final'} failed: No space left on device" in output and "Fix: free disk space" in output
    assert digest(run / "checkpoints") == checkpoint
    assert not [p.name for p in run.iterdir() if p.name.startswith(".final")]  # nothing half-written beside it
    filler.unlink()
    assert cli("train", config)[0] == 0  # disk freed: the rerun finishes as the uninterrupted run did
    assert (run / "final" / "model.safetensors").read_bytes() == whole


def test_a_file_size_limit_while_final_is_saved_is_one_paragraph(tmp_path):
    """The same without root: a write past `ulimit -f` fails with EFBIG, as a full disk does."""
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", train__checkpoint_every=100)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))  # the tokens fit, the weights do not
    try:
        code, output = cli("train", config)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert code == 2 and no_traceback(output), output
    assert "File too large" in output and "Fix: free disk space" in output and "IoError" not in output


# 5. messages keep their words ------------------------------------------------------------------------


def test_error_text_is_printed_literally(tmp_path):
    code, output = cli("run", tmp_path / "pip install 'langadapt[models]'.yaml")
    assert code == 2 and "'langadapt[models]'.yaml" in output, output


def test_wrong_language_documents_are_counted_and_named(tmp_path, sample_docs):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in sample_docs
                            if d.lang == "ces_Latn"), encoding="utf-8")
    count = sum(d.lang == "ces_Latn" for d in sample_docs)
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", data={"vocab_size": 400, "sources": [
        {"name": "hsb", "format": "jsonl", "files": [str(data)], "languages": ["hsb_Latn"]}]})
    code, output = cli("train", config)
    assert code == 2 and no_traceback(output), output
    assert f"{count} of the {count} documents in data source 'hsb' ({data}) were dropped" in output
    assert f"ces_Latn: {count}" in output and "only 0 tokens" not in output and "lang" in output


def test_a_tsv_header_with_a_byte_order_mark_has_its_text_column(tmp_path):
    table = tmp_path / "sentences.tsv"
    table.write_bytes("\ufeffid\ttext\n1\tDobry dźeń\n2\tDźakuju so\n".encode())
    assert read_lines(table) == ["Dobry dźeń", "Dźakuju so"]


# 6. silent before, explicit now ----------------------------------------------------------------------


def test_home_and_environment_variables_are_expanded_in_path_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LANGADAPT_TEST_RUNS", "elsewhere")
    config = write_job(tmp_path / "job.yaml", Path("~/$LANGADAPT_TEST_RUNS"))
    assert load_config(config, schema=TrainJobConfig).output_dir == tmp_path / "elsewhere"
    write_job(config, Path("$LANGADAPT_NOT_SET_ANYWHERE/runs"))
    with pytest.raises(LangadaptError, match="output_dir.*LANGADAPT_NOT_SET_ANYWHERE is not set"):
        load_config(config, schema=TrainJobConfig)


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("name: job\ntrain:\n  steps: 6\n  batch_size: 4\n  steps: 60\n", encoding="utf-8")
    code, output = cli("train", config)
    assert code == 2 and "the key `steps` is given twice in one mapping, on lines 3 and 5" in output, output


@pytest.mark.parametrize("code", ["qqq_Latn", "hsb_Qqqq", "english"])
def test_an_unknown_language_code_is_refused_at_load(tmp_path, code):
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", data={"vocab_size": 400, "sources": [
        {"name": "hsb", "format": "sample", "languages": [code]}]})
    with pytest.raises(LangadaptError, match=f"data.sources.0.languages.*unknown language code '{code}'"):
        load_config(config, schema=TrainJobConfig)


def test_eval_text_for_a_language_that_is_not_a_code_is_refused(tmp_path):
    text = tmp_path / "held.txt"
    text.write_text("Hello there.\n", encoding="utf-8")
    code, output = cli("eval", tmp_path, "--text", f"english={text}")
    assert code == 2 and "--text 'english=" in output and "unknown language code 'english'" in output, output


def test_texts_for_a_language_that_is_not_configured_are_refused(tmp_path, sample_docs):
    texts = {}
    for lang in ("hsb_Latn", "ces_Latn", "pol_Latn"):
        texts[lang] = [tmp_path / f"{lang}.txt"]
        texts[lang][0].write_text("\n".join(d.text for d in sample_docs if d.lang == lang), encoding="utf-8")
    corpus = CorpusConfig(source="text", texts=texts)
    with pytest.raises(ValueError, match="corpus.texts gives files for pol_Latn, which is not among the configured"):
        ExperimentConfig(languages={"source": ["ces_Latn"], "target": "hsb_Latn"}, corpus=corpus)


def test_a_very_long_line_is_tokenised_in_slices_to_the_same_tokens(tokenizers, sample_docs):
    source, _, _ = tokenizers
    eos = source.token_to_id(EOS)
    text = (" ".join(d.text.replace("\n", " ") for d in sample_docs) + "  ") * 5  # one line, many slices long
    assert len(text) > 5 * (1 << 16)
    sliced = pack([text], source, eos, 0)
    whole = np.asarray(source.encode(text, add_special_tokens=False).ids + [eos], dtype=sliced.dtype)
    np.testing.assert_array_equal(sliced, whole)


def test_ctrl_c_says_where_the_run_stopped_and_how_to_resume(tmp_path):
    """A real SIGINT to this process once the first checkpoint is written, as a terminal sends it."""
    config = write_job(tmp_path / "job.yaml", tmp_path / "runs", train__steps=100_000, train__checkpoint_every=5)
    checkpoints = tmp_path / "runs" / "job" / "checkpoints"

    def interrupt() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (checkpoints / "latest").is_file():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt)
    watcher.start()
    try:
        code, output = cli("train", config)
    finally:
        watcher.join()
        signal.signal(signal.SIGINT, handler)
    assert code == 130 and no_traceback(output), output
    assert "interrupted (Ctrl-C): stopped after the checkpoint of step" in output
    assert "rerun the same command to continue" in output
    assert json.loads((checkpoints.parent / "status.json").read_text())["reason"] == "interrupted"
