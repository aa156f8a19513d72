"""`langadapt eval`: score the models of a run folder (or one model folder) and merge the
figures into a results table, one row per (run, language, metric, value).

Which data each metric reads is part of the request, never a fixed path: held-out text per
language (a run folder's own `corpus/heldout.jsonl` by default), probe datasets, parallel files
for retrieval and translation, and lm-eval task names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from langadapt.atomic import write_with
from langadapt.corpus.document import read_documents, read_lines, read_parallel
from langadapt.errors import LangadaptError
from langadapt.evaluate.bpb import bpb_rows
from langadapt.evaluate.config import JobEvaluateConfig
from langadapt.evaluate.harness import write_bpb_task
from langadapt.evaluate.probes import ProbeTask
from langadapt.languages import normalise
from langadapt.model.card import ModelCard, read_card
from langadapt.paths import FOLDER, MODEL, OUTPUT, TEXT, check_path
from langadapt.registry import PROBES

log = logging.getLogger("langadapt")

KEY = ["run", "language", "metric"]


@dataclass
class EvalRequest:
    texts: dict[str, list[str]] = field(default_factory=dict)  # language → held-out texts for bpb
    stride: int | None = None
    probes: dict[str, ProbeTask] = field(default_factory=dict)  # probe name → its data
    retrieval: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # language → (its file, pivot file)
    # direction `src-tgt` (or a target language alone) → (sources, references)
    translation: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    prompt: str | None = None  # None: each model's own template (its card), else translation.DEFAULT_PROMPT
    max_new_tokens: int = 64
    num_beams: int = 1  # 1: greedy
    batch_size: int = 16  # translation: sentences decoded together (larger on a GPU)
    outputs_dir: Path | None = None  # where each model's translations are written, one TSV per direction
    harness: list[str] = field(default_factory=list)
    tasks_dir: Path | None = None
    limit: int | None = None  # at most this many sentences per retrieval/translation set


def read_texts(path: Path, language: str | None = None) -> dict[str, list[str]]:
    """Texts by language: a JSONL of documents (id/text/lang), or a .txt file of one text per line
    (then `language` names it)."""
    path = Path(path)
    if not path.is_file():
        raise LangadaptError(f"text file not found: {path}", fix="pass a JSONL of documents or a .txt file.")
    if path.suffix == ".jsonl":
        texts: dict[str, list[str]] = {}
        for doc in read_documents(path):
            if language in (None, doc.lang):
                texts.setdefault(doc.lang, []).append(doc.text)
        return texts
    if not language:
        raise LangadaptError(f"{path} is plain text, so its language must be given",
                             fix="write it as LANG=FILE, e.g. hsb_Latn=heldout.txt.")
    return {language: read_lines(path)}


def _language_and_files(spec: str, option: str) -> tuple[str, list[Path]]:
    language, sep, files = spec.partition("=")
    if not sep or not files:
        raise LangadaptError(f"{option} {spec!r} is not LANG=FILE[,FILE]",
                             fix=f"write e.g. {option} hsb_Latn=a.txt,b.txt")
    return language, [Path(f) for f in files.split(",")]


def _code(language: str, spec: str, option: str) -> str:
    """The language of a `LANG=...` flag as `xxx_Scrp`, or an error naming the flag (rows for a
    language called "english" would never meet the rest of the results)."""
    try:
        return normalise(language)
    except LangadaptError as err:
        raise LangadaptError(f"{option} {spec!r}: {err.what}", fix=err.fix) from None


def _pairs(specs: list[str], option: str) -> dict[str, tuple[Path, Path]]:
    pairs = {}
    for spec in specs:
        language, files = _language_and_files(spec, option)
        if len(files) != 2:
            raise LangadaptError(f"{option} {spec!r} needs two files", fix=f"write {option} LANG=FILE,PIVOT_FILE")
        key = _code(language, spec, option) if option == "--retrieval" else language
        pairs[key] = (check_path(files[0], TEXT, option), check_path(files[1], TEXT, option))
    return pairs


def build_request(
    texts: list[str], stride: int | None = None, sib200: Path | None = None, probe_train: str = "",
    probe_test: list[str] | None = None, pos: Path | None = None, retrieval: list[str] | None = None,
    translation: list[str] | None = None, prompt: str | None = None, harness: list[str] | None = None,
    tasks_dir: Path | None = None, limit: int | None = None, max_new_tokens: int = 64, num_beams: int = 1,
    batch_size: int = 16,
) -> EvalRequest:
    """An EvalRequest from command-line style specs (`LANG=FILE`, `LANG=FILE,PIVOT`,
    `SRC-TGT=FILE,REF`); every path
    is checked before any model is loaded, and an error names its flag."""
    if tasks_dir is not None:
        check_path(tasks_dir, OUTPUT, "--tasks-dir")
    request = EvalRequest(stride=stride, prompt=prompt, harness=harness or [], tasks_dir=tasks_dir, limit=limit,
                          max_new_tokens=max_new_tokens, num_beams=num_beams, batch_size=batch_size)
    for spec in texts:
        language, files = _language_and_files(spec, "--text") if "=" in spec else (None, [Path(spec)])
        language = _code(language, spec, "--text") if language is not None else None
        for found, found_texts in read_texts(check_path(files[0], TEXT, "--text"), language).items():
            request.texts.setdefault(found, []).extend(found_texts)
    if sib200:
        check_path(sib200, FOLDER, "--sib200")
        if not probe_train:
            raise LangadaptError("--sib200 needs --probe-train LANG", fix="name the language the probe trains on.")
        tested = [_code(code, code, "--probe-test") for code in probe_test or []]
        request.probes["sib200"] = ProbeTask(Path(sib200), _code(probe_train, probe_train, "--probe-train"), tested,
                                             limit=limit)
    if pos:
        check_path(pos, FOLDER, "--pos")
        request.probes["pos"] = ProbeTask(Path(pos), limit=limit)
    request.retrieval = _pairs(retrieval or [], "--retrieval")
    request.translation = _pairs(translation or [], "--translate")
    return request


def find_models(target: Path) -> dict[str, Path]:
    """A model folder → {its name: it}; a run folder → every loadable `train/<run>/final`. A model
    folder langadapt cannot load (pickle-only or truncated weights, remote code) is named first."""
    target = Path(target)
    if (target / "config.json").is_file():
        return {target.parent.name if target.name == "final" else target.name: check_path(target, MODEL, "TARGET")}
    models = {p.parent.name: p for p in sorted(target.glob("train/*/final")) if (p / "config.json").is_file()}
    for adapter in sorted(target.glob("train/*/final/adapter_config.json")):
        log.warning("skipping %s: a peft adapter without a saved base model cannot be loaded alone", adapter.parent)
    if not models:
        raise LangadaptError(f"no model folders in {target}",
                             fix="pass a run folder with train/<run>/final/ or a transformers model folder.")
    return models


def evaluate_job(cfg: JobEvaluateConfig, job: Path, base: Path | None, gguf_file: str | None) -> list[dict]:
    """What a training job's `evaluate:` section asks, of its final model (run `final`) and, with
    `evaluate.base`, of the `base` it started from, prompted with the final model's card so both
    are asked the same way; translations are kept in `<job>/translations/<run>/`."""
    probes = {f"sib200:{language}": ProbeTask(cfg.sib200, language, [language], limit=cfg.probe_limit)
              for language in cfg.probe_languages}
    if cfg.pos is not None:
        probes["pos"] = ProbeTask(cfg.pos, limit=cfg.probe_limit)
    request = EvalRequest(probes=probes, translation=dict(cfg.translate), limit=cfg.limit,
                          max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                          outputs_dir=job / "translations")
    rows = evaluate_model("final", job / "final", request)
    if cfg.base:
        rows += evaluate_model("base", base, request, gguf_file, read_card(job / "final"))
    return rows


def evaluate_model(name: str, path: Path, request: EvalRequest, gguf_file: str | None = None,
                   card: ModelCard | None = None) -> list[dict]:
    """Every metric the request asks for, on one model folder (or a GGUF file in it). `card`
    replaces the folder's own card, e.g. to prompt a base with the template its fine-tune learnt."""
    from langadapt.evaluate.harness import run_harness  # lm-eval is optional: imported when asked for
    from langadapt.evaluate.retrieval import retrieval_accuracy
    from langadapt.evaluate.translation import prompt_for, translate, translation_scores
    from langadapt.model.build import default_device, load_model
    from langadapt.vocab.tokenizer import end_of_text, load_tokenizer

    model = load_model(path, gguf_file).to(default_device())
    tokenizer = load_tokenizer(path / (gguf_file or "tokenizer.json"))
    card = card or read_card(path)
    rows = bpb_rows(model, tokenizer, request.texts, stride=request.stride)
    for probe_name, task in request.probes.items():  # `sib200:<language>`: one probe of several
        rows += PROBES[probe_name.split(":")[0]](model, tokenizer, task)
    for language, files in request.retrieval.items():
        source, pivot = read_parallel(*files, limit=request.limit)
        rows += [{"language": language, "metric": metric, "value": value}
                 for metric, value in retrieval_accuracy(model, tokenizer, source, pivot).items()]
    for key, files in request.translation.items():
        source_lang, language = translation_direction(key)
        sources, references = read_parallel(*files, limit=request.limit)
        prompt = request.prompt or prompt_for(card, source_lang, language)
        hypotheses = translate(model, tokenizer, sources, end_of_text(tokenizer, model.config.eos_token_id),
                               prompt, request.max_new_tokens, request.batch_size, request.num_beams)
        if request.outputs_dir is not None:
            table = pd.DataFrame({"source": sources, "reference": references, "hypothesis": hypotheses})
            write_with(request.outputs_dir / name / f"{key}.tsv",
                       lambda tmp, table=table: table.to_csv(tmp, sep="\t", index=False))
        direction = key if source_lang else None
        rows += [{"language": language, "metric": metric, "value": value, "direction": direction}
                 for metric, value in translation_scores(hypotheses, references).items()]
    if request.harness:
        for task, metrics in run_harness(path, request.harness, request.tasks_dir).items():
            language = task.removeprefix("langadapt_bpb_")
            rows += [{"language": language, "metric": f"lm_eval:{metric}", "value": value}
                     for metric, value in metrics.items()]
    return [{"run": name, **row} for row in rows]


