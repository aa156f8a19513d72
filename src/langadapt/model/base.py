"""A pretrained base model: checked before any work starts, imported once into a stock folder.

`check_base` is what an experiment calls at validation time: it reads only configs and the
tokenizer, and turns every problem a user can fix (a missing folder, pickle-only weights, a GGUF
name that is not there, remote code, an architecture the adapters do not know, a tokenizer
larger than the embedding matrix) into one `LangadaptError` naming the path and the fix.
`import_base` then writes the base as the folder every later stage starts from: safetensors
weights (a GGUF file dequantised by transformers), the tokenizer with its chat template and
special tokens, `generation_config.json` and a `langadapt.json` card.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, GenerationConfig, PretrainedConfig, PreTrainedTokenizerBase

from langadapt.errors import LangadaptError
from langadapt.model.adapters import ARCHITECTURES
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.vocab.train import end_of_text

PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
KNOWN_TYPES = (*ARCHITECTURES, "bert")  # bert: masked-LM jobs; the causal methods are tested on ARCHITECTURES


@dataclass
class Base:
    path: Path
    gguf_file: str | None
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase


def _refuse(path: Path, what: str, fix: str) -> LangadaptError:
    return LangadaptError(what, where=f"base model {path}", fix=fix)


def _check_files(path: Path, gguf_file: str | None) -> None:
    if not path.exists():
        raise _refuse(path, "the folder does not exist", "give the path of a local transformers model folder "
                      "(config.json, *.safetensors, tokenizer files) or of the folder holding a GGUF file.")
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise _refuse(path, "is not a readable folder", "point at the model's folder and check its permissions.")
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            found = sorted(p.name for p in path.glob("*.gguf"))
            raise _refuse(path, f"has no GGUF file {gguf_file!r}",
                          f"use one of {', '.join(found)}." if found else "this folder holds no .gguf file at all.")
        return
    if not (path / "config.json").is_file():
        raise _refuse(path, "has no config.json, so it is not a transformers model folder",
                      "save the model with `save_pretrained`, or name its GGUF file (gguf_file).")
    if not list(path.glob("*.safetensors")):
        pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern))
        if pickles:
            raise _refuse(path, f"has only pickle weights ({', '.join(pickles)}); langadapt loads safetensors only, "
                          "since unpickling can run arbitrary code",
                          "convert it once where you trust the file: `AutoModelForCausalLM.from_pretrained(folder)"
                          ".save_pretrained(folder)` writes model.safetensors; or download the safetensors files.")
        raise _refuse(path, "has no weights (*.safetensors)", "copy the model's .safetensors files into the folder.")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if "auto_map" in config:
        raise _refuse(path, "needs custom code from the model's own files (config.json has `auto_map`); langadapt "
                      "never runs remote code", "use a model that stock transformers implements "
                      f"({', '.join(ARCHITECTURES)}).")


def check_base(path: Path, gguf_file: str | None = None) -> Base:
    """Check that `path` (or the GGUF file `gguf_file` in it) is a base langadapt can adapt.

    Reads configs and the tokenizer, never the weights. A padded embedding matrix (more rows
    than tokens, as many models ship for speed) is fine; more tokens than rows is refused,
    because those tokens would index past the matrix."""
    path = Path(path)
    _check_files(path, gguf_file)
    try:
        config = AutoConfig.from_pretrained(path, gguf_file=gguf_file, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, trust_remote_code=False)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise _refuse(path, f"cannot be read by transformers ({str(err).splitlines()[0]})",
                      "check that it is a complete transformers folder (config.json, tokenizer files) "
                      "or a GGUF file transformers can dequantise.") from None
    if config.model_type not in KNOWN_TYPES:
        raise _refuse(path, f"is a {config.model_type!r} model, which the adaptation methods do not know",
                      f"use a {', '.join(ARCHITECTURES)} model.")
    rows = config.vocab_size
    if len(tokenizer) > rows:
        raise _refuse(path, f"its tokenizer has {len(tokenizer)} tokens but the embedding matrix only {rows} rows",
                      "use the tokenizer that was saved with these weights (an expanded tokenizer needs its "
                      "expanded model).")
    end_of_text(tokenizer.backend_tokenizer, config.eos_token_id)
    return Base(path, gguf_file, config, tokenizer)


def import_base(path: Path, gguf_file: str | None, out: Path) -> Path:
    """Write the base at `path` (a transformers folder, or `gguf_file` in it) as a stock folder at `out`.

    The folder holds safetensors weights, the tokenizer with its chat template and special
    tokens, `generation_config.json` and a card naming the base and its end-of-text token, so
    every later stage starts from one self-describing folder. Written atomically."""
    base = check_base(path, gguf_file)
    model = load_model(base.path, gguf_file)
    if gguf_file is None:
        try:
            model.generation_config = GenerationConfig.from_pretrained(base.path)
        except OSError:  # no generation_config.json: the one transformers derives from config.json stays
            pass
    backend = base.tokenizer.backend_tokenizer
    eos = backend.id_to_token(end_of_text(backend, base.config.eos_token_id))
    card = (read_card(base.path) if gguf_file is None else None) or ModelCard(base=str(base.path), gguf_file=gguf_file)
    card.eos_token = eos
    return save_model(model, base.tokenizer, out, card)
