"""Tables and plots from the results table, and nothing else: every number shown here was
computed by the run (or `langadapt eval`) and read back from `results.parquet`; loss curves
come from the training logs and the curation table from `corpus/stats.json`.

`write_report` writes `tables.md`, `bpb.png` and one self-contained `index.html` (every plot
embedded as a base64 PNG, no external file or script), which opens offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_text, write_with
from langadapt.evaluate import transfer

SIGN_CONVENTION = (
    "Δ bpb = adapted − base, in bits per byte (lower bpb is better). On the target language a "
    "negative Δ is the gain from adaptation; on a source language a positive Δ is forgetting."
)
TAG_RULE = (
    f"Transfer cells are relative gains (base − run) / base bpb. Tag per adapted run, threshold "
    f"τ = {transfer.THRESHOLD:.0%}: **altruistic** if some language it was not trained on gains more "
    "than τ; **selfish** if only its trained language(s) gain more than τ; **stagnant** if none does."
)


FERTILITY_NOTE = (
    "Fertility = tokens per word (per letter in scripts written without spaces); parity = tokens "
    "over the pivot language's tokens for the same held-out entries. results.parquet also holds "
    "bytes per token, the byte-fallback rate and the continued-word ratio."
)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:+.{digits}f}" if value < 0 else f"{value:.{digits}f}"
        return str(value)

    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def run_order(runs) -> list[str]:
    """Base first, then the untrained `init:` models, then the adapted runs (each in order of appearance)."""
    unique = list(dict.fromkeys(runs))
    return sorted(unique, key=lambda run: (run != "base", not str(run).startswith("init:"), unique.index(run)))


def metric_table(results: pd.DataFrame, metric: str = "bpb") -> pd.DataFrame:
    """Languages as rows (target last), runs as columns, the metric in the cells."""
    rows = results[results.metric == metric]
    runs = run_order(rows.run)
    table = rows.pivot_table(index=["language", "role"], columns="run", values="value", sort=False)[runs]
    table.columns.name = None
    return table.reset_index().sort_values("role", kind="stable", key=lambda r: r == "target")


def bpb_table(results: pd.DataFrame) -> pd.DataFrame:
    return metric_table(results, "bpb")


def delta_table(results: pd.DataFrame) -> pd.DataFrame:
    """Δ bpb from the base model, per adapted run, with the mean over source languages."""
    changes = transfer.gain_forgetting(results)
    roles = results.drop_duplicates("language").set_index("language").role
    deltas = changes.pivot_table(index="language", columns="run", values="delta_bpb", sort=False)
    deltas = deltas[run_order(deltas.columns)]
    deltas.columns = [f"Δ {run}" for run in deltas.columns]
    deltas = deltas.reset_index()
    deltas.insert(1, "role", deltas.language.map(roles))
    deltas = deltas.sort_values("role", kind="stable", key=lambda r: r == "target")
    means = deltas[deltas.role == "source"].mean(numeric_only=True)
    summary = pd.DataFrame([{"language": "mean of sources", "role": "source", **means.to_dict()}])
    return pd.concat([deltas, summary], ignore_index=True)


def other_metrics_table(results: pd.DataFrame) -> pd.DataFrame:
    """Every metric other than bpb / bytes per token (probes, retrieval, translation, lm-eval); the
    injected probe sets' metrics over steps have their own table (`probe_sets_table`)."""
    rows = results[~results.metric.isin(["bpb", "bytes_per_token"]) & ~results.run.str.startswith("tokenizer:")
                   & (results.role != "probe")]
    if "direction" in rows.columns:  # two directions into one language would share a cell: own table
        rows = rows[rows.direction.isna()]
    if rows.empty:
        return pd.DataFrame()
    runs = run_order(rows.run)
    table = rows.pivot_table(index=["metric", "language"], columns="run", values="value", sort=False)[runs]
    table.columns.name = None
    return table.reset_index()


