"""`langadapt curate --check-thresholds`: before any curation runs, the share of each language's
clean reference text that language ID and each quality filter would remove.

The filters are the pipeline's own blocks with the thresholds the pipeline would use. So that the
measurement is not made on the text the thresholds came from, the reference documents are split in
two: thresholds are resolved from one half (derived, or published with derived stopwords) and every
filter is run on the other half, on its own (`any` is the share removed by at least one).
"""

from __future__ import annotations

from datatrove.data import Document

from langadapt.config import CurationConfig
from langadapt.corpus.blocks import LanguageFilters, LanguageIdFilter
from langadapt.corpus.curation import reference_text
from langadapt.corpus.lid import make_backend
from langadapt.corpus.thresholds import Thresholds, reference_documents, resolve


def _removed(block, doc: Document) -> bool:
    result = block.filter(doc)
    return result is False or (isinstance(result, tuple) and not result[0])


def filter_removals(thresholds: dict[str, Thresholds], texts: dict[str, list[str]],
                    cfg: CurationConfig) -> dict[str, dict[str, float]]:
    """Per language of `texts` (clean documents of it): the share each stage would remove alone."""
    options = cfg.filters.model_dump()
    lid = LanguageIdFilter(cfg.lid.backend, cfg.lid.model_path, {k: t.language_score for k, t in thresholds.items()})
    filters = {kind: LanguageFilters(kind, thresholds, options) for kind in cfg.filters.enabled}
    shares: dict[str, dict[str, float]] = {}
    for lang, docs in texts.items():
        hits = {name: [] for name in ["language_id", *filters]}
        for i, text in enumerate(docs):
            identified = Document(text=text, id=str(i), metadata={})
            hits["language_id"].append(_removed(lid, identified) or identified.metadata["language"] != lang)
            for name, block in filters.items():
                hits[name].append(_removed(block, Document(text=text, id=str(i), metadata={"language": lang})))
        shares[lang] = {name: sum(flags) / len(docs) for name, flags in hits.items()}
        shares[lang]["any"] = sum(map(any, zip(*hits.values(), strict=True))) / len(docs)
    return shares


def check_thresholds(cfg: CurationConfig) -> dict[str, dict]:
    """For each configured language with reference text: its threshold source, the number of held-out
    reference documents, and the share of them each stage would remove (see the module docstring)."""
    backend = make_backend(cfg.lid.backend, cfg.lid.model_path)
    thresholds, held = {}, {}
    for lang in cfg.languages:
        lines = reference_text(cfg, lang, backend)
        if lines is None:  # nothing to measure; still an error when the language has no thresholds at all
            resolve(lang, cfg.thresholds.published_dir, None, backend)
            continue
        docs = reference_documents(lines, lang)
        fit = [line for doc in docs[0::2] for line in doc.split("\n")]
        thresholds[lang] = resolve(lang, cfg.thresholds.published_dir, fit, backend, cfg.thresholds.prefer,
                                   cfg.thresholds.pass_rate, cfg.thresholds.stopwords)
        held[lang] = docs[1::2]
    shares = filter_removals(thresholds, held, cfg)
    return {lang: {"thresholds": thresholds[lang].source, "documents": len(held[lang]), "removed": shares[lang]}
            for lang in held}


def check_table(report: dict[str, dict]) -> str:
    """Markdown: one row per language, one column per stage, the share of held-out clean text removed."""
    stages = list(next(iter(report.values()))["removed"]) if report else []
    lines = ["| language | thresholds | documents | " + " | ".join(stages) + " |", "|---" * (len(stages) + 3) + "|"]
    for lang, row in report.items():
        cells = [f"{row['removed'][stage]:.1%}" for stage in stages]
        lines.append(f"| {lang} | {row['thresholds']} | {row['documents']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
