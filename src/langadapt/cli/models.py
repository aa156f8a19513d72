"""The commands on model folders: `export` (merged folder, GGUF), `eval` and `translate`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markdown import Markdown

from langadapt.cli.common import console, guarded, listed, show
from langadapt.paths import FOLDER, MODEL, OUTPUT, OUTPUT_FILE, TEXT, check_path


def export_(
    model_dir: Path = typer.Argument(..., help="A model folder (a run's final/), a peft adapter/ folder, or a "
                                               "training run folder (its final/)."),
    out: Path = typer.Argument(..., help="Folder to write (hf, merged) or GGUF file (gguf)."),
    to: str = typer.Option("merged", "--to", help="hf: the folder as it is (an adapter stays a peft folder); "
                                                  "merged: adapters folded into a stock transformers folder; "
                                                  "gguf: one GGUF file for llama.cpp / Ollama / LM Studio."),
    quant: str = typer.Option("f16", help="GGUF tensor type: f16, q8_0 or f32 (1-D tensors stay f32)."),
    base: Path = typer.Option(None, help="The base model folder of a peft adapter (default: the one it names)."),
    check: bool = typer.Option(True, help="gguf: reload the file with transformers and compare ids and logits."),
    check_text: Path = typer.Option(None, help="gguf: text to check on, one text a line (default: text spanning "
                                               "the vocabulary and the model's new tokens)."),
) -> None:
    """Export a model as a stock transformers folder (adapters merged) or a GGUF file."""
    from langadapt.corpus.document import read_lines
    from langadapt.model.export import export_model

    def action():
        check_path(model_dir, FOLDER, "MODEL_DIR")
        check_path(out, OUTPUT_FILE if to == "gguf" else OUTPUT, "OUT")
        if base is not None:
            check_path(base, MODEL, "--base")
        texts = None
        if check_text is not None:
            check_path(check_text, TEXT, "--check-text")
            texts = list(read_lines(check_text))
        done = export_model(model_dir, to, out, quant, base, check, texts)
        if done.check is not None:
            console.print(f"Round trip through transformers' GGUF loader: {done.check}", highlight=False)
        console.print(f"Exported ({to}{f', {quant}' if to == 'gguf' else ''}): [bold]{done.path}[/]")

    guarded(action)


def eval_(
    target: Path = typer.Argument(..., help="A run folder (its train/*/final models) or one model folder."),
    text: list[str] = typer.Option([], help="Held-out text for bpb: a documents JSONL, or LANG=FILE.txt (one text "
                                            "a line). Default for a run folder: its corpus/heldout.jsonl."),
    stride: int = typer.Option(None, help="Sliding-window stride in tokens for long texts (default: context/2)."),
    sib200: Path = typer.Option(None, help="SIB-200 folder (<lang>/{train,test}.tsv) for the topic probe."),
    probe_train: str = typer.Option("", help="Language the SIB-200 probe is trained on."),
    probe_test: str = typer.Option("", help="Comma-separated languages it is tested on (default: the same)."),
    pos: Path = typer.Option(None, help="UD treebank folder (*-ud-{train,test}.conllu) for the POS probe."),
    retrieval: list[str] = typer.Option([], help="LANG=FILE,PIVOT_FILE: line-parallel files for retrieval."),
    translate: list[str] = typer.Option([], help="SRC-TGT=SOURCE_FILE,REFERENCE_FILE (or TGT=...): chrF, chrF++ "
                                                 "and BLEU of the model's translations, written beside the scores."),
    prompt: str = typer.Option(None, help="Translation prompt, {source} replaced by the sentence (default: the "
                                          "model's training template, else '{source} = ')."),
    max_new_tokens: int = typer.Option(64, help="Longest translation generated, in tokens."),
    beams: int = typer.Option(1, help="Beam size for translation (1: greedy)."),
    batch_size: int = typer.Option(16, help="Sentences decoded together when translating (larger on a GPU)."),
    harness: str = typer.Option(None, help="Comma-separated lm-eval tasks; `bpb` = tasks written from the texts."),
    tasks_dir: Path = typer.Option(None, help="Folder of lm-eval task YAMLs (also where `bpb` tasks are written)."),
    limit: int = typer.Option(None, help="At most this many examples per probe / parallel set (quick runs)."),
    out: Path = typer.Option(None, help="Results table to merge into (default: the run's results.parquet)."),
) -> None:
    """Evaluate models (bpb, probes, retrieval, translation, lm-eval) and merge into the results table."""
    import pandas as pd

    from langadapt.evaluate.suite import build_request, evaluate
    from langadapt.report.page import report_run
    from langadapt.report.tables import markdown_table

    def action():
        request = build_request(text, stride, sib200, probe_train, listed(probe_test), pos, retrieval, translate,
                                prompt, listed(harness), tasks_dir, limit, max_new_tokens, beams, batch_size)
        check_path(target, FOLDER, "TARGET")
        if out is not None:
            check_path(out, OUTPUT_FILE, "--out")
        path = evaluate(target, request, out)
        if path == target / "results.parquet":  # a run folder: its report is rebuilt with the new rows
            console.print(Markdown(report_run(target)))
        else:
            console.print(Markdown(markdown_table(pd.read_parquet(path)[["run", "language", "metric", "value"]])))
        show("Results: ", path)

    guarded(action)


def translate_file(
    model: Path = typer.Argument(..., help="A model folder (its card's template prompts it)."),
    source: Path = typer.Argument(..., help="Text to translate, one sentence a line (.txt, or .tsv with `text`)."),
    to: str = typer.Option(..., "--to", help="Language to translate into, e.g. eng_Latn."),
    from_: str = typer.Option(None, "--from", help="Language of the input (default: the other language the "
                                                  "model was trained on)."),
    out: Path = typer.Option(None, help="Where to write the translations (default: print them)."),
    max_new_tokens: int = typer.Option(64, help="Longest translation generated, in tokens."),
    batch_size: int = typer.Option(16, help="Sentences decoded together."),
    beams: int = typer.Option(1, help="Beam size (1: greedy)."),
) -> None:
    """Translate a file line by line with batched decoding (back-translation makes pairs this way)."""
    from langadapt.atomic import write_text
    from langadapt.corpus.document import read_lines
    from langadapt.evaluate.translation import source_language, translate_with
    from langadapt.languages import normalise

    def action():
        check_path(source, TEXT, "SOURCE")
        if out is not None:
            check_path(out, OUTPUT_FILE, "--out")
        check_path(model, MODEL, "MODEL")
        target = normalise(to)
        origin = normalise(from_) if from_ else source_language(model, target)
        lines = translate_with(model, read_lines(source), origin, target, max_new_tokens, batch_size, beams)
        if out is None:
            console.print("\n".join(lines), markup=False, highlight=False)
        else:
            write_text(out, "".join(line + "\n" for line in lines))
            show("Translations: ", out)

    guarded(action)