PROBE_NOTE = (
    "Probe sets injected into training on a schedule (data/injection.py; inserts.jsonl logs each insert), "
    "scored every eval_every steps: canary exposure = log2(N + 1) − log2(rank of the secret among N "
    "alternatives), fact recall = share of facts whose answer beats every distractor, contamination gap = "
    "bpb of the never-injected half − bpb of the injected half."
)


def probe_sets_table(results: pd.DataFrame) -> pd.DataFrame:
    """Each injected probe set's metrics at every evaluated step: (set, metric, step) rows, runs as columns."""
    rows = results[results.role == "probe"] if "step" in results else results.iloc[:0]
    if rows.empty:
        return pd.DataFrame()
    table = rows.pivot_table(index=["language", "metric", "step"], columns="run", values="value", sort=False)
    table.columns.name = None
    table = table.reset_index().rename(columns={"language": "set"})
    return table.astype({"step": int})  # a float column in results.parquet, where other rows have no step


def translation_table(results: pd.DataFrame, metric: str = "chrf") -> pd.DataFrame:
    """Translation directions as rows, runs as columns, `metric` (chrF by default) in the cells;
    empty when no row has a direction."""
    if "direction" not in results.columns:
        return pd.DataFrame()
    rows = results[results.direction.notna() & (results.metric == metric)]
    if rows.empty:
        return pd.DataFrame()
    table = rows.pivot_table(index="direction", columns="run", values="value", sort=False)[run_order(rows.run)]
    table.columns.name = None
    return table.reset_index()


def over_seeds(rows: list[dict], order: list[str], metric: str = "chrf") -> pd.DataFrame:
    """Directions as rows, models as columns (in `order`), `metric` as mean ± half the range over the
    seeds: `rows` are translation result rows carrying a `model` key (the run without its seed)."""
    frame = pd.DataFrame([r for r in rows if r["metric"] == metric])
    cells: dict[str, dict[str, str]] = {}
    for (direction, model), group in frame.groupby(["direction", "model"], sort=False):
        mean, spread = group.value.mean(), (group.value.max() - group.value.min()) / 2
        cells.setdefault(direction, {})[model] = f"{mean:.1f} ± {spread:.1f}"
    return pd.DataFrame([{"direction": d, **{m: cells[d].get(m, "") for m in order}} for d in cells])


def conflict_synergy(results: pd.DataFrame, joint: str, single: dict[str, str], metric: str = "chrf") -> pd.DataFrame:
    """Per direction: chrF of the `joint` run (trained on every direction) minus chrF of the run
    trained on that direction alone (`single`: direction → run). Positive: the other directions
    helped (synergy); negative: they got in the way (conflict)."""
    table = translation_table(results, metric).set_index("direction")
    rows = [{"direction": d, "joint": table.at[d, joint], "single": table.at[d, run],
             "joint − single": table.at[d, joint] - table.at[d, run]} for d, run in single.items() if d in table.index]
    return pd.DataFrame(rows)


def curation_table(run_dir: Path) -> pd.DataFrame:
    """Documents removed per curation step and language (from `corpus/stats.json`)."""
    path = Path(run_dir) / "corpus" / "stats.json"
    if not path.is_file():
        return pd.DataFrame()
    stats = json.loads(path.read_text(encoding="utf-8"))
    table = pd.DataFrame(stats.get("removed", {})).fillna(0).astype(int)
    for column in ("input", "kept"):
        if column in stats:
            table.insert(0 if column == "input" else len(table.columns), column, pd.Series(stats[column]))
    return table.rename_axis("language").reset_index()


def export_table(run_dir: Path) -> pd.DataFrame:
    """Where the `export` stage wrote the adapted model, per format (from `export/export.json`)."""
    path = Path(run_dir) / "export" / "export.json"
    if not path.is_file():
        return pd.DataFrame()
    files = json.loads(path.read_text(encoding="utf-8"))["files"]
    return pd.DataFrame([{"format": to, "file": entry["path"], "method": entry["method"],
                          "quant": entry["quant"] or "", "round trip": entry["check"] or ""}
                         for to, entry in files.items()])


