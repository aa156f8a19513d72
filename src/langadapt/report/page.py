"""The report itself: `write_report` writes `tables.md`, one PNG per plot and one self-contained
`index.html` (every plot embedded as a base64 PNG, no external file or script), which opens
offline in any browser. Every number shown was computed by the run (or `langadapt eval`) and read
back from `results.parquet`."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_text, write_with
from langadapt.evaluate import transfer
from langadapt.report.figures import figures
from langadapt.report.tables import (
    CANARY_NOTE,
    EXPANSION_NOTE,
    FERTILITY_NOTE,
    SELECTION_NOTE,
    SIGN_CONVENTION,
    TAG_RULE,
    bpb_table,
    canary_sets_table,
    curation_table,
    delta_table,
    expansion_table,
    export_table,
    markdown_table,
    metric_table,
    other_metrics_table,
    selection_table,
    tokenizer_table,
    translation_table,
)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4f}", classes="t")


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       "table.t{border-collapse:collapse;margin:1em 0;font-size:14px}"
       "table.t td,table.t th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}"
       "img{max-width:100%;display:block;margin:1em 0}p.note{color:#555}")


def write_report(results: pd.DataFrame, out: Path, run_dir: Path | None = None) -> str:
    """Write `tables.md`, `bpb.png` and `index.html` into `out`; return the markdown."""
    out = Path(out)
    run_dir = Path(run_dir) if run_dir else out.parent
    experiment = results["experiment"].iloc[0] if "experiment" in results else "experiment"
    targets = results.loc[results.role == "target", "language"]
    title = f"{experiment}: adapting to {targets.iloc[0]}" if len(targets) else str(experiment)
    sections: list[Section] = []
    if (results.metric == "bpb").any():
        sections.append(("Held-out bits per byte", "", bpb_table(results), ["bpb"]))
        if not transfer.gain_forgetting(results).empty:
            sections.append(("Gain and forgetting", SIGN_CONVENTION, delta_table(results), ["delta"]))
            sections.append(("Transfer matrix", TAG_RULE,
                             transfer.transfer_matrix(results).reset_index(), ["transfer"]))
            sections.append(("Transfer tags", "", transfer.transfer_tags(results), []))
    if (results.metric == "bytes_per_token").any():
        sections.append(("Bytes per token", "", metric_table(results, "bytes_per_token"), ["fertility"]))
    if not tokenizer_table(results).empty:
        sections.append(("Tokenizers on held-out text", FERTILITY_NOTE, tokenizer_table(results), ["tokenizers"]))
    if not expansion_table(results).empty:
        sections.append(("Vocabulary expansion", EXPANSION_NOTE, expansion_table(results), []))
    if not selection_table(run_dir).empty:
        sections.append(("Choices on dev text", SELECTION_NOTE, selection_table(run_dir), ["sizes"]))
    if not canary_sets_table(results).empty:
        sections.append(("Canary sets over training", CANARY_NOTE, canary_sets_table(results), ["canaries"]))
    if not translation_table(results).empty:
        sections.append(("Translation: chrF per direction", "", translation_table(results), []))
    for heading, table in (("Other metrics", other_metrics_table(results)), ("Curation: documents removed",
                                                                               curation_table(run_dir)),
                           ("Exported models", export_table(run_dir))):
        if not table.empty:
            sections.append((heading, "", table, []))
    figs = figures(results, run_dir)
    if "loss" in figs:
        sections.append(("Training loss", "", pd.DataFrame(), ["loss"]))
    return render(title, sections, figs, out)


Section = tuple[str, str, pd.DataFrame, list[str]]  # (heading, note, table, figure names)


def render(title: str, sections: list[Section], figs: dict[str, object], out: Path) -> str:
    """Write the sections as `tables.md`, one PNG per figure and a self-contained `index.html`."""
    import matplotlib.pyplot as plt

    markdown = [f"# {title}"]
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for heading, note, table, names in sections:
        markdown.append(f"## {heading}")
        page.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            markdown.append(note)
            page.append(f"<p class='note'>{html.escape(note).replace('**', '')}</p>")
        if not table.empty:
            markdown.append(markdown_table(table))
            page.append(_html_table(table))
        for name in names:
            if name in figs:
                png = _png(figs[name])
                markdown.append(f"![{name}]({name}.png)")
                write_with(out / f"{name}.png", lambda tmp, data=png: tmp.write_bytes(data))
                page.append(f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    for fig in figs.values():
        plt.close(fig)
    text = "\n\n".join(markdown) + "\n"
    write_text(out / "tables.md", text)
    write_text(out / "index.html", "\n".join(page) + "\n</body></html>\n")
    return text


def report_run(run_dir: Path) -> str:
    """Rebuild the report of a finished run from its results table."""
    results = pd.read_parquet(Path(run_dir) / "results.parquet")
    return write_report(results, Path(run_dir) / "report", Path(run_dir))