def translation_direction(key: str) -> tuple[str | None, str]:
    """`src-tgt` → (src, tgt), normalised; a single language (the older `--translate LANG=...`) →
    (None, it)."""
    from langadapt.languages import normalise

    if "-" not in key:
        return None, key
    source, target = key.split("-", 1)
    return normalise(source), normalise(target)


def merge_results(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """New rows replace old rows with the same (run, language, metric, and direction where rows
    have one); roles and config columns of a run are copied from its existing rows (`eval` for
    languages the run never saw)."""
    if old is None or old.empty:
        new.insert(2, "role", "eval")
        return new
    key = KEY + ["direction"] if "direction" in new.columns or "direction" in old.columns else KEY
    old, new = old.copy(), new.copy()
    for frame in (old, new):
        if "direction" in key and "direction" not in frame.columns:
            frame["direction"] = None
    roles = old.drop_duplicates("language").set_index("language").role
    new.insert(2, "role", new.language.map(roles).fillna("eval"))
    config = [c for c in old.columns if c not in {*key, "role", "value"}]
    per_run = old.drop_duplicates("run").set_index("run")[config]
    new = new.join(per_run, on="run")
    kept = old.merge(new[key], on=key, how="left", indicator=True)
    kept = kept[kept._merge == "left_only"].drop(columns="_merge")
    columns = [*old.columns, *(c for c in new.columns if c not in old.columns)]
    return pd.concat([kept, new], ignore_index=True)[columns]


def evaluate(target: Path, request: EvalRequest, out: Path | None = None) -> Path:
    """Evaluate a run folder's models (or one model folder), merge into the results table; return its path."""
    target = Path(target)
    is_run = (target / "results.parquet").is_file() or (target / "corpus").is_dir()
    out = Path(out) if out else (target / "results.parquet" if is_run else target / "eval" / "results.parquet")
    if is_run and not request.texts and (target / "corpus" / "heldout.jsonl").is_file():
        request.texts = read_texts(target / "corpus" / "heldout.jsonl")
    if "bpb" in request.harness:  # shorthand: lm-eval tasks written from the same held-out texts
        request.tasks_dir = request.tasks_dir or out.parent / "eval" / "harness_tasks"
        names = [write_bpb_task(f"langadapt_bpb_{lang}", texts, request.tasks_dir).stem
                 for lang, texts in request.texts.items()]
        request.harness = [task for task in request.harness if task != "bpb"] + names
    request.outputs_dir = request.outputs_dir or out.parent / "translations"
    rows = [row for name, path in find_models(target).items() for row in evaluate_model(name, path, request)]
    if not rows:
        raise LangadaptError("nothing to evaluate: no texts, probes, parallel files or harness tasks given",
                             fix="pass --text, --sib200, --pos, --retrieval, --translate or --harness.")
    old = pd.read_parquet(out) if out.is_file() else None
    results = merge_results(old, pd.DataFrame(rows))
    write_with(out, lambda tmp: results.to_parquet(tmp, index=False))
    return out
