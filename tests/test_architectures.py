"""Every causal-LM model type × the main adaptation methods, on an expanded vocabulary.

Each type is a tiny random model (tests/tiny_models.py) grown by the Upper Sorbian expansion of
the shared test tokenizer (mean-initialised new rows), then adapted with `full`, `lora`,
`layra` and the recipe `embeddings+layra` (each stage exported to a stock model before the next,
as `langadapt train` does) and trained a few steps on a few Sorbian blocks: the loss on those
blocks falls, and the adapted model exports to a stock model with the trained model's logits.
Random models start at the uniform loss, so a few steps show learning only on text they see.
Model types that are not causal LMs are refused with their reason (test_base.py holds the
user-facing jobs; here the decision itself, from configs alone).
"""

import copy

import pandas as pd
import pytest
import torch
import yaml
from tiny_models import BLOCK, CAUSAL_TYPES, METHODS, REFUSED, adapt, tiny_config, tiny_model
from transformers import AutoConfig, AutoModelForCausalLM

from langadapt.config import load_config
from langadapt.data.packing import pack
from langadapt.errors import LangadaptError
from langadapt.model.build import save_model
from langadapt.model.card import ModelCard, read_card
from langadapt.model.config import LoraConfig
from langadapt.model.kind import model_kind, require_causal
from langadapt.registry import ADAPTERS
from langadapt.train.config import TrainJobConfig
from langadapt.train.job import run_train_job
from langadapt.vocab.init import resize_and_init
from langadapt.vocab.tokenizer import as_transformers, end_of_text


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices gain nothing from a second thread, and on a busy machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tokenizers, sample_docs):
    """The expanded tokenizer's Sorbian text: 8 blocks to train on (a stream the sampler draws from) and
    the same 8 blocks as one batch to measure the loss on."""
    _, _, expansion = tokenizers
    tokenizer = expansion.tokenizer
    eos = end_of_text(tokenizer)
    tokens = pack([d.text for d in sample_docs if d.lang == "hsb_Latn"], tokenizer, eos, 0)[: 8 * (BLOCK + 1)]
    return expansion, tokens, torch.tensor(tokens.astype("int64")).view(8, BLOCK + 1), eos


@pytest.fixture(scope="module")
def expanded(corpus):
    """`expanded(model_type)`: a tiny model of that type at the source vocabulary, grown by the expansion."""
    expansion, _, _, eos = corpus
    built = {}

    def build(model_type: str):
        if model_type not in built:
            model = tiny_model(model_type, expansion.first_new_id, eos)
            resize_and_init(model, expansion.pieces, "mean", seed=0)
            built[model_type] = model.eval()
        return copy.deepcopy(built[model_type])

    return build


@pytest.mark.parametrize("model_type", CAUSAL_TYPES)
def test_every_method_adapts_every_causal_model_type(model_type, expanded, corpus, tmp_path):
    expansion, tokens, heldout, _ = corpus
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    for method in METHODS:
        done = adapt(expanded(model_type), method, tokens, heldout, new_ids, tmp_path)
        assert done.exported == pytest.approx(done.trained, abs=1e-4), (model_type, method)
        assert type(done.model).__name__ == type(expanded(model_type)).__name__  # a stock class again
        assert done.trained < done.before, (model_type, method, done.before, done.trained)


@pytest.mark.parametrize("model_type", CAUSAL_TYPES)
def test_every_causal_type_is_a_causal_lm_by_its_config(model_type):
    assert model_kind(tiny_config(model_type, 64)) == "causal"


@pytest.mark.parametrize(("model_type", "reason"), REFUSED.items())
def test_model_types_without_a_causal_lm_are_refused_with_the_reason(model_type, reason):
    config = AutoConfig.for_model(model_type)
    with pytest.raises(LangadaptError) as err:
        require_causal(config, "base model here")
    assert reason.split(" ")[0] in err.value.message and "classifiers" in err.value.fix
    assert model_kind(AutoConfig.for_model("bert", is_decoder=True)) == "causal"  # BertLMHeadModel is causal


def test_a_model_whose_blocks_cannot_be_found_names_its_type_and_the_methods_that_still_work(corpus):
    expansion, _, _, eos = corpus
    model = tiny_model("olmo2", expansion.first_new_id, eos)
    model.config.num_hidden_layers = 3  # no module list of that length: the blocks cannot be told apart
    with pytest.raises(LangadaptError) as err:
        ADAPTERS["layra"](model, LoraConfig(r=4, alpha=8), [])
    assert "'olmo2'" in err.value.message and "blocks" in err.value.message
    assert all(method in err.value.fix for method in ("full", "embeddings"))
    assert ADAPTERS["embeddings"](model, LoraConfig(), [expansion.first_new_id - 1]) is not None  # still works


@pytest.mark.parametrize("model_type", ["gemma3_text", "qwen3", "phi3"])
def test_current_model_types_adapt_through_langadapt_train(model_type, expanded, corpus, sample_docs, tmp_path):
    """The user's path: a saved expanded folder of a 2025 model type, `init_from` it, a method of two phases."""
    expansion, _, _, _ = corpus
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    base = save_model(expanded(model_type), as_transformers(expansion.tokenizer), tmp_path / "base",
                      ModelCard(base=f"tiny-{model_type}", new_ids=new_ids, languages=["hsb_Latn"]))
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("\n".join(d.text for d in sample_docs if d.lang == "hsb_Latn")[-2000:], encoding="utf-8")
    job = {"name": model_type, "output_dir": str(tmp_path / "runs"), "init_from": str(base),
           "model": {"block_size": BLOCK}, "method": "embeddings+layra", "lora": {"r": 4, "alpha": 8},
           "data": {"sources": [{"name": "hsb", "format": "sample", "languages": ["hsb_Latn"]}],
                    "eval_files": {"hsb_Latn": str(heldout)}},
           "train": {"steps": 3, "batch_size": 4, "lr": 3e-2, "warmup_steps": 0, "checkpoint_every": 3}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    final = run_train_job(load_config(tmp_path / "job.yaml", schema=TrainJobConfig))
    assert AutoModelForCausalLM.from_pretrained(final).config.model_type == model_type
    assert read_card(final).method == "embeddings+layra" and set(new_ids) <= set(read_card(final).new_ids)
    assert pd.read_parquet(final.parent / "results.parquet").query("metric == 'bpb'").value.item() > 0