SELECTION_NOTE = (
    "Choices made by `auto` config keys, each on dev text: a seeded share of the target's training "
    "documents held aside (vocab/dev.json), never the held-out text scored above. Lower dev bpb wins."
)


def selection_table(run_dir: Path) -> pd.DataFrame:
    """Every `auto` choice's candidates, dev scores and winner (from `init/selection.json`)."""
    path = Path(run_dir) / "init" / "selection.json"
    if not path.is_file():
        return pd.DataFrame()
    saved = json.loads(path.read_text(encoding="utf-8"))
    return pd.DataFrame([{"key": choice["key"], "candidate": name, "dev bpb": score,
                          "chosen": "yes" if name == choice["chosen"] else "", "criterion": choice["criterion"],
                          "dev documents": saved["dev_documents"]}
                         for choice in saved["choices"] for name, score in choice["scores"].items()])


def loss_logs(run_dir: Path) -> dict[str, pd.DataFrame]:
    """Training loss per step for every `train/<run>/log.jsonl`."""
    logs = {}
    for path in sorted(Path(run_dir).glob("train/*/log.jsonl")):
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if records:
            logs[path.parent.name] = pd.DataFrame(records)[["step", "loss"]]
    return logs


TOKENIZER_METRICS = ["fertility", "parity"]  # results.parquet also holds bytes_per_token, fallback_rate, ...
EXPANSION_COLUMNS = {"bytes_per_token_change": "Δ bytes/token", "new_tokens_used": "new tokens used",
                     "new_token_rate": "new-token rate"}
EXPANSION_NOTE = (
    "Held-out text per language: bytes per token of the base (source) and expanded tokenizers; Δ = "
    "expanded / base − 1 (on the target, the gain; on a source language, how far its segmentation "
    "moved); new tokens used = share of the added tokens that occur at least once; new-token rate = "
    "share of all tokens that are added ones."
)


def _by_language(rows: pd.DataFrame) -> pd.DataFrame:
    """Languages as rows (target last), the `column` field as columns in order of appearance."""
    columns = list(dict.fromkeys(rows.column))
    table = rows.pivot_table(index=["language", "role"], columns="column", values="value", sort=False)[columns]
    table.columns.name = None
    return table.reset_index().sort_values("role", kind="stable", key=lambda r: r == "target")


def tokenizer_table(results: pd.DataFrame) -> pd.DataFrame:
    """Languages as rows, `metric tokenizer` as columns (e.g. `fertility expanded`); empty if
    the run measured no tokenizer."""
    rows = results[results.run.str.startswith("tokenizer:") & results.metric.isin(TOKENIZER_METRICS)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(column=rows.metric + " " + rows.run.str.removeprefix("tokenizer:"))
    order = {m: i for i, m in enumerate(TOKENIZER_METRICS)}
    return _by_language(rows.sort_values("metric", kind="stable", key=lambda m: m.map(order)))


def expansion_table(results: pd.DataFrame) -> pd.DataFrame:
    """The expansion report: per language, bytes per token before and after and how the new
    tokens are used (`vocab.stage.tokenizer_metrics` with an expansion); empty without one."""
    tokenizers = results[results.run.str.startswith("tokenizer:")]
    used = tokenizers[(tokenizers.run == "tokenizer:expanded") & tokenizers.metric.isin(EXPANSION_COLUMNS)]
    if used.empty:
        return pd.DataFrame()
    sizes = tokenizers[tokenizers.metric == "bytes_per_token"]
    return _by_language(pd.concat([sizes.assign(column="bytes/token " + sizes.run.str.removeprefix("tokenizer:")),
                                   used.assign(column=used.metric.map(EXPANSION_COLUMNS))]))


def _bars(table: pd.DataFrame, ylabel: str, title: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(table)) + 1.5, 4.0))
    table.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    ax.tick_params(axis="x", rotation=0)
    ax.axhline(0, color="black", linewidth=0.6)
    fig.tight_layout()
    return fig


