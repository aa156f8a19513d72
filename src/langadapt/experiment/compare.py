"""Compare every run of a sweep: one results table with the swept values as columns, its
tables, and a plot of each metric against every numeric swept value.

Written to `<output_dir>/<experiment>/results.parquet` and `.../report/` after the runs of a
sweep finish; every number is read back from the runs' own `results.parquet` files. A swept
`seed` is summarised one way: the report's cells are mean ± sd over the seeds with n shown
(`0.612 ± 0.021 (n=3)`), and plots show the means; results.parquet keeps every seed's rows. Figures
logged over training (canary sets') are compared at each run's last step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_with
from langadapt.report.page import Section, render

SKIPPED_METRICS = {"bytes_per_token", "train_bytes"}  # kept in the table, not compared in the report


SEED = "seed"  # the swept key averaged over in the report


def swept_keys(runs: list[tuple[Path, dict[str, str]]]) -> list[str]:
    """Every run's swept keys, in order of appearance (runs under `runs:` sweep different keys)."""
    return list(dict.fromkeys(key for _, values in runs for key in values))


def collect(runs: list[tuple[Path, dict[str, str]]]) -> pd.DataFrame:
    """Every run's results, with one column per swept key holding that run's value label (empty
    where a run does not sweep that key). A results column named like a swept key holds the run's
    own setting (a task job's `seed`): the swept label replaces it."""
    keys = swept_keys(runs)
    frames = []
    for folder, values in runs:
        frame = pd.read_parquet(folder / "results.parquet")
        frame = frame[~frame.run.astype(str).str.startswith("tokenizer:")]
        frame = frame.drop(columns=[column_name(key) for key in keys if column_name(key) in frame])
        for position, key in enumerate(keys):
            frame.insert(position, column_name(key), values.get(key, ""))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


RESULT_COLUMNS = {"experiment", "run", "language", "role", "metric", "value", "method", "init", "steps",
                  "trainable_params", "pair", "train_language", "test_language", "n_train", "step"}


def column_name(key: str) -> str:
    """A swept key's column: its name, or `sweep:<name>` where that is a results column already."""
    return f"sweep:{key}" if key in RESULT_COLUMNS else key


def _numeric(labels: pd.Series) -> pd.Series | None:
    values = pd.to_numeric(labels, errors="coerce")
    return values if values.notna().all() and values.nunique() > 1 else None


def _mean_sd(values: pd.Series) -> str:
    mean, n = values.mean(), values.count()
    return f"{mean:.3f} ± {values.std():.3f} (n={n})" if n > 1 else f"{mean:.3f} (n=1)"


def comparison_table(results: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Rows: swept values × model (base, adapted ...); columns: languages; cells: the metric, or
    its mean ± sd over a swept `seed` (n shown). Keys no run with this metric sweeps are left out."""
    rows = results[results.metric == metric]
    keys = [key for key in keys if (rows[key] != "").any()]
    index = [key for key in keys if key != SEED] + (["run"] if rows.run.nunique() > 1 else [])
    if not index:
        rows, index = rows.assign(metric=metric), ["metric"]
    seeded = SEED in keys
    table = rows.pivot_table(index=index, columns="language", values="value", sort=False,
                             aggfunc=_mean_sd if seeded else "mean")
    table.columns.name = None
    return table.reset_index()  # in sweep order, each run's models as its results list them


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Each run's figures of its final model: rows logged over training (with a `step`, as a training
    job's canary sets are) only at the run's last step, so a cell's n counts seeds, not evaluations."""
    if "step" not in results:
        return results
    last = results.groupby("experiment").step.transform("max")
    return results[results.step.isna() | (results.step == last)]


def seed_means(results: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The results averaged over a swept `seed` (what the plots show) and the keys left."""
    if SEED not in keys:
        return results, keys
    rest = [key for key in keys if key != SEED]
    means = results.groupby([*rest, "run", "language", "metric"], sort=False, dropna=False).value.mean()
    return means.reset_index(), rest


def _plots(results: pd.DataFrame, keys: list[str], metric: str) -> dict[str, object]:
    """`metric` against each numeric swept key: one panel per language, one line per setting of
    the other keys (and per model, where a run holds several)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    rows = results[results.metric == metric]
    keys = [key for key in keys if (rows[key] != "").any()]
    for key in keys:
        x = _numeric(rows[key])
        if x is None:
            continue
        rows = rows.assign(**{f"_{key}": x})
        groups = [k for k in keys if k != key] + (["run"] if rows.run.nunique() > 1 else [])
        languages = list(dict.fromkeys(rows.language))
        fig, axes = plt.subplots(1, len(languages), figsize=(4.5 * len(languages), 3.8), squeeze=False)
        for ax, language in zip(axes[0], languages, strict=True):
            subset = rows[rows.language == language]
            for name, line in subset.groupby(groups, sort=False) if groups else [((), subset)]:
                line = line.sort_values(f"_{key}")
                parts = name if isinstance(name, tuple) else (name,)
                label = ", ".join(f"{g}={v}" for g, v in zip(groups, parts, strict=True)) or metric
                ax.plot(line[f"_{key}"], line.value, marker="o", label=label)
            ax.set_xscale("log" if x.min() > 0 and x.max() / x.min() >= 8 else "linear")
            ax.set_xlabel(key)
            ax.set_ylabel(metric)
            ax.set_title(language)
            ax.legend(fontsize=7)
        fig.tight_layout()
        figs[f"{metric}-vs-{key}"] = fig
    return figs


def kept_table(runs: list[tuple[Path, dict[str, str]]]) -> pd.DataFrame:
    """Rows: swept values; columns: languages; cells: the documents curation kept for training (each
    experiment's `corpus/stats.json`), so a filter ablation shows what each filter set costs in text."""
    rows = []
    for folder, values in runs:
        path = folder / "corpus" / "stats.json"
        if path.is_file():  # a training job has no curate stage
            kept = json.loads(path.read_text(encoding="utf-8")).get("kept", {})
            rows.append({**{column_name(key): label for key, label in values.items()}, **kept})
    return pd.DataFrame(rows)


def write_comparison(folder: Path, runs: list[tuple[Path, dict[str, str]]]) -> str:
    """Write the sweep's combined results table and report into `folder`; return the markdown."""
    everything = collect(runs)
    write_with(folder / "results.parquet", lambda tmp: everything.to_parquet(tmp, index=False))
    results = final_rows(everything)
    keys = [column_name(key) for key in swept_keys(runs)]
    plotted, plot_keys = seed_means(results, keys)
    kept = kept_table(runs)
    sections: list[Section] = [("documents kept", "training documents per language after curation", kept, [])] \
        if not kept.empty else []
    figs: dict[str, object] = {}
    for metric in dict.fromkeys(results.metric):
        if metric in SKIPPED_METRICS:
            continue
        plots = _plots(plotted, plot_keys, metric)
        figs.update(plots)
        sections.append((f"{metric} per run", "lower is better" if metric == "bpb" else "",
                         comparison_table(results, keys, metric), list(plots)))
    return render(f"{folder.name}: {len(runs)} runs compared", sections, figs, folder / "report")
