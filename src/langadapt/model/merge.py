"""Merge LoRA adapters trained from one base (one per translation direction group, say) into one
model, with peft's `add_weighted_adapter` (the asymmetric-conflict paper's group-wise merging).

The methods merge weight deltas ΔW_i = s_i·B_i·A_i, as task arithmetic, TIES and DARE are defined:
- `linear`: ΔW = Σ w_i ΔW_i exactly (peft's `cat`: the LoRA factors side by side, rank Σ r_i);
  peft's own `linear` averages A and B separately, which is not the weighted sum of deltas;
- `ties` / `dare` / `dare_ties`: TIES (trim to `density`, elect signs, disjoint mean), DARE (drop
  at random to `density`, rescale) or both, on the full deltas, then an SVD back to rank Σ r_i,
  which is exact for the merged delta (peft's `*_svd` variants).
The merged adapter is folded into the base weights (`merge_and_unload`) and saved as a stock
model folder with the base's card (method `merge-<how>`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from peft import PeftModel

from langadapt.errors import LangadaptError
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.vocab.tokenizer import load_tokenizer

COMBINATIONS = {"linear": "cat", "ties": "ties_svd", "dare": "dare_linear_svd", "dare_ties": "dare_ties_svd"}


def _rank(adapter: Path) -> int:
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise LangadaptError(f"{adapter} is not a peft adapter folder (no adapter_config.json)",
                             fix="point at a training job's adapter/ folder (a lora or layra method).")
    return int(json.loads(path.read_text(encoding="utf-8"))["r"])


def merge_adapters(base: Path, adapters: dict[str, Path], weights: dict[str, float], out: Path,
                   how: str = "linear", density: float = 0.5, seed: int = 0,
                   translation: dict | None = None) -> Path:
    """Fold the weighted merge of `adapters` (name → peft folder, each trained from `base`) into
    `base`, save it at `out` and return it. `translation` (a card's translation entry) lets the
    merged folder prompt as its parts were trained."""
    if how not in COMBINATIONS:
        raise LangadaptError(f"unknown merge method {how!r}", fix=f"use one of {', '.join(COMBINATIONS)}.")
    if set(weights) != set(adapters):
        raise LangadaptError(f"merge weights name {sorted(weights)} but the adapters are {sorted(adapters)}",
                             fix="give one weight per adapter.")
    torch.manual_seed(seed)  # DARE drops at random
    names = list(adapters)
    model = PeftModel.from_pretrained(load_model(base), str(adapters[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(adapters[name]), adapter_name=name)
    model.add_weighted_adapter(names, [weights[n] for n in names], "merged", combination_type=COMBINATIONS[how],
                               density=None if how == "linear" else density,
                               svd_rank=None if how == "linear" else sum(_rank(adapters[n]) for n in names))
    model.set_adapter("merged")
    merged = model.merge_and_unload(adapter_names=["merged"])
    card = read_card(base) or ModelCard(base=str(base))
    card = dataclasses.replace(card, method=f"merge-{how}", trained_from=str(base),
                               translation=translation or card.translation)
    return save_model(merged, load_tokenizer(Path(base) / "tokenizer.json"), out, card)
