"""Code-switching restore (CSR4mBART): a bilingual dictionary induced from parallel training text,
a corruption that swaps some words of a sentence for their translations, and restore documents
(corrupted sentence → original sentence, the loss on the original), a stage before translation
fine-tuning that teaches the model which words mean the same across the two languages.

The documents serve both kinds of model: a causal one learns `corrupted → original` with the loss on
the original; a masked one (`train.objective: masked`) sees both halves and restores masked tokens of
the original only (XLM's translation LM with one side masked), because an encoder has no decoder to
generate the original as CSR4mBART's does, and masking the switched half would hide the translations
it should learn from.

The dictionary comes from sentence-level co-occurrence: the Dice coefficient
2·c(s, t) / (c(s) + c(t)) over the aligned pairs, each source word mapped to its best-scoring
target word (words lowercased, at least `min_count` occurrences). It needs no aligner and no
static vectors, and is good for the frequent words the corruption mostly touches.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable

from langadapt.corpus.document import Document
from langadapt.data.config import SourceConfig
from langadapt.data.translation import TARGET_SEPARATOR, language_name, read_aligned

WORD = re.compile(r"\w+", re.UNICODE)
RESTORE_TEMPLATE = "{mixed}\n{target_lang}:"  # the code-switched sentence, then the original's language


def words(sentence: str) -> list[str]:
    return WORD.findall(sentence.lower())


def induce_dictionary(sources: Iterable[str], targets: Iterable[str], min_count: int = 3,
                      min_dice: float = 0.3) -> dict[str, str]:
    """Source word → target word with the highest Dice co-occurrence over the aligned sentence pairs
    (only pairs of words seen at least `min_count` times, with Dice at least `min_dice`)."""
    pairs = [(set(words(source)), set(words(target))) for source, target in zip(sources, targets, strict=True)]
    single_s = Counter(word for left, _ in pairs for word in left)
    single_t = Counter(word for _, right in pairs for word in right)
    joint = Counter()
    for left, right in pairs:  # rare words cannot reach min_count together: left out of the pair counts
        right = [t for t in right if single_t[t] >= min_count]
        joint.update((s, t) for s in left if single_s[s] >= min_count for t in right)
    best: dict[str, tuple[float, str]] = {}
    for (s, t), together in joint.items():
        if together < min_count:
            continue
        dice = 2 * together / (single_s[s] + single_t[t])
        if dice >= min_dice and dice > best.get(s, (0.0, ""))[0]:
            best[s] = (dice, t)
    return {s: t for s, (_, t) in best.items()}


def code_switch(sentence: str, dictionary: dict[str, str], rate: float, rng: random.Random) -> str:
    """`sentence` with about `rate` of its words (those the dictionary knows) replaced by their
    translations, the rest of the text (spacing, punctuation) kept."""
    spans = [m for m in WORD.finditer(sentence) if m.group().lower() in dictionary]
    total = len(WORD.findall(sentence))
    chosen = set(rng.sample(range(len(spans)), min(len(spans), round(rate * total))))
    out, last = [], 0
    for index, match in enumerate(spans):
        if index in chosen:
            out += [sentence[last : match.start()], dictionary[match.group().lower()]]
            last = match.end()
    return "".join(out) + sentence[last:]


def restore_streams(source: SourceConfig, seed: int) -> tuple[dict[str, list[Document]], dict[str, float]]:
    """A `format: codeswitch` source: for each of its two languages, its sentences code-switched with
    the dictionary induced from the pairs, each followed by the original (the loss on the original)."""
    aligned = read_aligned(source)
    first, second = source.languages[:2]
    cfg = source.translation
    rng = random.Random(seed)
    streams = {}
    for lang, other in ((first, second), (second, first)):
        dictionary = induce_dictionary(aligned[lang], aligned[other])
        docs = []
        for i, sentence in enumerate(aligned[lang]):
            mixed = code_switch(sentence, dictionary, cfg.switch_rate, rng)
            prompt = RESTORE_TEMPLATE.replace("{target_lang}", language_name(lang, cfg.names)).replace("{mixed}", mixed)
            target = TARGET_SEPARATOR + sentence
            docs.append(Document(f"{source.name}:{lang}:{i}", prompt + target, lang,
                                 {"origin": "code-switch", "target_chars": len(target)}))
        streams[f"{source.name}.{lang}"] = docs
    return streams, {name: source.weight / len(streams) for name in streams}
