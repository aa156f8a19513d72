"""A pretrained base model: checked before any work starts, imported once into a stock folder.

`check_base` is what an experiment calls at validation time: it reads only configs and the
tokenizer (and the weights' shapes from the safetensors header, never the weights), and turns
every problem a user can fix (a missing folder, pickle-only weights, a GGUF name that is not
there, remote code, an encoder-only or seq2seq model given for causal work, a `vocab_size` that
disagrees with the weights, training blocks longer than the model's positions, a tokenizer larger
than the embedding matrix) into one `LangadaptError` naming the path and the fix. There is no
list of architectures: any causal LM transformers loads is a base (model/kind.py decides from
the config).
`import_base` then writes the base as the folder every later stage starts from: safetensors
weights (a GGUF file dequantised by transformers), the tokenizer with its chat template and
special tokens, `generation_config.json` and a `langadapt.json` card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, GenerationConfig, PretrainedConfig, PreTrainedTokenizerBase

from langadapt.errors import LangadaptError
from langadapt.model.build import load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.kind import check_block_size, check_embedding_rows, require_causal
from langadapt.paths import PathProblem, check_model_files
from langadapt.vocab.tokenizer import end_of_text


@dataclass
class Base:
    path: Path
    gguf_file: str | None
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase


def _refuse(path: Path, what: str, fix: str) -> LangadaptError:
    return LangadaptError(what, where=f"base model {path}", fix=fix)


def _check_files(path: Path, gguf_file: str | None) -> None:
    try:
        check_model_files(path, gguf_file)
    except PathProblem as err:
        raise _refuse(path, err.what, err.fix) from None


def check_base(path: Path, gguf_file: str | None = None, causal: bool = True, block_size: int | None = None) -> Base:
    """Check that `path` (or the GGUF file `gguf_file` in it) is a base langadapt can adapt.

    Reads configs, the tokenizer and the safetensors header, never the weights. `causal`: the
    job predicts next tokens (adaptation, causal training, bits per byte), so encoder-only and
    seq2seq models are refused; classifiers and masked-LM jobs pass False. `block_size`: the
    job's training block, which must fit the model's positions. A padded embedding matrix (more
    rows than tokens, as many models ship for speed) is fine; more tokens than rows is refused,
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
    where = f"base model {path}"
    if causal:
        require_causal(config, where)
    if block_size is not None:
        check_block_size(config, block_size, where)
    if gguf_file is None:  # a GGUF file's config is read from the file itself
        check_embedding_rows(path, config, where)
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
