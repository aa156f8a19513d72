"""A pretrained base: `import_base` writes a self-describing stock folder, `check_base` refuses bad
input before any training with one message naming the path and the fix."""

import json
import shutil

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from langadapt.config import ModelConfig, TrainJobConfig, load_config
from langadapt.errors import LangadaptError
from langadapt.model.base import check_base, import_base
from langadapt.model.build import build_model, save_model
from langadapt.model.card import read_card
from langadapt.train.job import run_train_job
from langadapt.vocab.train import as_transformers, train_bpe

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


def test_remote_code_and_unknown_architectures_are_refused(llama3, tmp_path):
    remote = shutil.copytree(llama3, tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling_x.XModel"}}))
    assert "custom code" in _refused(remote)
    unknown = shutil.copytree(llama3, tmp_path / "unknown")
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "gptj", "architectures": ["GPTJ"]}))
    assert "'gptj'" in _refused(unknown)


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
