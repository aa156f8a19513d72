"""Translation training data: sentence pairs → prompt + target documents, loss on the target only.

A `format: translation` source reads sentences aligned across languages, from line-parallel files
(one per language) or from a SIB-200/FLORES folder (`<lang>/{train,dev,test}.tsv`, rows matched by
`index_id`). Each (pair, direction) becomes one document: the template filled with the source
sentence and both language names, a space, then the target sentence. The document remembers where
its target starts (`metadata["target_chars"]`), so packing writes a loss mask beside the tokens
and the sampler gives the prompt tokens label -100 (ML50 / Tower-style instruction fine-tuning
without learning to reproduce prompts). Each direction is its own token stream in the mixture, so
the configured direction rates hold exactly and several pairs mix by weight or temperature.
"""

from __future__ import annotations

from pathlib import Path

from langadapt.corpus.document import Document, read_lines, read_parallel
from langadapt.data import sib200
from langadapt.data.config import SourceConfig, TranslationConfig

TARGET_SEPARATOR = " "  # between the filled template and the target: a word boundary for BPE tokenizers


def language_name(code: str, names: dict[str, str]) -> str:
    """The name a template shows for `code`: the configured one, else the code itself."""
    return names.get(code, code)


def fill(template: str, source: str, source_lang: str, target_lang: str, names: dict[str, str]) -> str:
    """The prompt for one sentence (placeholders replaced literally, so braces in text are safe)."""
    return (template.replace("{source_lang}", language_name(source_lang, names))
            .replace("{target_lang}", language_name(target_lang, names)).replace("{source}", source))


def stream_name(source: str, direction: tuple[str, str]) -> str:
    return f"{source}.{direction[0]}-{direction[1]}"


def read_sib200(folder: Path, languages: list[str], splits: list[str]) -> dict[str, list[str]]:
    """Sentences of `languages` from a SIB-200/FLORES folder, aligned by `index_id` (rows every
    language has), over `splits`; a language or split the folder lacks is an error naming it."""
    folder = Path(folder)
    aligned: dict[str, list[str]] = {lang: [] for lang in languages}
    for split in splits:
        rows = {}
        for lang in languages:
            rows[lang] = {row["index_id"]: row["text"] for row in sib200.read_split(folder, lang, split,
                                                                                ("index_id", "text"))}
        shared = [key for key in rows[languages[0]] if all(rows[lang].get(key) for lang in languages)]
        for lang in languages:
            aligned[lang] += [rows[lang][key] for key in shared]
    return aligned


def read_aligned(source: SourceConfig) -> dict[str, list[str]]:
    """The source's sentences per language, line i of each translating line i of the others."""
    if len(source.files) == 1 and Path(source.files[0]).is_dir():
        return read_sib200(Path(source.files[0]), source.languages, source.translation.splits)
    first, *rest = source.files
    for other in rest:  # every file against the first: unequal line counts name both files
        read_parallel(first, other)
    columns = [read_lines(path, True, source.lines) for path in source.files]
    rows = [row for row in zip(*columns, strict=True) if all(row)]
    return {lang: [row[i] for row in rows] for i, lang in enumerate(source.languages)}


def pair_documents(name: str, aligned: dict[str, list[str]], cfg: TranslationConfig,
                   rates: dict[tuple[str, str], float], metadata: dict | None = None) -> dict[str, list[Document]]:
    """One stream of documents per direction: the filled template, the separator, the target."""
    streams = {}
    for src, tgt in rates:
        docs = []
        for i, (sentence, translation) in enumerate(zip(aligned[src], aligned[tgt], strict=True)):
            target = TARGET_SEPARATOR + translation
            prompt = fill(cfg.template, sentence, src, tgt, cfg.names)
            docs.append(Document(f"{name}:{src}-{tgt}:{i}", prompt + target, tgt,
                                 {**(metadata or {}), "source_lang": src, "target_chars": len(target)}))
        streams[stream_name(name, (src, tgt))] = docs
    return streams


def translation_streams(source: SourceConfig) -> tuple[dict[str, list[Document]], dict[str, float]]:
    """A `format: translation` source as documents per direction stream, and each stream's weight
    (the source's weight shared by the direction rates)."""
    rates = source.translation.rates(source.languages)
    streams = pair_documents(source.name, read_aligned(source), source.translation, rates)
    return streams, stream_weights(source, rates)


def stream_weights(source: SourceConfig, rates: dict[tuple[str, str], float]) -> dict[str, float]:
    total = sum(rates.values())
    return {stream_name(source.name, d): source.weight * rate / total for d, rate in rates.items()}


def loss_start(text: str, doc: Document) -> int | None:
    """Character offset in `text` (the document's text, perhaps with control tokens before it) where
    the loss starts; None for documents that are not prompt + target."""
    target = doc.metadata.get("target_chars")
    return None if target is None else len(text) - int(target)


def translation_card(sources: list[SourceConfig]) -> dict | None:
    """What a model card keeps of a job's translation sources, so later prompts match training:
    the template and names of the first, every direction trained."""
    sources = [s for s in sources if s.format in ("translation", "backtranslation")]  # codeswitch: no direction
    if not sources:
        return None
    directions = [f"{a}-{b}" for s in sources for a, b in s.translation.rates(s.languages)]
    names = {code: name for s in sources for code, name in s.translation.names.items()}
    return {"template": sources[0].translation.template, "names": names, "directions": list(dict.fromkeys(directions))}
