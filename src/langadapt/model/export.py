"""`langadapt export MODEL_DIR --to hf|merged|gguf OUT`: take an adapted model home.

What MODEL_DIR may be, and what each format writes:

- a stock model folder (a training job's `final/`, an experiment's `init/<name>/`, an imported
  base): training already folded LoRA/LayRA, trainable tokens, experts and factorised embeddings
  into it (`adapters.export`), so `hf` and `merged` both write it again as a clean stock folder;
- a peft adapter folder (a job's `adapter/`, `adapter_config.json`): `merged` loads its base
  (`--base`, else the adapter's `base_model_name_or_path`), folds the adapter in with peft's
  `merge_and_unload` and writes a stock folder; `hf` writes the adapter unmerged, as a peft folder
  with the tokenizer beside it (`AutoPeftModelForCausalLM` loads it on the base);
- a training job's run folder (holding `final/`): its `final/`.

A stock folder is safetensors weights, `config.json`, `generation_config.json`, the expanded
tokenizer with its chat template, and langadapt's card; it loads with plain
`AutoModelForCausalLM`. `gguf` writes the merged model as one GGUF file (model/gguf_writer.py)
and checks it by reloading it with transformers' GGUF loader.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from langadapt.errors import LangadaptError
from langadapt.model.build import load_model, save_model
from langadapt.model.card import read_card
from langadapt.model.gguf_writer import RoundTrip, check_gguf, check_quant, check_text, export_gguf, family

FORMATS = ("hf", "merged", "gguf")
ADAPTER = "adapter_config.json"


@dataclass(frozen=True)
class Exported:
    path: Path  # the folder or GGUF file written
    source: Path  # the model folder it was made from
    check: RoundTrip | None = None  # gguf: how the reloaded file compares


def model_folder(model_dir: Path) -> Path:
    """The model folder MODEL_DIR stands for: itself, or a training run's `final/`."""
    model_dir = Path(model_dir)
    if (model_dir / ADAPTER).is_file() or any(model_dir.glob("*.safetensors")):
        return model_dir
    if (model_dir / "final" / "config.json").is_file():  # a run folder's config.json is the job's, not a model's
        return model_dir / "final"
    raise LangadaptError(f"{model_dir} is not a model folder, a peft adapter folder or a training run",
                         where=str(model_dir), fix="point at a folder with config.json and *.safetensors "
                         "(e.g. a run's final/), or at a peft adapter/ folder.")


def _adapter_base(adapter: Path, base: Path | None) -> Path:
    if base is None:
        named = json.loads((adapter / ADAPTER).read_text(encoding="utf-8")).get("base_model_name_or_path")
        base = Path(named) if named else None
    if base is None or not (base / "config.json").is_file():
        raise LangadaptError(f"the adapter's base model {base} is not a local model folder",
                             where=str(adapter / ADAPTER), fix="pass the folder it was trained from with --base.")
    return base


def _tokenizer(folder: Path, fallback: Path):
    """The expanded tokenizer: the folder's own, else its base's (a peft folder has none)."""
    source = folder if (folder / "tokenizer.json").is_file() else fallback
    return AutoTokenizer.from_pretrained(source)


def _merged(folder: Path, base: Path | None):
    """(stock model with every adapter folded in, its tokenizer, its card)."""
    from peft import PeftModel

    if not (folder / ADAPTER).is_file():
        return load_model(folder), AutoTokenizer.from_pretrained(folder), read_card(folder)
    base = _adapter_base(folder, base)
    model = PeftModel.from_pretrained(load_model(base), str(folder)).merge_and_unload()
    return model, _tokenizer(folder, base), read_card(folder) or read_card(base)


def _write_folder(folder: Path, out: Path, base: Path | None) -> Path:
    model, tokenizer, card = _merged(folder, base)
    return save_model(model, tokenizer, out, card)


def _write_adapter(folder: Path, out: Path, base: Path | None) -> Path:
    """A peft folder as it is, with the tokenizer beside it, renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        if not (tmp / "tokenizer.json").is_file():
            _tokenizer(folder, _adapter_base(folder, base)).save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_model(model_dir: Path, to: str, out: Path, quant: str = "f16", base: Path | None = None,
                 check: bool = True, check_texts: list[str] | None = None) -> Exported:
    """Write MODEL_DIR's model to `out` as `to` (hf, merged or gguf); see the module docstring.

    For gguf, `check` reloads the file with transformers and compares ids and logits on
    `check_texts` (default: text spanning the vocabulary and its new tokens, `check_text`)."""
    if to not in FORMATS:
        raise LangadaptError(f"unknown export format {to!r}", fix=f"use one of {', '.join(FORMATS)}.")
    folder, out = model_folder(model_dir), Path(out)
    if to == "hf" and (folder / ADAPTER).is_file():
        return Exported(_write_adapter(folder, out, base), folder)
    if to in ("hf", "merged"):
        return Exported(_write_folder(folder, out, base), folder)
    check_quant(quant)
    adapter = (folder / ADAPTER).is_file()
    family(AutoConfig.from_pretrained(_adapter_base(folder, base) if adapter else folder))  # refused before work
    out.parent.mkdir(parents=True, exist_ok=True)
    if adapter:  # merged into a stock folder first: GGUF holds plain weights
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
            merged = _write_folder(folder, Path(tmp) / "merged", base)
            return _gguf(merged, out, quant, check, check_texts, folder)
    if not (folder / "tokenizer.json").is_file():
        raise LangadaptError(f"{folder} has no tokenizer.json to write into the GGUF file", where=str(folder),
                             fix="export a folder langadapt wrote (it saves the tokenizer beside the weights).")
    return _gguf(folder, out, quant, check, check_texts, folder)


def _gguf(folder: Path, out: Path, quant: str, check: bool, texts: list[str] | None, source: Path) -> Exported:
    path = export_gguf(folder, out, quant)
    if not check:
        return Exported(path, source)
    card = read_card(folder)
    texts = texts or [check_text(folder, card.new_ids if card is not None else [])]
    return Exported(path, source, check_gguf(folder, path, texts))

