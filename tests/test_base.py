"""A pretrained base: `import_base` writes a self-describing stock folder, `check_base` refuses bad
input before any training with one message naming the path and the fix."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    GenerationConfig,
)

from langadapt.config import load_config, parse_config
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.experiment.pipeline import compile_stages
from langadapt.model.base import check_base, import_base
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.card import read_card
from langadapt.model.config import ModelConfig
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.tokenizer import as_transformers, load_tokenizer, train_bpe

CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
SHAPE = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 32}


@pytest.fixture(scope="module")
def llama3(sample_docs, tmp_path_factory):
    """A tiny Llama-3-style folder as a user would download it: chat template, generation config, no card."""
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 500,
                          ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    model = build_model(ModelConfig(arch="llama", tie_embeddings=False, **SHAPE), tokenizer)
    model.config.eos_token_id = tokenizer.token_to_id("<|eot_id|>")  # as instruct models do: end of a turn
    model.generation_config = GenerationConfig(eos_token_id=model.config.eos_token_id, temperature=0.6,
                                               do_sample=True)
    hf = as_transformers(tokenizer)
    hf.chat_template = CHAT
    folder = save_model(model, hf, tmp_path_factory.mktemp("hub") / "tiny-llama3")
    return folder


def test_import_base_writes_a_self_describing_stock_folder(llama3, tmp_path):
    out = import_base(llama3, None, tmp_path / "base")
    card = read_card(out)
    assert card.base == str(llama3) and card.eos_token == "<|end_of_text|>"  # documents end with end-of-text
    assert AutoTokenizer.from_pretrained(out).chat_template == CHAT
    assert GenerationConfig.from_pretrained(out).temperature == 0.6
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    ids = torch.tensor([[5, 17, 300, 41]])
    original, imported = (AutoModelForCausalLM.from_pretrained(p).eval() for p in (llama3, out))
    with torch.no_grad():
        assert torch.equal(original(ids).logits, imported(ids).logits)


def _refused(path, gguf_file=None) -> str:
    with pytest.raises(LangadaptError) as err:
        check_base(path, gguf_file)
    assert str(path) in err.value.message and err.value.fix
    return err.value.message


def test_missing_folder_and_missing_gguf_file_are_named(llama3, tmp_path):
    assert "does not exist" in _refused(tmp_path / "nowhere")
    (tmp_path / "model.Q4_0.gguf").write_bytes(b"")
    message = _refused(tmp_path, "model.Q8_0.gguf")
    assert "model.Q8_0.gguf" in message and "model.Q4_0.gguf" in message  # the fix lists what is there


def test_pickle_only_weights_are_refused(llama3, tmp_path):
    folder = shutil.copytree(llama3, tmp_path / "pickled")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    assert "pytorch_model.bin" in _refused(folder) and "safetensors" in _refused(folder)


def test_remote_code_is_refused(llama3, tmp_path):
    remote = shutil.copytree(llama3, tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling_x.XModel"}}))
    assert "custom code" in _refused(remote)


def test_a_tokenizer_larger_than_the_embeddings_is_refused_a_padded_matrix_is_not(llama3, sample_docs, tmp_path):
    big = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 700, ["<|end_of_text|>"])
    mismatched = shutil.copytree(llama3, tmp_path / "mismatched")
    as_transformers(big).save_pretrained(mismatched)
    assert "700 tokens" in _refused(mismatched)
    small = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 400, ["<|end_of_text|>"])
    padded = shutil.copytree(llama3, tmp_path / "padded")
    as_transformers(small).save_pretrained(padded)
    assert check_base(padded).config.vocab_size == 500


def test_the_training_job_checks_its_base_before_writing_anything(llama3, tmp_path):
    folder = shutil.copytree(llama3, tmp_path / "pickled")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    job = {"name": "refused", "output_dir": str(tmp_path / "runs"), "init_from": str(folder),
           "data": {"sources": [{"name": "pol", "format": "sample", "languages": ["pol_Latn"]}]}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    with pytest.raises(LangadaptError, match="pickle"):
        run_train_job(load_config(tmp_path / "job.yaml", schema=TrainJobConfig))
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def encoders(sample_docs, tmp_path_factory):
    """A saved tiny BERT (masked LM, built by langadapt) and a tiny BART (seq2seq) folder with tokenizers."""
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 500, ["<|end_of_text|>"])
    root = tmp_path_factory.mktemp("encoders")
    bert = save_model(build_model(ModelConfig(arch="bert", **SHAPE), tokenizer), tokenizer, root / "bert")
    bart = BartForConditionalGeneration(BartConfig(vocab_size=500, d_model=32, encoder_layers=1, decoder_layers=1,
                                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                                   encoder_ffn_dim=64, decoder_ffn_dim=64,
                                                   max_position_embeddings=64))
    return bert, save_model(bart, tokenizer, root / "bart")


def _job(tmp_path, init_from, **sections) -> TrainJobConfig:
    job = {"name": "job", "output_dir": str(tmp_path / "runs"), "init_from": str(init_from),
           "model": {"block_size": 32}, "method": "lora", "train": {"steps": 2, "batch_size": 2},
           "data": {"sources": [{"name": "pol", "format": "sample", "languages": ["pol_Latn"]}]}}
    for key, value in sections.items():
        job[key] = {**job[key], **value} if isinstance(value, dict) else value
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    return load_config(tmp_path / "job.yaml", schema=TrainJobConfig)


def _refused_before_any_work(cfg: TrainJobConfig, match: str) -> str:
    with pytest.raises(LangadaptError, match=match) as err:
        run_train_job(cfg)
    assert not Path(cfg.output_dir).exists() and "Traceback" not in err.value.message
    return err.value.message


def test_encoder_only_and_seq2seq_models_are_refused_for_causal_work(encoders, tmp_path):
    bert, bart = encoders
    message = _refused(bert)
    assert "'bert'" in message and "encoder-only" in message and "masked" in message and "classifiers" in message
    assert "seq2seq" in _refused(bart) and "'bart'" in _refused(bart)
    assert check_base(bert, causal=False).config.model_type == "bert"  # classifiers and masked LM take it
    message = _refused_before_any_work(_job(tmp_path, bert), "encoder-only")  # init_from, causal objective
    assert "train.objective: masked" in message
    experiment = parse_config({"base": {"model": str(bert)}})  # an experiment's base
    with pytest.raises(LangadaptError, match="encoder-only"):
        compile_stages(experiment)
    assert not (tmp_path / "experiment").exists()
    with pytest.raises(LangadaptError, match="bits per byte"):  # causal scoring
        bits_per_byte(load_model(bert), load_tokenizer(bert / "tokenizer.json"), ["Dzień dobry"], 0)


def test_a_masked_lm_job_still_trains_from_an_encoder(encoders, tmp_path):
    bert, _ = encoders
    final = run_train_job(_job(tmp_path, bert, train={"objective": "masked"}, method="full"))
    assert AutoConfig.from_pretrained(final).model_type == "bert"


def test_a_vocab_size_that_disagrees_with_the_weights_is_refused_before_any_work(llama3, tmp_path):
    folder = shutil.copytree(llama3, tmp_path / "edited")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 640}))
    message = _refused(folder)
    assert "vocab_size 640" in message and "500 rows" in message and "config.json" in message
    _refused_before_any_work(_job(tmp_path, folder), "vocab_size 640")
    experiment = parse_config({"base": {"model": str(folder)}, "model": {"block_size": 32}})
    with pytest.raises(LangadaptError, match="vocab_size 640"):
        compile_stages(experiment)
    assert not (tmp_path / "experiment").exists()


def test_a_block_size_above_the_models_positions_is_refused_before_any_work(llama3, tmp_path):
    message = _refused_before_any_work(_job(tmp_path, llama3, model={"block_size": 64}), "block_size 64")
    assert "32 positions" in message and "32 or less" in message
    with pytest.raises(LangadaptError, match="block_size 64"):
        compile_stages(parse_config({"base": {"model": str(llama3)}, "model": {"block_size": 64}}))
