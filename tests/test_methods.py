"""Every adaptation method on every architecture, through `langadapt train` (`run_train_job`).

Each base is a tiny random model of a stock transformers class, with the special tokens of
the real family (Llama-3's `<|end_of_text|>`, Mistral's `</s>`, Gemma's `<eos>`), untied
embeddings where the family has them, and a vocabulary expanded by Upper Sorbian tokens, saved
with its card so the job knows which rows are new. For each method × architecture: the bits
per byte of the training text fall (not asserted for per-language experts, whose 12 steps are
split between two experts), `final/` loads in stock transformers with the logits of the model
the job trained (rebuilt from its last checkpoint), and the folder's card names the method.
"""

import json

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from langadapt.config import load_config
from langadapt.data.mixing import control_token
from langadapt.data.packing import BlockSampler, pack
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.build import build_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.config import ModelConfig
from langadapt.model.experts import route_by_language
from langadapt.registry import ADAPTERS, phases
from langadapt.train.config import TrainConfig, TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.train.loop import latest_checkpoint, train
from langadapt.vocab.expand import expand_bpe
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.tokenizer import as_transformers, end_of_text, load_tokenizer, train_bpe

# architecture → (special tokens of its family, its end-of-text token, tied embeddings, key/value heads)
FAMILIES = {
    "gpt2": (["<|endoftext|>"], "<|endoftext|>", True, None),
    "llama": (["<|begin_of_text|>", "<|end_of_text|>"], "<|end_of_text|>", False, 1),  # Llama-3, grouped-query
    "qwen2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|endoftext|>", True, None),
    "mistral": (["<unk>", "<s>", "</s>"], "</s>", False, None),
    "gemma": (["<pad>", "<eos>", "<bos>"], "<eos>", True, None),  # embeddings scaled by √d
}
METHODS = ["full", "lora", "layra", "embeddings", "embeddings-factorised", "embeddings-all", "experts",
           "experts-per-language", "embeddings+layra", "embeddings-factorised+lora"]
STEPS = 12
STAGE_LR = {"experts": 2e-2}  # zero-initialised experts need a higher rate than LoRA (train.phase_lr)
LANGS = ["hsb_Latn", "ces_Latn"]
CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"


