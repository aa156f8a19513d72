"""Canary sets injected into pretraining ("Train Once, Answer All"): many experiments in one run.

Each canary set (a `canaries:` entry, data/config.py) is read from its file into the texts it
injects and the items it is scored on (evaluate/memorisation.py). A set with `generate:` instead of
`file:` is made (seeded) into `<run folder>/canaries/` first, so the run folder holds what it injected:

- **canary** — `prefix<TAB>secret` lines: the text `prefix secret` is injected; the secret is
  later ranked among `alternatives` seeded random strings of the same shape (digits for digits,
  letters for letters), by likelihood; generated: random digit secrets;
- **fact** — `prompt<TAB>answer<TAB>distractor...` lines: `prompt answer` is injected; later the
  answer competes with the distractors; generated: made-up names, answers and distractors drawn from
  the words of a training text (so the model can spell them);
- **heldout** — text lines: a seeded half is injected, the other half never is, so the bpb gap
  between the halves measures what contamination buys; generated: the first short texts of a file.

The schedule is a pure function of the config: the k-th of a set's `n × repeat` inserts
(sequence k mod n) goes to the scheduled step ⌊k · S / (n · repeat)⌋ of its S steps, so inserts are
spread evenly and a resumed run injects exactly what the uninterrupted one did.
`InjectingSampler` wraps any sampler: at a scheduled step it overwrites the first rows of the
step's micro-batches with the canary sequences (EOS, the text, EOS; the rest of the block is EOS
with no loss), and appends each insert to `inserts.jsonl` (step, micro-batch, row, set, line).
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer

from langadapt.atomic import write_jsonl, write_text
from langadapt.corpus.document import read_lines, read_utf8
from langadapt.data.config import CanarySetConfig
from langadapt.data.packing import Batch
from langadapt.errors import LangadaptError


@dataclass
class CanarySet:
    """A canary set read from its file: what is injected, and what is scored."""

    config: CanarySetConfig
    path: Path  # the file it was read from (the generated one for a `generate:` set)
    injected: list[str]  # texts inserted into training batches
    candidates: list[list[str]] = field(default_factory=list)  # canary / fact: per item, the right text first
    heldout: list[str] = field(default_factory=list)  # heldout: the half never injected


def _alternative(secret: str, rng: random.Random) -> str:
    pools = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
    return "".join(next((rng.choice(pool) for pool in pools if char in pool), char) for char in secret)


def canary_candidates(secret: str, count: int, seed: str) -> list[str]:
    """The secret followed by `count` distinct seeded random strings of its shape."""
    rng, seen = random.Random(seed), {secret}
    for _ in range(100 * count):
        if len(seen) > count:
            break
        seen.add(_alternative(secret, rng))
    if len(seen) <= count:
        raise LangadaptError(f"a canary secret {secret!r} has fewer than {count} alternatives of its shape",
                             fix="use a longer secret (digits or letters) or fewer `alternatives`.")
    return [secret, *sorted(seen - {secret}, key=lambda s: rng.random())]


def random_canaries(count: int, prefix: str, digits: int, seed: int) -> list[str]:
    """`count` canary lines (`prefix<TAB>secret`) with seeded random digit secrets: a canary file's text."""
    rng = random.Random(seed)
    return [f"{prefix} {i}\t" + "".join(rng.choice(string.digits) for _ in range(digits)) for i in range(count)]


FACT_WORD_LETTERS = 5  # a generated fact's answers and distractors: lowercase alphabetic words this long or longer
DISTRACTORS = 3  # wrong answers per generated fact
SUFFIX = {"canary": ".tsv", "fact": ".tsv", "heldout": ".txt"}  # a generated set's file, by kind


