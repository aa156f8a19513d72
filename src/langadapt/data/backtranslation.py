"""Back-translation (Vega-MT; the Lingala paper's mono + parallel recipe): monolingual text of a
target language becomes synthetic pairs, translated into the other language by a model.

A `format: backtranslation` source names the monolingual files (`files`, in `languages[1]`) and
the model that translates them (`translation.model`) into `languages[0]`. Its documents train the
direction `languages[0] → languages[1]`, so the synthetic side is only ever the prompt and the
loss falls on real text. Every document is tagged (`metadata.origin = "back-translation"`, and the
model), and the source is a stream of its own in the mixture, so its weight against real pairs is
one number in the config. The synthetic pairs are written to `backtranslation/<source>.tsv` in
the run folder, to be read and checked.
"""

from __future__ import annotations

from pathlib import Path

from langadapt.atomic import write_text
from langadapt.corpus.document import Document, read_lines
from langadapt.data.config import SourceConfig
from langadapt.data.translation import fill, pair_documents, stream_weights

ORIGIN = "back-translation"


def backtranslation_streams(source: SourceConfig, out: Path) -> tuple[dict[str, list[Document]], dict[str, float]]:
    """The source's synthetic pairs as one direction stream, and its weight."""
    from langadapt.evaluate.translation import translate_with

    synthetic_lang, real_lang = source.languages
    cfg = source.translation
    monolingual = [line for path in source.files for line in read_lines(path, part=source.lines)]
    fallback = fill(cfg.template, "{source}", real_lang, synthetic_lang, cfg.names)
    synthetic = translate_with(Path(cfg.model), monolingual, real_lang, synthetic_lang, cfg.max_new_tokens,
                               cfg.batch_size, fallback=fallback)
    kept = [(made, real) for made, real in zip(synthetic, monolingual, strict=True) if made]
    write_text(Path(out) / "backtranslation" / f"{source.name}.tsv",
               "".join(f"{made}\t{real}\n" for made, real in [(synthetic_lang, real_lang), *kept]))
    rates = cfg.rates(source.languages)
    aligned = {synthetic_lang: [made for made, _ in kept], real_lang: [real for _, real in kept]}
    streams = pair_documents(source.name, aligned, cfg, rates, {"origin": ORIGIN, "model": str(cfg.model)})
    return streams, stream_weights(source, rates)
