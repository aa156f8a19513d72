"""Every family of choices a user names in YAML, in one place: methods, initialisers, objectives,
readers, language-ID backends, probes, quality filters, executors, architectures and size presets.

Each entry is a lazy `module:attribute` target, imported only when a run uses it, so validating
a config (`langadapt config FILE`) imports no torch, transformers, peft or datatrove, and an
unknown name is answered with the closest known ones. Add your own entry with `add`:

    from langadapt.registry import PROBES
    PROBES.add("my-probe", "my_package.probes:my_probe")   # or the function itself
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from importlib import import_module


class Registry:
    """Names → lazy `module:attribute` targets (or objects), imported on first use."""

    def __init__(self, what: str, targets: dict[str, object]) -> None:
        self.what = what  # "adaptation method", ...: the word an error uses
        self._targets = dict(targets)
        self._loaded: dict[str, object] = {}

    def add(self, name: str, target: object) -> None:
        """Register `target` (an object, or a `module:attribute` string) as `name`."""
        self._targets[name] = target
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __getitem__(self, name: str):
        if name not in self._loaded:
            target = self._targets[self.check(name)]
            if isinstance(target, str):
                module, _, attribute = target.partition(":")
                target = getattr(import_module(module), attribute)
            self._loaded[name] = target
        return self._loaded[name]

    def check(self, names: str | Iterable[str]):
        """`names` unchanged when all are known; else a ValueError naming the closest known ones
        (pydantic turns it into a config error with the key's location)."""
        unknown = [name for name in ([names] if isinstance(names, str) else names) if name not in self]
        if unknown:
            near = difflib.get_close_matches(unknown[0], list(self), n=3)
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise ValueError(f"unknown {self.what} {', '.join(map(repr, unknown))}{hint} "
                             f"(known: {', '.join(self)})")
        return names


# (model, lora config, new token ids) → the model ready to train.
ADAPTERS = Registry("adaptation method", {
    "full": "langadapt.model.adapters:full",
    "lora": "langadapt.model.adapters:lora_all_layers",
    "layra": "langadapt.model.adapters:layra",
    "embeddings": "langadapt.model.adapters:embeddings_new_rows",
    "embeddings-factorised": "langadapt.model.adapters:embeddings_factorised",
    "embeddings-all": "langadapt.model.adapters:embeddings_all_rows",
    "experts": "langadapt.model.experts:experts",
})

# (model config, tokenizer) → a freshly initialised model (`model.arch`).
ARCHITECTURES = Registry("architecture", {
    "gpt2": "langadapt.model.build:build_gpt2",
    **dict.fromkeys(("llama", "qwen2", "mistral", "gemma"), "langadapt.model.build:build_decoder"),
    "bert": "langadapt.model.build:build_bert",
})

# Named model sizes (`model.preset`): the shape keys a preset sets when not given explicitly.
SIZE_PRESETS = Registry("size preset", {
    "tiny": {"n_layer": 4, "n_embd": 128, "n_head": 4},  # ≈ 1M
    "mini": {"n_layer": 6, "n_embd": 256, "n_head": 8},  # ≈ 6M
    "small": {"n_layer": 8, "n_embd": 512, "n_head": 8},  # ≈ 25M
    "goldfish-39m": {"n_layer": 4, "n_embd": 512, "n_head": 8, "block_size": 512},
    "goldfish-125m": {"n_layer": 12, "n_embd": 768, "n_head": 12, "block_size": 512},
})

# (InitContext) → the new embedding rows.
INITIALISERS = Registry("initialiser", {
    "random": "langadapt.vocab.init:random_init",
    "mean": "langadapt.vocab.init:mean_init",
    "multivariate": "langadapt.vocab.init:multivariate_init",
    "subword-mean": "langadapt.vocab.init:subword_mean_init",
    "focus": "langadapt.vocab.init:focus_init",
    "ofa": "langadapt.vocab.init:ofa_init",
    "omp": "langadapt.vocab.init:omp_init",
    "cw2v": "langadapt.vocab.init:cw2v_init",
})
# What an initialiser reads beyond the base's embeddings: static token vectors, target-only ids.
NEEDS: dict[str, tuple[str, ...]] = {"focus": ("static",), "ofa": ("static",), "omp": ("static",),
                                     "cw2v": ("target_ids",)}

# (model, batch) → the loss.
OBJECTIVES = Registry("objective", {
    "causal": "langadapt.train.objectives:causal_lm",
    "masked": "langadapt.train.objectives:masked_lm",
})
# Objectives a job builds from its own config section, because they hold trainable parameters or
# state (train/contrastive.py): `train.objective` names them, train/job.py passes them built to `train`.
BUILT_OBJECTIVES = ("ccp",)

# (model, tokenizer, ProbeTask) → result rows.
PROBES = Registry("probe", {
    "sib200": "langadapt.evaluate.probes:sib200",
    "pos": "langadapt.evaluate.probes:pos",
})

# (input spec) → a datatrove reader step.
READERS = Registry("corpus reader", {
    "jsonl": "langadapt.corpus.readers:jsonl_reader",
    "parquet": "langadapt.corpus.readers:parquet_reader",
    "text": "langadapt.corpus.readers:text_reader",
    "hf": "langadapt.corpus.readers:datasets_reader",
})

# classes: (model path or None) → a LidBackend.
LID_BACKENDS = Registry("language-ID backend", {
    "py3langid": "langadapt.corpus.lid:Py3LangId",
    **dict.fromkeys(("fasttext", "glotlid"), "langadapt.corpus.lid:FastTextLid"),
})

# (thresholds, options) → a datatrove filter.
QUALITY_FILTERS = Registry("filter", {
    "gopher_repetition": "langadapt.corpus.blocks:gopher_repetition",
    "fineweb_quality": "langadapt.corpus.blocks:fineweb_quality",
    "gopher_quality": "langadapt.corpus.blocks:gopher_quality",
    "c4": "langadapt.corpus.blocks:c4_lines",
})

# (stage, executor config, log folder, dependency) → a datatrove executor.
EXECUTORS = Registry("executor", {
    "local": "langadapt.corpus.executors:local",
    "slurm": "langadapt.corpus.executors:slurm",
    "ray": "langadapt.corpus.executors:ray",
})


def phases(method: str) -> list[str]:
    """The adapters a method trains in turn, its phases: `embeddings+layra` → ['embeddings', 'layra']."""
    return method.split("+")