def figures(results: pd.DataFrame, run_dir: Path | None = None) -> dict[str, object]:
    """The report's plots as matplotlib figures, keyed by file stem; each only where its data exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, object] = {}
    if (results.metric == "bpb").any():
        figs["bpb"] = _bars(bpb_table(results).set_index("language").drop(columns="role"),
                            "bits per byte (held-out, lower is better)",
                            "Held-out bits per byte per language and model")
        changes = transfer.gain_forgetting(results)
        if not changes.empty:
            deltas = delta_table(results).iloc[:-1].set_index("language").drop(columns="role")
            figs["delta"] = _bars(deltas, "Δ bpb = adapted − base (negative: better)",
                                  "Gain (target, below 0) and forgetting (sources, above 0)")
            matrix = transfer.transfer_matrix(results)
            fig, ax = plt.subplots(figsize=(1.2 * matrix.shape[1] + 3, 0.6 * matrix.shape[0] + 2))
            scale = float(abs(matrix).max().max()) or 1.0
            image = ax.imshow(matrix.to_numpy(), cmap="RdBu", vmin=-scale, vmax=scale)
            ax.set_xticks(range(matrix.shape[1]), matrix.columns)
            ax.set_yticks(range(matrix.shape[0]), matrix.index)
            for (i, j), value in pd.DataFrame(matrix.to_numpy()).stack().items():
                ax.text(j, i, f"{value:+.1%}", ha="center", va="center", fontsize=8,
                        color="white" if abs(value) > scale / 2 else "black")
            fig.colorbar(image, ax=ax, label="relative gain in bpb")
            ax.set_title("Transfer: relative bpb gain per evaluated language")
            fig.tight_layout()
            figs["transfer"] = fig
    if (results.metric == "bytes_per_token").any():
        figs["fertility"] = _bars(metric_table(results, "bytes_per_token").set_index("language").drop(columns="role"),
                                  "UTF-8 bytes per token (higher: fewer tokens)", "Tokenizer fertility per language")
    tokenizers = tokenizer_table(results)
    if not tokenizers.empty:
        fertility = tokenizers.set_index("language")[[c for c in tokenizers.columns if c.startswith("fertility ")]]
        figs["tokenizers"] = _bars(fertility, "tokens per word (held-out, lower is better)",
                                   "Fertility per language and tokenizer")
    probes = probe_sets_table(results)
    if not probes.empty:
        metrics = list(dict.fromkeys(probes.metric))
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            for (name, run), part in probes[probes.metric == metric].melt(
                    id_vars=["set", "metric", "step"], var_name="run").groupby(["set", "run"], sort=False):
                ax.plot(part.step, part.value, marker="o", label=f"{name} ({run})")
            ax.set_xlabel("step")
            ax.set_title(metric)
            ax.legend(fontsize=7)
        fig.tight_layout()
        figs["probes"] = fig
    selection = selection_table(run_dir) if run_dir else pd.DataFrame()
    sizes = selection[selection.key == "vocab.max_new_tokens"] if not selection.empty else selection
    if not sizes.empty:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        ax.plot(sizes.candidate.astype(int), sizes["dev bpb"], marker="o")
        chosen = sizes[sizes.chosen == "yes"]
        ax.plot(chosen.candidate.astype(int), chosen["dev bpb"], marker="*", markersize=14, linestyle="")
        ax.set_xscale("log")
        ax.set_xlabel("new tokens added")
        ax.set_ylabel("dev bits per byte (lower is better)")
        ax.set_title(sizes.criterion.iloc[0], fontsize=9)
        fig.tight_layout()
        figs["sizes"] = fig
    logs = loss_logs(run_dir) if run_dir else {}
    if logs:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        for name, log in logs.items():
            ax.plot(log.step, log.loss, label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (nats per token)")
        ax.set_title("Training loss")
        ax.legend(fontsize=8)
        fig.tight_layout()
        figs["loss"] = fig
    return figs


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
    if not probe_sets_table(results).empty:
        sections.append(("Probe sets over training", PROBE_NOTE, probe_sets_table(results), ["probes"]))
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
