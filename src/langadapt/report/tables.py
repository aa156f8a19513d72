"""The report's tables, each computed from the results table (or a run folder's own records:
curation stats, exports, choices, training logs) and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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
    injected canary sets' metrics over steps have their own table (`canary_sets_table`)."""
    rows = results[~results.metric.isin(["bpb", "bytes_per_token"]) & ~results.run.str.startswith("tokenizer:")
                   & (results.role != "canary")]
    if "direction" in rows.columns:  # two directions into one language would share a cell: own table
        rows = rows[rows.direction.isna()]
    if rows.empty:
        return pd.DataFrame()
    runs = run_order(rows.run)
    table = rows.pivot_table(index=["metric", "language"], columns="run", values="value", sort=False)[runs]
    table.columns.name = None
    return table.reset_index()


CANARY_NOTE = (
    "Canary sets injected into training on a schedule (data/injection.py; inserts.jsonl logs each insert), "
    "scored every eval_every steps: canary exposure = log2(N + 1) − log2(rank of the secret among N "
    "alternatives), fact recall = share of facts whose answer beats every distractor, contamination gap = "
    "bpb of the never-injected half − bpb of the injected half."
)


def canary_sets_table(results: pd.DataFrame) -> pd.DataFrame:
    """Each injected canary set's metrics at every evaluated step: (set, metric, step) rows, runs as columns."""
    rows = results[results.role == "canary"] if "step" in results else results.iloc[:0]
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
    tokens are used (`vocab.build.tokenizer_metrics` with an expansion); empty without one."""
    tokenizers = results[results.run.str.startswith("tokenizer:")]
    used = tokenizers[(tokenizers.run == "tokenizer:expanded") & tokenizers.metric.isin(EXPANSION_COLUMNS)]
    if used.empty:
        return pd.DataFrame()
    sizes = tokenizers[tokenizers.metric == "bytes_per_token"]
    return _by_language(pd.concat([sizes.assign(column="bytes/token " + sizes.run.str.removeprefix("tokenizer:")),
                                   used.assign(column=used.metric.map(EXPANSION_COLUMNS))]))
