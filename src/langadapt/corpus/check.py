"""`langadapt curate --check-thresholds`: before any curation runs, the share of each language's
clean reference text that language ID and each quality filter would remove, and why.

The filters are the pipeline's own blocks with the thresholds the pipeline would use. So that the
measurement is not made on the text the thresholds came from, the reference documents are split in
two: thresholds are resolved from one half (derived, or published with derived stopwords) and every
filter is run on the other half, on its own (`any` is the share removed by at least one). Each
removal is named by the rule and the statistic that crossed its threshold ("gopher_quality: fewer
than 2 of 30 stopwords"), so a user sees why before curating. With several reference files for a
language, thresholds derived from each file are also measured on every other one (`cross_domain`):
clean text of another register is what a user's corpus is, and a threshold tuned to one source is
only worth as much as it keeps of the others.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from datatrove.data import Document

from langadapt.corpus.blocks import LanguageFilters, LanguageIdFilter
from langadapt.corpus.config import CurationConfig
from langadapt.corpus.curation import apply_overrides, language_thresholds, reference_text
from langadapt.corpus.lid import LidBackend, make_backend
from langadapt.corpus.thresholds import (
    MIN_REFERENCE_DOCS,
    MIN_STOP_WORDS,
    Thresholds,
    derive,
    read_reference,
    reference_documents,
    resolve,
)

QUALITY = "filters"  # the share removed by at least one quality filter (language ID aside)


def _reason(block, doc: Document) -> str | None:
    """Why `block` would remove `doc` (datatrove's reason), or None when it keeps it."""
    result = block.filter(doc)
    if result is False:
        return "removed"
    return result[1] if isinstance(result, tuple) and not result[0] else None


def statistic(reason: str, th: Thresholds, options: dict) -> str:
    """The statistic behind a datatrove filter `reason`, with the threshold `th` set for it."""
    grams = {f"top_{n}_gram": (f"top {n}-gram", v) for n, v in th.top_n_grams}
    grams |= {f"duplicated_{n}_n_grams": (f"duplicated {n}-grams", v) for n, v in th.dup_n_grams}
    if reason in grams:
        what, value = grams[reason]
        return f"characters in the {what} > {value} of the text"
    return {
        "gopher_short_doc": f"fewer than {options.get('min_doc_words', 50)} words",
        "gopher_below_avg_threshold": f"mean word length < {th.min_avg_word_length}",
        "gopher_above_avg_threshold": f"mean word length > {th.max_avg_word_length}",
        "gopher_below_alpha_threshold": f"share of words with a letter < {th.max_non_alpha_words_ratio}",
        "gopher_enough_stop_words": f"fewer than {MIN_STOP_WORDS} of {len(th.stopwords)} stopwords",
        "line_punct_ratio": f"share of lines ending in terminal punctuation < {th.line_punct_thr}"
                            + (" (and above 0)" if th.line_punct_exclude_zero else ""),
        "list_ratio": f"new lines per word > {th.new_line_ratio}",
        "char_dup_ratio": f"characters in duplicated lines > {options.get('char_duplicates_ratio', 0.1)}",
        "dup_line_frac": f"share of duplicated lines > {th.dup_line_frac}",
        "language_score": f"language-ID score < {th.language_score}",
    }.get(reason, reason)


def _language_id(thresholds: dict[str, Thresholds], cfg: CurationConfig) -> LanguageIdFilter:
    return LanguageIdFilter(cfg.lid.backend, cfg.lid.model_path, {k: t.language_score for k, t in thresholds.items()})


def filter_removals(thresholds: dict[str, Thresholds], texts: dict[str, list[str]],
                    cfg: CurationConfig) -> dict[str, dict]:
    """Per language of `texts` (clean documents of it): the share each stage would remove alone
    (`shares`: each stage, `filters` for any quality filter, `any` for any stage), the reasons
    (`reasons`: stage → reason → documents), the labels language ID gave the documents it lost to
    other languages, and `keeps_all`: a cutoff (a multiple of 0.05) that would keep the documents it
    identified as the language but scored below the cutoff (None when there are none)."""
    options = cfg.filters.model_dump()
    lid = _language_id(thresholds, cfg)
    filters = {kind: LanguageFilters(kind, thresholds, options) for kind in cfg.filters.enabled}
    report: dict[str, dict] = {}
    for lang, docs in texts.items():
        reasons: dict[str, list[str | None]] = {name: [] for name in ["language_id", *filters]}
        lost_to: Counter = Counter()
        low_scores: list[float] = []  # of documents identified as the language, below its cutoff
        for i, text in enumerate(docs):
            identified = Document(text=text, id=str(i), metadata={})
            why = _reason(lid, identified)
            if why is None and identified.metadata["language"] != lang:
                why = "identified_as_other_language"
            if why == "language_score":
                low_scores.append(identified.metadata["language_score"])
            elif why is not None:
                lost_to[identified.metadata.get("lid_label") or "?"] += 1
            reasons["language_id"].append(why)
            for name, block in filters.items():
                reasons[name].append(_reason(block, Document(text=text, id=str(i), metadata={"language": lang})))
        size = max(len(docs), 1)
        shares = {name: sum(r is not None for r in flags) / size for name, flags in reasons.items()}
        quality = [any(r is not None for r in hits) for hits in zip(*(reasons[k] for k in filters), strict=True)]
        shares[QUALITY] = sum(quality) / size
        shares["any"] = sum(q or r is not None for q, r in zip(quality, reasons["language_id"], strict=True)) / size
        report[lang] = {"documents": len(docs), "shares": shares, "lost_to": dict(lost_to),
                        "keeps_all": math.floor(min(low_scores) * 20) / 20 if low_scores else None,
                        "reasons": {name: dict(Counter(r for r in flags if r is not None))
                                    for name, flags in reasons.items()}}
    return report


def pipeline_removes(thresholds: dict[str, Thresholds], texts: list[str], cfg: CurationConfig) -> list[bool]:
    """Whether the pipeline would remove each of `texts`: language ID over the languages of `thresholds`,
    then the quality filters of the language it finds (dedup aside). For junk and other-language text."""
    options = cfg.filters.model_dump()
    blocks = [_language_id(thresholds, cfg),
              *(LanguageFilters(kind, thresholds, options) for kind in cfg.filters.enabled)]
    return [any(_reason(block, doc) for block in blocks)  # `any` stops at the first block that removes
            for doc in (Document(text=text, id=str(i), metadata={}) for i, text in enumerate(texts))]


def explain(report: dict, th: Thresholds, options: dict) -> list[str]:
    """One line per (stage, reason) that removes clean text, largest first: the rule, the statistic
    and the share of the measured documents it removes."""
    size = max(report["documents"], 1)
    rows = [(count / size, stage, reason) for stage, counts in report["reasons"].items()
            for reason, count in counts.items()]
    lines = []
    for share, stage, reason in sorted(rows, reverse=True):
        if stage == "language_id" and reason == "language_score" and report["keeps_all"] is not None:
            lines.append(f"language_id: {statistic(reason, th, options)} on {share:.1%}; `lid.language_score: "
                         f"{{{th.language}: {report['keeps_all']}}}` keeps them")
        elif stage == "language_id" and reason != "language_score":
            labels = ", ".join(f"{label} {n}" for label, n in Counter(report["lost_to"]).most_common(3))
            lines.append(f"language_id: identified as another language ({labels}) on {share:.1%}")
        else:
            lines.append(f"{stage}: {statistic(reason, th, options)} on {share:.1%}")
    return lines


def cross_domain(lang: str, sources: dict[str, list[str]], cfg: CurationConfig, lid: LidBackend
                 ) -> dict[str, tuple[Thresholds, dict[str, dict]]]:
    """Thresholds derived from each source (its lines, as `derive` takes reference text) measured on
    the documents of every source: derived from → (its thresholds, measured on → `filter_removals`'
    report). A source too small to derive from (`MIN_REFERENCE_DOCS`) is only measured on."""
    docs = {name: reference_documents(lines, lang) for name, lines in sources.items()}
    matrix = {}
    for origin in (name for name in sources if len(docs[name]) >= MIN_REFERENCE_DOCS):
        th = derive(lang, docs[origin], lid, cfg.thresholds.pass_rate, cfg.thresholds.margin)
        th = apply_overrides(cfg, lang, th)
        matrix[origin] = th, {name: filter_removals({lang: th}, {lang: measured}, cfg)[lang]
                              for name, measured in docs.items()}
    return matrix


def check_thresholds(cfg: CurationConfig) -> dict[str, dict]:
    """For each configured language with reference text: its threshold source, the number of held-out
    reference documents, the share of them each stage would remove, the reasons, and (with two or more
    reference files) each file's thresholds measured on the others (see the module docstring)."""
    backend = make_backend(cfg.lid.backend, cfg.lid.model_path)
    thresholds, held, files = {}, {}, {}
    for lang in cfg.languages:
        lines = reference_text(cfg, lang, backend)
        if lines is None:  # nothing to measure; still an error when the language has no thresholds at all
            resolve(lang, cfg.thresholds.published_dir, None, backend)
            continue
        docs = reference_documents(lines, lang)
        fit = [line for doc in docs[0::2] for line in doc.split("\n")]
        thresholds[lang] = language_thresholds(cfg, lang, fit, backend)
        held[lang] = docs[1::2]
        files[lang] = cfg.thresholds.reference.get(lang, [])
    removals = filter_removals(thresholds, held, cfg)
    options = cfg.filters.model_dump()
    report = {}
    for lang in held:
        report[lang] = {"thresholds": thresholds[lang].source, "documents": len(held[lang]),
                        "language_score": thresholds[lang].language_score,
                        "removed": removals[lang]["shares"],
                        "why": explain(removals[lang], thresholds[lang], options)}
        if len(files[lang]) > 1:
            sources = {Path(p).name: read_reference(lang, [p], backend) for p in files[lang]}
            matrix = cross_domain(lang, sources, cfg, backend)
            report[lang]["cross_domain"] = {
                origin: {name: row[name]["shares"][QUALITY] for name in sources} for origin, (_, row) in matrix.items()}
    return report


def check_table(report: dict[str, dict]) -> str:
    """Markdown: one row per language, one column per stage, the share of held-out clean text removed,
    the language-ID recall; then the reasons, and each cross-domain matrix."""
    stages = list(next(iter(report.values()))["removed"]) if report else []
    lines = ["| language | thresholds | documents | " + " | ".join(stages) + " | language-ID recall (cutoff) |",
             "|---" * (len(stages) + 4) + "|"]
    for lang, row in report.items():
        cells = [f"{row['removed'][stage]:.1%}" for stage in stages]
        recall = f"{1 - row['removed']['language_id']:.1%} ({row['language_score']})"
        lines.append(f"| {lang} | {row['thresholds']} | {row['documents']} | " + " | ".join(cells) + f" | {recall} |")
    for lang, row in report.items():
        if row["why"]:
            lines += ["", f"{lang}: what removes clean reference text", *(f"- {why}" for why in row["why"])]
        if matrix := row.get("cross_domain"):
            names = list(matrix)
            lines += ["", f"{lang}: quality filters, clean text removed (rows: derived from; columns: measured on)",
                      "| derived from | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            lines += [f"| {origin} | " + " | ".join(f"{cells[n]:.1%}" for n in names) + " |"
                      for origin, cells in matrix.items()]
    return "\n".join(lines) + "\n"
