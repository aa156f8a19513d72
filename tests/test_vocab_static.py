"""Static vectors read from a file (`vocab.static_vectors`) for focus and ofa: formats, the token →
word mapping, the rows they give, and the errors a user meets."""

import re

import pytest
import torch
from gensim.models import FastText, KeyedVectors, Word2Vec
from gensim.models.fasttext import save_facebook_model
from transformers import GPT2Config, GPT2LMHeadModel

from langadapt.errors import LangadaptError
from langadapt.vocab.build import init_context
from langadapt.vocab.config import VocabConfig
from langadapt.vocab.init import resize_and_init, sparsemax
from langadapt.vocab.static import load_static, vector_keys


def _sentences(path):
    """Word-split lines of a UDHR/Tatoeba file, without the UDHR's English header."""
    lines = path.read_text(encoding="utf-8").split("\n---\n", 1)[-1].splitlines()
    return [re.findall(r"\w+|[^\w\s]", line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def hsb_words(shared):
    return _sentences(shared("udhr", "udhr_hsb.txt")) + _sentences(shared("tatoeba", "tatoeba.hsb-eng.hsb"))


@pytest.fixture(scope="module")
def vector_files(tmp_path_factory, hsb_words):
    """Upper Sorbian vectors trained by gensim on real text, written in every accepted format."""
    tmp = tmp_path_factory.mktemp("vectors")
    w2v = Word2Vec(hsb_words, vector_size=16, min_count=1, workers=1, seed=0, epochs=5)
    w2v.wv.save_word2vec_format(tmp / "hsb.vec")
    w2v.wv.save_word2vec_format(tmp / "hsb.bin", binary=True)
    fasttext = FastText(hsb_words, vector_size=16, min_count=1, workers=1, seed=0, epochs=5, min_n=2, max_n=4,
                        bucket=1 << 15)
    save_facebook_model(fasttext, str(tmp / "hsb-fasttext.bin"))
    return {"vec": tmp / "hsb.vec", "w2v-bin": tmp / "hsb.bin", "fasttext": tmp / "hsb-fasttext.bin",
            "fasttext-model": fasttext}


@pytest.fixture(scope="module")
def hsb_texts(sample_docs):
    return [d.text for d in sample_docs if d.lang == "hsb_Latn"]


def _context(expansion, texts, methods=("focus", "ofa"), **vocab):
    cfg = VocabConfig(initialisers=list(methods), train_with=methods[0], **vocab)
    return init_context(cfg, expansion, texts, list(methods), seed=0)


def _new_rows(source, expansion, method, context, seed=0):
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=source.get_vocab_size(), n_positions=16, n_embd=24, n_layer=1,
                                       n_head=2))
    old = model.get_input_embeddings().weight.detach().clone()
    resize_and_init(model, expansion.pieces, method, seed=0, **context)
    return old, model.get_input_embeddings().weight.detach()[old.shape[0]:]


def test_token_keys_strip_the_word_start_marker_and_skip_byte_fragments(tokenizers):
    _, _, expansion = tokenizers
    tok = expansion.tokenizer
    keys = vector_keys(tok)
    names = {tok.id_to_token(i): i for i in range(tok.get_vocab_size())}
    word_start = next(name for name in names if name.startswith("Ġ") and name[1:].isalpha() and len(name) > 3)
    assert keys[names[word_start]] == word_start[1:]  # "Ġslowo" is the word "slowo"
    assert keys[names["ÅĤ"]] == "ł"  # byte-level alphabet decoded to UTF-8
    assert keys[names["Å"]] is None  # the first byte of a two-byte character is no word
    assert keys[tok.token_to_id("<|endoftext|>")] is None


@pytest.mark.parametrize("kind", ["vec", "w2v-bin"])
def test_word2vec_vectors_are_looked_up_by_token_word(kind, vector_files, tokenizers, hsb_texts):
    _, _, expansion = tokenizers
    static = load_static(expansion.tokenizer, vector_files[kind], hsb_texts, expansion.first_new_id)
    words = KeyedVectors.load_word2vec_format(str(vector_files["vec"]))
    keys = vector_keys(expansion.tokenizer)
    for i in static.known.nonzero().squeeze(1).tolist():
        word = keys[i] if keys[i] in words.key_to_index else keys[i].lower()
        assert torch.allclose(static.vectors[i], torch.tensor(words[word]), atol=1e-5)
    missing = [i for i, key in enumerate(keys) if key is None or
               (key not in words.key_to_index and key.lower() not in words.key_to_index)]
    assert missing and not static.known[missing].any()
    assert 0.05 <= static.known[expansion.first_new_id:].float().mean() < 1  # whole words only


