"""langadapt's bits per byte against lm-evaluation-harness's, on the same model folder and text."""

import json

import torch
import yaml

from langadapt.evaluate.bpb import bits_per_byte
from langadapt.evaluate.harness import run_harness, write_bpb_task
from langadapt.model.build import build_gpt2, load_model, save_model
from langadapt.model.config import ModelConfig
from langadapt.vocab.tokenizer import EOS


def test_bpb_agrees_with_lm_eval_within_one_percent(tmp_path, tokenizers, shared):
    source, _, _ = tokenizers
    torch.manual_seed(0)
    folder = save_model(build_gpt2(ModelConfig(n_layer=2, n_embd=32, n_head=2, block_size=32), source),
                        source, tmp_path / "model")
    # Documents longer than the 32-token context, so both sides cut them into several windows.
    lines = (shared("ntrex128") / "newstest2019-ref.ces.txt").read_text(encoding="utf-8").splitlines()
    texts = ["\n".join(lines[i : i + 4]) for i in range(0, 40, 4)]
    task = write_bpb_task("langadapt_bpb_ces_Latn", texts, tmp_path / "tasks")
    spec = yaml.safe_load(task.read_text())
    assert spec["output_type"] == "loglikelihood_rolling"
    data = [json.loads(line) for line in open(spec["dataset_kwargs"]["data_files"]["test"], encoding="utf-8")]
    assert [d["text"] for d in data] == texts

    theirs = run_harness(folder, ["langadapt_bpb_ces_Latn"], tmp_path / "tasks")["langadapt_bpb_ces_Latn"]
    model = load_model(folder)
    ours = bits_per_byte(model, source, texts, source.token_to_id(EOS), stride=32)  # disjoint, as lm-eval
    assert ours.tokens > 3 * 32 * len(texts) / 4
    assert abs(ours.bpb - theirs["bits_per_byte"]) / theirs["bits_per_byte"] < 0.01
    # The default sliding window scores the same tokens with more context: close, not identical.
    sliding = bits_per_byte(model, source, texts, source.token_to_id(EOS))
    assert abs(sliding.bpb - ours.bpb) / ours.bpb < 0.05
