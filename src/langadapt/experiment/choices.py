"""Choices made on dev text before any adaptation: how many tokens to add (`vocab.max_new_tokens:
auto`) and which initialiser to train (`vocab.train_with: auto`).

Both choose on **dev** text, a seeded share of the target's *training* documents held aside by
the vocab stage, never on the held-out text the report scores: a choice made on the report's own
text would make the reported score look better than a new text would. The dev documents are kept
out of the tokenizer's merges, the initialisers' statistics and the size sweep's training, so each
candidate meets them as new text; the adaptation itself may train on them once the choice is made.

Sizes are scored by the cheap proxy the issue allows: the dev bpb of the base with k new rows
initialised and then trained alone for a few steps (`short_adaptation`). Scoring sizes with no
training at all would favour the fewest tokens, since an untrained new row predicts worse than the
pieces it replaces; a few steps let a size's shorter sequences count.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bits_per_byte
from langadapt.model.build import load_model
from langadapt.train.config import TrainConfig
from langadapt.vocab.build import init_context
from langadapt.vocab.config import VocabConfig
from langadapt.vocab.expand import Expansion, expand_continued
from langadapt.vocab.init import initialise
from langadapt.vocab.tokenizer import end_of_text

log = logging.getLogger("langadapt")

SELECTION = "selection.json"  # in the init stage's folder: every choice, its candidates and scores
DEV = "dev.json"  # in the vocab stage's folder: the dev documents' ids and share


def dev_ids(ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The document ids held aside as dev text: the first `fraction` in a seeded hash order, so the
    same corpus and seed give the same dev text whatever order the documents arrive in. At least
    one document each side."""
    if len(ids) < 2:
        raise LangadaptError(f"an `auto` choice needs dev text, but the target has {len(ids)} training document(s)",
                             where="vocab.dev_fraction",
                             fix="add target-language text, or name vocab.train_with and vocab.max_new_tokens.")
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return order[:min(max(1, round(fraction * len(ids))), len(ids) - 1)]


@dataclass
class Choice:
    """One choice: each candidate's dev score (bpb, lower is better) and the candidate taken."""

    key: str  # the config key chosen for, e.g. vocab.train_with
    criterion: str
    scores: dict[str, float]
    chosen: str

    @classmethod
    def best(cls, key: str, criterion: str, scores: dict[str, float]) -> Choice:
        """The lowest score wins; a tie goes to the candidate listed first (the smaller size, the
        initialiser named first), so the choice never depends on float noise in the order."""
        return cls(key, criterion, dict(scores), min(scores, key=lambda name: (scores[name], list(scores).index(name))))

    def as_dict(self) -> dict:
        return asdict(self)


def short_adaptation(model: PreTrainedModel, tokenizer: Tokenizer, texts: Sequence[str], new_ids: Sequence[int],
                     steps: int, lr: float, batch_size: int, block_size: int, seed: int) -> None:
    """Train only the new rows (input embedding, and an untied output layer) for `steps` steps of
    next-token loss on `texts` packed into `block_size` windows: the `embeddings` method's first
    stage in miniature, cheap enough to run once per candidate size."""
    if steps == 0 or not new_ids:
        return
    eos = end_of_text(tokenizer, model.config.eos_token_id)
    stream = [i for text in texts for i in [*tokenizer.encode(text).ids, eos]]
    windows = [stream[start:start + block_size + 1] for start in range(0, max(1, len(stream) - block_size),
                                                                        block_size)]
    windows = [w for w in windows if len(w) == block_size + 1] or [stream[:block_size + 1]]
    rows = torch.zeros(model.get_input_embeddings().weight.shape[0], 1, dtype=torch.bool)
    rows[list(new_ids)] = True
    weights = {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings())
               if m is not None}
    model.requires_grad_(False)
    for weight in weights.values():
        weight.requires_grad_(True)
    optimiser = torch.optim.Adam(weights.values(), lr=lr)
    order = random.Random(seed)
    model.train()
    for _ in range(steps):
        batch = torch.tensor([order.choice(windows) for _ in range(batch_size)])
        loss = model(input_ids=batch, labels=batch).loss
        optimiser.zero_grad()
        loss.backward()
        for weight in weights.values():  # old rows stay exactly as they were
            weight.grad.mul_(rows[: weight.shape[0]].to(weight.grad.dtype))
        optimiser.step()
    model.eval()
    model.requires_grad_(False)


def choose_size(cfg: VocabConfig, base_model: Path, base: Tokenizer, sizes: Sequence[int], fit: list[str],
                dev: list[str], seed: int, train: TrainConfig, block_size: int) -> tuple[Expansion, Choice]:
    """`max_new_tokens: auto`: expand by each size on the fit text, initialise the new rows (with
    `train_with`, or subword-mean while that is chosen too), train them alone for `size_steps`
    steps at the adaptation's embeddings learning rate, and keep the size with the best dev bpb."""
    init = cfg.train_with if cfg.train_with != "auto" else "subword-mean"
    lr = train.phase_lr.get("embeddings", train.lr)
    scores, expansions = {}, {}
    for size in sizes:
        expansion = expand_continued(base, fit, size, cfg.min_pair_frequency)
        model = load_model(base_model)
        initialise(model, expansion, init, seed, **init_context(cfg, expansion, fit, [init], seed))
        short_adaptation(model, expansion.tokenizer, fit, expansion.new_ids, cfg.size_steps,
                         lr, train.batch_size, block_size, seed)
        eos = end_of_text(expansion.tokenizer, model.config.eos_token_id)
        scores[str(size)] = bits_per_byte(model, expansion.tokenizer, dev, eos).bpb
        expansions[str(size)] = expansion
        log.info("vocab: %d new tokens: dev bpb %.4f", size, scores[str(size)])
        del model
    criterion = (f"dev bpb after {cfg.size_steps} steps training only the new rows at lr {lr:g} ({init} "
                 "initialisation)"
                 if cfg.size_steps else f"dev bpb of the {init}-initialised model before training")
    choice = Choice.best("vocab.max_new_tokens", criterion, scores)
    return expansions[choice.chosen], choice