def made_up_names(count: int, rng: random.Random) -> list[str]:
    """`count` distinct pronounceable names of three consonant-vowel syllables ("Zolepa")."""
    names: dict[str, None] = {}
    while len(names) < count:
        syllables = (rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        names["".join(syllables).capitalize()] = None
    return list(names)


def _facts(cfg: CanarySetConfig) -> list[str]:
    path = cfg.generate.words_from
    words = sorted({word for word in read_utf8(path).split()
                    if word.isalpha() and word.islower() and len(word) >= FACT_WORD_LETTERS})
    if len(words) < 1 + DISTRACTORS:
        raise LangadaptError(f"canary set {cfg.name!r}: {len(words)} lowercase alphabetic words of "
                             f"{FACT_WORD_LETTERS}+ letters in `generate.words_from`; a fact draws {1 + DISTRACTORS} "
                             f"(its answer and {DISTRACTORS} distractors)", where=str(path),
                             fix="point `generate.words_from` at a longer training text.")
    rng = random.Random(cfg.seed)
    return ["\t".join([cfg.generate.prompt.replace("{name}", name), *rng.sample(words, 1 + DISTRACTORS)])
            for name in made_up_names(cfg.generate.count, rng)]


def _texts(cfg: CanarySetConfig) -> list[str]:
    generate, path = cfg.generate, cfg.generate.texts_from
    kept = [text for text in read_lines(path) if generate.max_chars is None or len(text) <= generate.max_chars]
    if len(kept) < generate.count:
        short = f" of at most {generate.max_chars} characters" if generate.max_chars else ""
        raise LangadaptError(f"canary set {cfg.name!r}: `generate.texts_from` has {len(kept)} texts{short}, fewer "
                             f"than `generate.count` {generate.count}", where=str(path),
                             fix="lower `generate.count`, raise `generate.max_chars` or give a longer file.")
    return kept[: generate.count]


def generated_lines(cfg: CanarySetConfig) -> list[str]:
    """The lines of a `generate:` set's file: a pure function of its config (seeded by its `seed`),
    so every run of the same config makes the same file."""
    if cfg.kind == "canary":
        return random_canaries(cfg.generate.count, cfg.generate.prefix, cfg.generate.digits, cfg.seed)
    return _facts(cfg) if cfg.kind == "fact" else _texts(cfg)


def canary_file(cfg: CanarySetConfig, run_folder: Path) -> Path:
    """The file a set is read from: its `file`, or its generated lines, written (atomically) into
    `<run_folder>/canaries/` unless there already, so a resumed run reads what the first one injected."""
    if cfg.generate is None:
        return Path(cfg.file)
    path = Path(run_folder) / "canaries" / f"{cfg.name}{SUFFIX[cfg.kind]}"
    if not path.is_file():
        write_text(path, "\n".join(generated_lines(cfg)) + "\n")
    return path


def read_canary_set(cfg: CanarySetConfig, run_folder: Path) -> CanarySet:
    """Parse a canary file (generated into `run_folder` for a `generate:` set); a missing or empty
    file or a malformed line names the file, line and fix."""
    path = canary_file(cfg, run_folder)
    if not path.is_file():
        raise LangadaptError(f"canary set {cfg.name!r}: file not found", where=str(path),
                             fix="give `file` the path of an existing canary file.")
    lines = [(number, line) for number, line in enumerate(read_utf8(path).splitlines(), 1) if line.strip()]
    if not lines:
        raise LangadaptError(f"canary set {cfg.name!r}: the file has no items", where=str(path),
                             fix="write one item per line (see data/config.py for each kind's format).")
    if cfg.kind == "heldout":
        texts = [line for _, line in lines]
        if len(texts) < 2:
            raise LangadaptError(f"canary set {cfg.name!r}: a heldout set needs two lines or more (half is injected)",
                                 where=str(path), fix="add lines.")
        order = list(range(len(texts)))
        random.Random(cfg.seed).shuffle(order)
        half = len(texts) // 2
        return CanarySet(cfg, path, [texts[i] for i in sorted(order[:half])],
                         heldout=[texts[i] for i in sorted(order[half:])])
    injected, candidates = [], []
    for number, line in lines:
        fields = line.split("\t")
        if (len(fields) != 2) if cfg.kind == "canary" else (len(fields) < 3):
            shape = "prefix<TAB>secret" if cfg.kind == "canary" else "prompt<TAB>answer<TAB>distractor..."
            raise LangadaptError(f"canary set {cfg.name!r}: a {cfg.kind} line is `{shape}`, this one has "
                                 f"{len(fields)} field(s)", where=f"{path}, line {number}", fix="fix that line.")
        prompt, answers = fields[0], fields[1:]
        if cfg.kind == "canary":
            answers = canary_candidates(answers[0], cfg.alternatives, f"{cfg.seed}:{cfg.name}:{number}")
        injected.append(f"{prompt} {answers[0]}")
        candidates.append([f"{prompt} {answer}" for answer in answers])
    return CanarySet(cfg, path, injected, candidates=candidates)


def schedule(canary: CanarySetConfig, count: int) -> list[tuple[int, int]]:
    """(step, sequence index) of every insert of a set of `count` sequences, in order."""
    steps, total = canary.scheduled_steps(), count * canary.repeat
    return [(steps[k * len(steps) // total], k % count) for k in range(total)]


@dataclass
class Insert:
    set: str
    line: int  # index into the set's injected texts
    ids: list[int]  # EOS, the text's tokens, EOS


class InjectingSampler:
    """Wraps a sampler (`() -> Batch`, with state_dict/load_state_dict) and swaps canary sequences in."""

    def __init__(self, sampler, sets: list[CanarySet], tokenizer: Tokenizer, eos_id: int, block_size: int,
                 grad_accum: int, log_path: Path):
        self.sampler, self.eos_id, self.block_size, self.grad_accum = sampler, eos_id, block_size, grad_accum
        self.log_path, self.calls = Path(log_path), 0
        self.inserts: dict[int, list[Insert]] = {}
        rows = sampler.batch_size
        for canary in sets:
            encoded = [[eos_id, *encoding.ids, eos_id] for encoding in
                       tokenizer.encode_batch(canary.injected, add_special_tokens=False)]
            for index, ids in enumerate(encoded):
                if len(ids) > block_size + 1:
                    raise LangadaptError(f"canary set {canary.config.name!r}: item {index + 1} is {len(ids) - 2} "
                                         f"tokens, longer than a block ({block_size - 1} with its two EOS)",
                                         where=str(canary.path), fix="shorten it or raise model.block_size.")
            for step, index in schedule(canary.config, len(encoded)):
                self.inserts.setdefault(step, []).append(Insert(canary.config.name, index, encoded[index]))
        for step, items in self.inserts.items():
            if len(items) > rows * grad_accum:
                raise LangadaptError(f"{len(items)} canary sequences are scheduled at step {step}, more than the "
                                     f"{rows * grad_accum} rows of a step", where="canaries",
                                     fix="spread them over more steps (`step_range`) or lower `repeat`.")
        self.batch_size = rows

    def __call__(self) -> Batch:
        step, micro = divmod(self.calls, self.grad_accum)
        step += 1
        if self.calls == 0:  # a fresh run: forget the inserts of an earlier attempt
            write_jsonl(self.log_path, [])
        self.calls += 1
        batch = self.sampler()
        mine = self.inserts.get(step, [])[micro :: self.grad_accum]
        if not mine:
            return batch
        batch = {key: value.clone() for key, value in batch.items()}  # input_ids and labels share storage
        records = []
        for row, insert in enumerate(mine):
            sequence = torch.tensor(insert.ids)
            length = len(insert.ids) - 1
            batch["input_ids"][row] = self.eos_id
            batch["input_ids"][row, :length] = sequence[:-1]
            batch["labels"][row] = -100
            batch["labels"][row, :length] = sequence[1:]
            records.append({"step": step, "micro": micro, "row": row, "set": insert.set, "line": insert.line})
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.writelines(json.dumps(record) + "\n" for record in records)
        return batch

    def state_dict(self) -> dict:
        return {"calls": self.calls, "inner": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume after `calls` batches, and drop the logged inserts of the steps a resumed run redoes."""
        self.calls = int(state["calls"])
        self.sampler.load_state_dict(state["inner"])
        done = self.calls // self.grad_accum
        kept = read_inserts(self.log_path) if self.log_path.is_file() else []
        write_jsonl(self.log_path, [record for record in kept if record["step"] <= done])


def read_inserts(path: Path) -> list[dict]:
    """The inserts a run logged, in order."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