@pytest.fixture(scope="module")
def texts(sample_docs, tmp_path_factory):
    """Upper Sorbian (and Czech) training files and held-out Sorbian lines, from the sample corpus."""
    folder = tmp_path_factory.mktemp("texts")
    by_lang = {lang: [d.text for d in sample_docs if d.lang == lang] for lang in LANGS}
    for lang, items in by_lang.items():
        (folder / f"{lang}.txt").write_text("\n".join(items[:-100]) + "\n", encoding="utf-8")
    (folder / "heldout.txt").write_text("\n".join(by_lang["hsb_Latn"][-100:]) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bases(sample_docs, tmp_path_factory):
    """`bases(arch)`: a saved tiny base of that family, expanded by 150 Sorbian tokens (built once)."""
    built = {}

    def base(arch: str):
        if arch not in built:
            specials, _, tied, kv_heads = FAMILIES[arch]
            source = train_bpe([d.text for d in sample_docs if d.lang in ("ces_Latn", "pol_Latn")], 600, specials)
            target = train_bpe([d.text for d in sample_docs if d.lang == "hsb_Latn"], 500, specials)
            expansion = expand_bpe(source, target, 150)
            torch.manual_seed(0)
            shape = ModelConfig(arch=arch, n_layer=2, n_embd=32, n_head=2, n_kv_head=kv_heads, block_size=32,
                                tie_embeddings=tied)
            model = build_model(shape, source)
            czech_polish = [d.text for d in sample_docs if d.lang != "hsb_Latn"]
            sampler = BlockSampler(pack(czech_polish, source, end_of_text(source), 0), 32, 8, 0)
            train(model, sampler, TrainConfig(steps=40, lr=1e-2, warmup_steps=4), 0, tmp_path_factory.mktemp("log")
                  / "log.jsonl")  # pretrained a little, so frozen blocks carry something to adapt
            resize_and_init(model, expansion.pieces, "mean", seed=0)
            new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
            tokenizer = as_transformers(expansion.tokenizer)
            tokenizer.chat_template = CHAT
            model.generation_config.max_new_tokens = 17
            card = ModelCard(base=f"tiny-{arch}", new_ids=new_ids, languages=["hsb_Latn"], initialiser="mean")
            built[arch] = save_model(model, tokenizer, tmp_path_factory.mktemp(arch) / "expanded", card)
        return built[arch]

    return base


def _job(arch, method, base, texts, out):
    experts = method == "experts-per-language"
    sources = [{"name": lang[:3], "format": "text", "files": [str(texts / f"{lang}.txt")], "languages": [lang]}
               for lang in (LANGS if experts else LANGS[:1])]
    job = {
        "name": f"{arch}-{method.replace('+', '_')}", "output_dir": str(out), "init_from": str(base),
        "model": {"block_size": 32},
        "data": {"sources": sources, "eval_files": {"hsb_Latn": str(texts / "heldout.txt")},
                 "control_tokens": ["lang"] if experts else []},
        "train": {"steps": STEPS, "batch_size": 8, "lr": 3e-3, "warmup_steps": 0, "checkpoint_every": STEPS,
                  "eval_every": 1000, "phase_lr": {k: lr for k, lr in STAGE_LR.items() if k in phases(method)}},
        "method": "experts" if experts else method,
        "lora": {"r": 4, "alpha": 8, "expert_hidden": 16, "embedding_rank": 8,
                 "expert_languages": LANGS if experts else []},
    }
    (out / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    return load_config(out / "job.yaml", schema=TrainJobConfig)


def _trained(cfg, run, new_ids):
    """The model the job's last stage trained, rebuilt from its last checkpoint."""
    names = phases(cfg.method)
    start = cfg.init_from if len(names) == 1 else run / f"phase{len(names) - 1}-{names[-2]}" / "final"
    phase_dir = run if len(names) == 1 else run / f"phase{len(names)}-{names[-1]}"
    tokenizer = load_tokenizer(run / "tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(start)
    if tokenizer.get_vocab_size() > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(tokenizer.get_vocab_size())
    model = ADAPTERS[names[-1]](model, cfg.lora, new_ids)
    if cfg.lora.expert_languages:
        route_by_language(model, tokenizer)
    state = load_file(latest_checkpoint(phase_dir / "checkpoints") / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("lm_head" in key or "embed_scale" in key for key in missing), missing
    return model.eval(), tokenizer


# The default suite runs each method on one architecture, in turn (every architecture twice);
# `-m slow` runs the whole cross product (50 jobs, about 1.5 s each on an idle core).
CASES = [pytest.param(arch, method, id=f"{arch}-{method}",
                      marks=() if a == m % len(FAMILIES) else pytest.mark.slow)
         for m, method in enumerate(METHODS) for a, arch in enumerate(FAMILIES)]


@pytest.mark.parametrize(("arch", "method"), CASES)
def test_method_trains_and_exports_a_stock_model(arch, method, bases, texts, tmp_path):
    base = bases(arch)
    cfg = _job(arch, method, base, texts, tmp_path)
    final = run_train_job(cfg)

    card = read_card(final)
    assert card.method == cfg.method and card.base == f"tiny-{arch}" and card.initialiser == "mean"
    assert set(read_card(base).new_ids) <= set(card.new_ids)
    assert card.eos_token == FAMILIES[arch][1]

    seen = (texts / "hsb_Latn.txt").read_text(encoding="utf-8").splitlines()[:200]
    stock = AutoModelForCausalLM.from_pretrained(final).eval()
    before = AutoModelForCausalLM.from_pretrained(base).eval()
    tokenizer = load_tokenizer(base / "tokenizer.json")
    with torch.no_grad():  # the loss falls: bits per byte of the training text, before and after
        bpb_before = bits_per_byte(before, tokenizer, seen, end_of_text(tokenizer)).bpb
        bpb_after = bits_per_byte(stock, load_tokenizer(final / "tokenizer.json"), seen, end_of_text(tokenizer)).bpb
    if not cfg.lora.expert_languages:  # half the batches reach each routed expert: 12 steps do not show
        assert bpb_after < bpb_before, (bpb_before, bpb_after)
    assert pd.read_parquet(final.parent / "results.parquet").query("metric == 'bpb'").value.item() > 0

    trained, run_tokenizer = _trained(cfg, final.parent, card.new_ids)
    prefix = [run_tokenizer.token_to_id(control_token("lang", LANGS[0]))] if cfg.lora.expert_languages else []
    ids = torch.tensor([prefix + run_tokenizer.encode(seen[-1] + " " + seen[-2]).ids[:30]])
    with torch.no_grad():
        assert torch.allclose(stock(ids).logits, trained(ids).logits, atol=1e-4)

    hf_tokenizer = AutoTokenizer.from_pretrained(final)  # the base's chat template and generation config survive
    assert hf_tokenizer.chat_template == CHAT and hf_tokenizer.eos_token == card.eos_token
    assert json.loads((final / "generation_config.json").read_text())["max_new_tokens"] == 17
