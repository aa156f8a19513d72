import torch

from langadapt.data.packing import BlockSampler, pack
from langadapt.model.adapters import trainable_parameters
from langadapt.model.build import build_gpt2, load_model, save_model
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainConfig
from langadapt.train.loop import train
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.tokenizer import EOS

TINY = ModelConfig(n_layer=4, n_embd=32, n_head=2, block_size=32)


def _sampler(tokenizer, texts, seed=0):
    tokens = pack(texts, tokenizer, tokenizer.token_to_id(EOS), seed)
    return BlockSampler(tokens, TINY.block_size, 8, seed)


def test_loss_decreases_over_a_few_steps(tokenizers, sample_docs, tmp_path):
    source, _, _ = tokenizers
    model = build_gpt2(TINY, source)
    log = train(model, _sampler(source, [d.text for d in sample_docs if d.lang == "ces_Latn"]),
                TrainConfig(steps=40, lr=3e-3, warmup_steps=5), seed=0, log_path=tmp_path / "log.jsonl")
    first, last = sum(r["loss"] for r in log[:5]) / 5, sum(r["loss"] for r in log[-5:]) / 5
    assert last < first - 0.5
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 40


def test_sampler_is_reproducible(tokenizers, sample_docs):
    source, _, _ = tokenizers
    texts = [d.text for d in sample_docs if d.lang == "pol_Latn"]
    a, b = _sampler(source, texts), _sampler(source, texts)
    x, y = a(), b()
    assert x.keys() == y.keys() == {"input_ids", "labels"} and all(torch.equal(x[key], y[key]) for key in x)


def test_layra_trains_only_edge_layers_and_new_rows(tokenizers, sample_docs, tmp_path):
    source, _, expansion = tokenizers
    model = build_gpt2(TINY, source)
    resize_and_init(model, expansion.pieces, "mean", seed=0)
    old_rows = model.get_input_embeddings().weight[: expansion.first_new_id].detach().clone()
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    adapted = ADAPTERS["layra"](model, LoraConfig(r=4, alpha=8, edge_layers=1), new_ids)
    lora_layers = {int(n.split(".h.")[1].split(".")[0]) for n, p in adapted.named_parameters()
                   if "lora_" in n and p.requires_grad}
    assert lora_layers == {0, TINY.n_layer - 1}
    assert trainable_parameters(adapted) < 0.3 * sum(p.numel() for p in adapted.parameters())

    hsb = [d.text for d in sample_docs if d.lang == "hsb_Latn"]
    tokens = pack(hsb, expansion.tokenizer, expansion.tokenizer.token_to_id(EOS), 0)
    train(adapted, BlockSampler(tokens, TINY.block_size, 8, 0), TrainConfig(steps=5, lr=1e-2, warmup_steps=0),
          seed=0, log_path=tmp_path / "log.jsonl")
    merged = adapted.merge_and_unload()
    weight = merged.get_input_embeddings().weight
    assert torch.equal(weight[: expansion.first_new_id], old_rows)  # the base vocabulary stays frozen
    assert not torch.equal(weight[expansion.first_new_id :], old_rows.mean(0).expand(len(new_ids), -1))


def test_saved_model_loads_with_stock_transformers(tokenizers, tmp_path):
    source, _, _ = tokenizers
    model = build_gpt2(TINY, source).eval()
    folder = save_model(model, source, tmp_path / "model")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    loaded = load_model(folder)
    ids = torch.tensor([source.encode("Dobry dźeń").ids])
    assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-6)
    assert not list(tmp_path.glob(".model*"))  # no temp folder left behind
