"""Gain, forgetting and the transfer matrix, all from the results table (metric `bpb`).

Sign convention (one for every table and plot): Δ bpb = adapted − base, in bits per byte.
Lower bpb is better, so a negative Δ is an improvement. *Gain* on a language is −Δ (positive
when adaptation helped it); *forgetting* is +Δ on a language the run was not trained on
(positive when adaptation hurt it).

Transfer matrix: one row per adapted run (trained on the language(s) in `trained_on`), one
column per evaluated language, cells = relative gain (base − run) / base. Tags, per row, with
threshold τ (default 1 % relative gain):
- **altruistic** — some language the run was *not* trained on gains more than τ;
- **selfish** — a trained language gains more than τ, but no other language does;
- **stagnant** — no language gains more than τ.
"""

from __future__ import annotations

import pandas as pd

from langadapt.errors import LangadaptError

THRESHOLD = 0.01


def _bpb(results: pd.DataFrame) -> pd.DataFrame:
    """bpb as a (experiment, run) × language table."""
    bpb = results[results.metric == "bpb"]
    if bpb.empty:
        raise LangadaptError("the results table has no `bpb` rows", fix="run `langadapt eval` on the run first.")
    keys = ["experiment", "run"] if "experiment" in bpb else ["run"]
    return bpb.pivot_table(index=keys, columns="language", values="value", sort=False)


def trained_on(results: pd.DataFrame, base: str = "base") -> dict[tuple, list[str]]:
    """Adapted runs (not the base, not an untrained `init:` model) and the target language(s)
    they were trained on, read from the `role` column."""
    out: dict[tuple, list[str]] = {}
    keys = ["experiment", "run"] if "experiment" in results else ["run"]
    for key, rows in results.groupby(keys, sort=False):
        run = key[-1]
        if run == base or str(run).startswith("init:") or "steps" in rows and (rows.steps == 0).all():
            continue
        out[key] = sorted(set(rows.loc[rows.role == "target", "language"]))
    return out


def gain_forgetting(results: pd.DataFrame, base: str = "base") -> pd.DataFrame:
    """Per adapted run and language: base bpb, run bpb, Δ, gain (trained languages) or
    forgetting (all other languages)."""
    table = _bpb(results)
    rows = []
    for key, languages in trained_on(results, base).items():
        base_key = (*key[:-1], base)
        if base_key not in table.index:
            raise LangadaptError(f"no `{base}` run to compare {key[-1]!r} against",
                                 fix=f"evaluate the base model too, or name the base run (base={base!r}).")
        for language in table.columns:
            before, after = table.loc[base_key, language], table.loc[key, language]
            if pd.isna(before) or pd.isna(after):
                continue
            delta = after - before
            trained = language in languages
            rows.append({**dict(zip(table.index.names, key, strict=True)), "language": language,
                         "trained_on": "+".join(languages), "trained": trained,
                         "base_bpb": before, "bpb": after, "delta_bpb": delta,
                         "gain": -delta if trained else None, "forgetting": None if trained else delta})
    return pd.DataFrame(rows)


def transfer_matrix(results: pd.DataFrame, base: str = "base") -> pd.DataFrame:
    """Rows: adapted runs (labelled `run ← trained languages`); columns: languages; cells: relative gain."""
    changes = gain_forgetting(results, base)
    if changes.empty:
        return pd.DataFrame()
    changes["relative_gain"] = -changes.delta_bpb / changes.base_bpb
    changes["row"] = changes.run + " ← " + changes.trained_on
    if "experiment" in changes and changes.experiment.nunique() > 1:
        changes["row"] = changes.experiment + "/" + changes.row
    matrix = changes.pivot_table(index="row", columns="language", values="relative_gain", sort=False)
    matrix.columns.name = None
    return matrix


def transfer_tags(results: pd.DataFrame, base: str = "base", threshold: float = THRESHOLD) -> pd.DataFrame:
    """One tag per adapted run by the rule in the module docstring."""
    changes = gain_forgetting(results, base)
    rows = []
    for key, group in changes.groupby([c for c in ("experiment", "run") if c in changes], sort=False):
        relative = -group.delta_bpb / group.base_bpb
        helps_self = bool((relative[group.trained] > threshold).any())
        helps_others = bool((relative[~group.trained] > threshold).any())
        tag = "altruistic" if helps_others else "selfish" if helps_self else "stagnant"
        rows.append({"run": key[-1], "trained_on": group.trained_on.iloc[0],
                     "self_gain": relative[group.trained].mean(), "others_best_gain": relative[~group.trained].max(),
                     "tag": tag})
    return pd.DataFrame(rows)
