"""The report's plots, as matplotlib figures, from the same tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from langadapt.evaluate import transfer
from langadapt.report.tables import (
    bpb_table,
    canary_sets_table,
    delta_table,
    loss_logs,
    metric_table,
    selection_table,
    tokenizer_table,
)


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
    probes = canary_sets_table(results)
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
        figs["canaries"] = fig
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