def test_fasttext_model_gives_subword_tokens_vectors_from_character_ngrams(vector_files, tokenizers, hsb_texts):
    _, _, expansion = tokenizers
    static = load_static(expansion.tokenizer, vector_files["fasttext"], hsb_texts, expansion.first_new_id)
    model = vector_files["fasttext-model"]
    keys = vector_keys(expansion.tokenizer)
    new = range(expansion.first_new_id, expansion.tokenizer.get_vocab_size())
    unseen = [i for i in new if keys[i] is not None and keys[i] not in model.wv.key_to_index
              and keys[i].lower() not in model.wv.key_to_index]
    assert unseen  # pieces of words, never a word of the text
    assert static.known[unseen].all()
    for i in unseen:
        assert torch.allclose(static.vectors[i], torch.tensor(model.wv[keys[i]]), atol=1e-5)
    assert static.known[list(new)].float().mean() > 0.9


def test_focus_and_ofa_rows_come_from_the_file_vectors(vector_files, tokenizers, hsb_texts):
    """Rows equal FOCUS / OFA computed here from the file's vectors, and differ from trained vectors."""
    source, _, expansion = tokenizers
    context = _context(expansion, hsb_texts, static_vectors=vector_files["fasttext"])
    static = context["static"]
    n_old = expansion.first_new_id
    trained_context = _context(expansion, hsb_texts, static_dim=16)
    for method in ("focus", "ofa"):
        old, rows = _new_rows(source, expansion, method, context)
        unit = torch.nn.functional.normalize(static.vectors, dim=-1)
        if method == "focus":  # sparsemax over the 64 most similar old tokens of the target text with a vector
            candidates = ((static.counts[:n_old] > 0) & static.known[:n_old]).nonzero().squeeze(1)
            top = (unit[n_old:] @ unit[candidates].T).topk(64, dim=-1)
            weights = sparsemax(top.values)
        else:  # softmax (temperature 0.1) over the 10 most similar old tokens with a vector
            candidates = static.known[:n_old].nonzero().squeeze(1)
            top = (unit[n_old:] @ unit[candidates].T).topk(10, dim=-1)
            weights = torch.softmax(top.values / 0.1, dim=-1)
        weights = torch.zeros(len(weights), len(candidates)).scatter(1, top.indices, weights)
        expected = weights @ old[candidates]
        with_vector = static.known[n_old:]
        assert torch.allclose(rows[with_vector], expected[with_vector], atol=1e-5)
        pieces_mean = torch.stack([old[p].mean(0) for p in expansion.pieces])
        assert torch.allclose(rows[~with_vector], pieces_mean[~with_vector], atol=1e-6)
        trained = _new_rows(source, expansion, method, trained_context)[1]
        assert not torch.allclose(rows, trained, atol=1e-3)


def test_unreadable_or_unfitting_vectors_fail_with_a_clear_error(vector_files, tokenizers, hsb_texts, shared,
                                                                 tmp_path):
    _, _, expansion = tokenizers
    with pytest.raises(ValueError, match="absent.vec does not exist"):  # the config's path check
        _context(expansion, hsb_texts, static_vectors=tmp_path / "absent.vec")
    json_file = tmp_path / "hsb.json"
    json_file.write_text("{}")
    with pytest.raises(LangadaptError, match=r"unknown static vectors format '\.json'"):
        _context(expansion, hsb_texts, static_vectors=json_file)
    not_vectors = tmp_path / "udhr.txt"
    not_vectors.write_text(shared("udhr", "udhr_hsb.txt").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(LangadaptError, match="cannot read .* as a word2vec text file"):
        _context(expansion, hsb_texts, static_vectors=not_vectors)
    with pytest.raises(LangadaptError, match="16 dimensions, not vocab.static_dim = 32"):
        _context(expansion, hsb_texts, static_vectors=vector_files["vec"], static_dim=32)
    russian = Word2Vec(_sentences(shared("udhr", "udhr_rus.txt")), vector_size=16, min_count=1, workers=1, seed=0)
    russian.wv.save_word2vec_format(tmp_path / "rus.vec")
    with pytest.raises(LangadaptError, match=r"cover \d+\.\d% of the old tokens"):
        _context(expansion, hsb_texts, static_vectors=tmp_path / "rus.vec")
    with pytest.raises(LangadaptError, match="rank-99 factorisation does not fit"):
        _new_rows(tokenizers[0], expansion, "ofa", _context(expansion, hsb_texts, ["ofa"], ofa_rank=99,
                                                               static_vectors=vector_files["vec"]))
