"""Tables and a plot from the results table, and nothing else: every number shown here was
computed by the run and read back from `results.parquet`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from langadapt.atomic import write_text, write_with

SIGN_CONVENTION = (
    "Δ bpb = adapted − base, in bits per byte (lower bpb is better). On the target language a "
    "negative Δ is the gain from adaptation; on a source language a positive Δ is forgetting."
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


def bpb_table(results: pd.DataFrame) -> pd.DataFrame:
    """Languages as rows (target last), runs as columns, bpb in the cells."""
    bpb = results[results.metric == "bpb"]
    runs = list(dict.fromkeys(bpb.run))
    table = bpb.pivot_table(index=["language", "role"], columns="run", values="value", sort=False)[runs]
    return table.reset_index().sort_values("role", kind="stable", key=lambda r: r == "target")


def delta_table(results: pd.DataFrame) -> pd.DataFrame:
    """Change in bpb from the base model, per adapted run, with source-language means."""
    table = bpb_table(results)
    adapted = [c for c in table.columns[2:] if c != "base" and not c.startswith("init:")]
    deltas = table[["language", "role"]].copy()
    for run in adapted:
        deltas[f"Δ {run}"] = table[run] - table["base"]
    means = deltas[deltas.role == "source"].mean(numeric_only=True)
    summary = pd.DataFrame([{"language": "mean of sources", "role": "source", **means.to_dict()}])
    return pd.concat([deltas, summary], ignore_index=True)


TOKENIZER_METRICS = ["fertility", "parity"]  # results.parquet also holds bytes_per_token, fallback_rate, ...


def tokenizer_table(results: pd.DataFrame) -> pd.DataFrame:
    """Languages as rows, `metric tokenizer` as columns (e.g. `fertility expanded`); empty if
    the run measured no tokenizer."""
    rows = results[results.run.str.startswith("tokenizer:") & results.metric.isin(TOKENIZER_METRICS)]
    if rows.empty:
        return pd.DataFrame()
    names = list(dict.fromkeys(rows.run.str.removeprefix("tokenizer:")))
    rows = rows.assign(column=rows.metric + " " + rows.run.str.removeprefix("tokenizer:"))
    columns = [f"{m} {n}" for m in TOKENIZER_METRICS for n in names if f"{m} {n}" in set(rows.column)]
    table = rows.pivot_table(index=["language", "role"], columns="column", values="value", sort=False)[columns]
    return table.reset_index().sort_values("role", kind="stable", key=lambda r: r == "target")


def plot_bpb(results: pd.DataFrame, path: Path) -> Path:
    table = bpb_table(results).set_index("language").drop(columns="role")
    return _bar_plot(table, "bits per byte (held-out, lower is better)",
                     "Held-out bits per byte per language and model", path)


def plot_fertility(results: pd.DataFrame, path: Path) -> Path:
    table = tokenizer_table(results).set_index("language")
    table = table[[c for c in table.columns if c.startswith("fertility ")]]
    return _bar_plot(table, "tokens per word (held-out, lower is better)", "Fertility per language and tokenizer",
                     path)


def _bar_plot(table: pd.DataFrame, ylabel: str, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(table)), 4.0))
    table.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=2)
    ax.tick_params(axis="x", rotation=0)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def write_report(results: pd.DataFrame, out: Path) -> str:
    """Write `tables.md`, `bpb.png` (and `fertility.png` when tokenizers were measured) into
    `out`; return the markdown."""
    experiment = results["experiment"].iloc[0] if "experiment" in results else "experiment"
    target = results.loc[results.role == "target", "language"].iloc[0]
    sections = [f"# {experiment}: adapting to {target}"]
    if (results.metric == "bpb").any():
        sections += ["## Held-out bits per byte", markdown_table(bpb_table(results))]
        deltas = delta_table(results)
        if deltas.shape[1] > 2:  # some run was trained after expansion
            sections += ["## Gain and forgetting", SIGN_CONVENTION, markdown_table(deltas)]
        sections.append("![bpb per language per model](bpb.png)")
        plot_bpb(results, out / "bpb.png")
    tokenizers = tokenizer_table(results)
    if not tokenizers.empty:
        sections += [
            "## Tokenizers on held-out text",
            FERTILITY_NOTE,
            markdown_table(tokenizers),
            "![fertility per language per tokenizer](fertility.png)",
        ]
        plot_fertility(results, out / "fertility.png")
    text = "\n\n".join(sections) + "\n"
    write_text(out / "tables.md", text)
    return text


def report_run(run_dir: Path) -> str:
    """Rebuild the report of a finished run from its results table."""
    results = pd.read_parquet(Path(run_dir) / "results.parquet")
    return write_report(results, Path(run_dir) / "report")
