"""Merging LoRA adapters trained from one base (one per direction group): the linear merge folds
exactly the weighted sum of the adapters' weight deltas into the base; TIES and DARE give other,
finite deltas; bad input is named."""

import pytest
import torch
from safetensors.torch import load_file

from langadapt.errors import LangadaptError
from langadapt.model.adapters import export, save_peft_adapter
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.config import LoraConfig, ModelConfig
from langadapt.model.merge import merge_adapters
from langadapt.registry import ADAPTERS
from langadapt.vocab.tokenizer import train_bpe


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, shared):
    """A tiny GPT-2 base (BPE on NTREX-128 English) and two LoRA adapters with different random deltas."""
    folder = tmp_path_factory.mktemp("merge")
    lines = (shared("ntrex128") / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()[:400]
    tokenizer = train_bpe(lines, 500)
    torch.manual_seed(0)
    base = save_model(build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), tokenizer),
                      tokenizer, folder / "base", ModelCard(languages=["eng_Latn"]))
    paths = {}
    for seed, name in enumerate(["into-eng", "out-of-eng"]):
        torch.manual_seed(seed + 1)
        peft = ADAPTERS["lora"](load_model(base), LoraConfig(r=4), [])
        with torch.no_grad():
            for key, param in peft.named_parameters():
                if "lora_B" in key:  # peft starts B at zero: give each adapter a delta of its own
                    param.normal_(0, 0.05)
        paths[name] = save_peft_adapter(peft, folder / name)
        save_model(export(peft), tokenizer, folder / f"{name}-alone")
    return base, paths, folder


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_linear_merge_is_the_weighted_sum_of_the_deltas(adapters):
    base, paths, folder = adapters
    out = merge_adapters(base, paths, {"into-eng": 0.7, "out-of-eng": 0.3}, folder / "linear", "linear")
    w0, merged = weights(base), weights(out)
    alone = {name: weights(folder / f"{name}-alone") for name in paths}
    changed = 0
    for key, value in w0.items():
        expected = value + 0.7 * (alone["into-eng"][key] - value) + 0.3 * (alone["out-of-eng"][key] - value)
        torch.testing.assert_close(merged[key], expected, atol=1e-5, rtol=1e-4)
        changed += not torch.equal(merged[key], value)
    assert changed >= 4  # the attention projections of both layers moved
    assert read_card(out).method == "merge-linear" and read_card(out).languages == ["eng_Latn"]


def test_ties_and_dare_give_their_own_finite_deltas(adapters):
    base, paths, folder = adapters
    w0 = weights(base)
    linear = weights(merge_adapters(base, paths, {"into-eng": 0.5, "out-of-eng": 0.5}, folder / "l", "linear"))
    for how in ("ties", "dare"):
        merged = weights(merge_adapters(base, paths, {"into-eng": 0.5, "out-of-eng": 0.5}, folder / how, how,
                                        density=0.5))
        moved = [key for key in w0 if not torch.allclose(merged[key], w0[key])]
        assert moved and all(torch.isfinite(merged[k]).all() for k in moved)
        assert any(not torch.allclose(merged[k], linear[k], atol=1e-4) for k in moved)


def test_bad_merge_input_is_named(adapters):
    base, paths, folder = adapters
    with pytest.raises(LangadaptError, match="unknown merge method 'mean'"):
        merge_adapters(base, paths, {"into-eng": 1, "out-of-eng": 1}, folder / "x", "mean")
    with pytest.raises(LangadaptError, match="one weight per adapter"):
        merge_adapters(base, paths, {"into-eng": 1}, folder / "x")
