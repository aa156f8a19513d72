"""Which initialiser gives new vocabulary the best start, and what each one costs.

1. Quality: pretrain a tiny GPT-2 on some NTREX-128 languages, expand its BPE vocabulary to a
   held-out language, initialise the new rows with each initialiser, continue pretraining on
   the new language for a fixed budget (several seeds) and report held-out bits per byte at
   step 0 and at the end, and the steps each method needs to reach `random`'s final bpb.
2. Cost: seconds to initialise 10k new tokens over a 50k vocabulary, per method (matrices,
   pieces and target ids of that size, synthetic; gensim's static vectors timed on real text).
3. Parameters: what `embeddings`, `embeddings-factorised` (OFA's E ≈ A·P) and `embeddings-all`
   train, counted on real models of several shapes, and the size of the factorised matrix.

Prints tables (machine, versions, date, medians over seeds/repeats); never fails on a number.
    python benchmarks/vocab_init.py [--steps 100 --seeds 3 --target slk]
    python benchmarks/vocab_init.py --inits random ofa --ofa-rank 16 --methods embeddings embeddings-factorised
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from langadapt.data.packing import BlockSampler, pack  # noqa: E402
from langadapt.evaluate.bpb import bits_per_byte  # noqa: E402
from langadapt.model.adapters import trainable_parameters  # noqa: E402
from langadapt.model.build import build_gpt2  # noqa: E402
from langadapt.model.config import LoraConfig, ModelConfig  # noqa: E402
from langadapt.registry import (
    ADAPTERS,  # noqa: E402
    INITIALISERS,  # noqa: E402
)
from langadapt.train.config import TrainConfig  # noqa: E402
from langadapt.train.loop import train  # noqa: E402
from langadapt.vocab.build import init_context  # noqa: E402
from langadapt.vocab.expand import expand  # noqa: E402
from langadapt.vocab.init import InitContext, resize_and_init  # noqa: E402
from langadapt.vocab.static import StaticVectors, train_static  # noqa: E402
from langadapt.vocab.tokenizer import EOS, balance, train_bpe  # noqa: E402

NTREX = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ntrex128"


def read(code: str) -> list[str]:
    name = "newstest2019-src.eng.txt" if code == "eng" else f"newstest2019-ref.{code}.txt"
    return (NTREX / name).read_text(encoding="utf-8").splitlines()


def header() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "transformers", "tokenizers", "gensim"))
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"torch threads {torch.get_num_threads()} | {versions} | python {platform.python_version()} | "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def table(rows: list[list], columns: list[str]) -> str:
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def quality(args, tmp: Path) -> None:
    texts = {code: read(code) for code in [*args.sources, args.target]}
    train_texts = {code: lines[: args.train_lines] for code, lines in texts.items()}
    heldout = texts[args.target][args.train_lines:][: args.heldout_lines]
    source_tok = train_bpe(balance({c: train_texts[c] for c in args.sources}, 0.3, 0), args.source_vocab)
    expansion = expand(source_tok, train_bpe(train_texts[args.target], args.target_vocab), args.new_tokens)
    eos = source_tok.token_to_id(EOS)
    model_cfg = ModelConfig(n_layer=2, n_embd=args.dim, n_head=2, block_size=64)
    base = build_gpt2(model_cfg, source_tok)
    source_stream = pack([t for c in args.sources for t in train_texts[c]], source_tok, eos, 0)
    pretrain = TrainConfig(steps=args.pretrain_steps, batch_size=16, lr=3e-3, warmup_steps=20,
                           eval_every=args.pretrain_steps)
    started = time.perf_counter()
    train(base, BlockSampler(source_stream, 64, 16, 0), pretrain, 0, tmp / "base.jsonl")
    pretrain_s = time.perf_counter() - started
    base_bpb = bits_per_byte(base, source_tok, heldout, eos).bpb

    adapt = TrainConfig(steps=args.steps, batch_size=16, lr=args.lr, warmup_steps=10, eval_every=args.eval_every)
    target_stream = pack(train_texts[args.target], expansion.tokenizer, eos, 0)
    context = init_context(_vocab_cfg(args), expansion, train_texts[args.target], args.inits, 0)
    new_ids = list(range(expansion.first_new_id, expansion.first_new_id + len(expansion.new_tokens)))
    score = lambda m: {"bpb": bits_per_byte(m, expansion.tokenizer, heldout, eos).bpb}  # noqa: E731
    curves: dict[tuple[str, str], list[dict[int, float]]] = {}
    for init in args.inits:
        for method in args.methods:
            for seed in range(args.seeds):
                model = copy.deepcopy(base)
                resize_and_init(model, expansion.pieces, init, seed, **context)
                curve = {0: score(model)["bpb"]}
                model = ADAPTERS[method](model, LoraConfig(embedding_rank=args.factor_rank), new_ids)
                log = train(model, BlockSampler(target_stream, 64, 16, seed), adapt, seed,
                            tmp / f"{init}-{method}.jsonl", evaluate=score)
                curve.update({r["step"]: r["eval"]["bpb"] for r in log if "eval" in r})
                curves.setdefault((init, method), []).append(curve)

    def median_at(key: tuple[str, str], step: int) -> float:
        return statistics.median(c[step] for c in curves[key])

    rows = []
    for init, method in curves:
        goal = median_at(("random", method), args.steps) if ("random", method) in curves else None
        reach = [next((s for s in sorted(c) if goal is not None and c[s] <= goal), None)
                 for c in curves[init, method]]
        reached = [s for s in reach if s is not None]
        steps = f"{statistics.median(reached):.0f} ({len(reached)}/{len(reach)})" if reached else "never"
        final = median_at((init, method), args.steps)
        rows.append([init, method, f"{median_at((init, method), 0):.3f}", f"{final:.3f}",
                     f"{final / goal:.3f}" if goal else "", steps])
    rows.sort(key=lambda r: (r[1], float(r[3])))
    print(f"\n## Init quality: {'+'.join(args.sources)} -> {args.target} (NTREX-128)\n")
    print(f"base: GPT-2 {model_cfg.n_layer}x{model_cfg.n_embd}, {args.pretrain_steps} pretraining steps "
          f"({pretrain_s:.0f} s), source vocab {source_tok.get_vocab_size()}, +{len(expansion.new_tokens)} "
          f"{args.target} tokens; base model's bpb on held-out {args.target}: {base_bpb:.3f}. "
          f"Held-out: {len(heldout)} lines; {args.steps} steps at lr {args.lr}, medians over {args.seeds} seeds; "
          f"ofa rank {args.ofa_rank}, embeddings-factorised rank {args.factor_rank}.\n")
    print(table(rows, ["init", "method", "bpb step 0", f"bpb step {args.steps}", "÷ random final (same method)",
                       "steps to random's final (seeds)"]))


def _vocab_cfg(args):
    from langadapt.vocab.config import VocabConfig

    return VocabConfig(static_dim=args.static_dim, ofa_rank=args.ofa_rank, initialisers=args.inits,
                       train_with=args.inits[0])


def cost(args) -> None:
    """Seconds per method for `new` tokens over a `vocab` x `dim` matrix (medians over repeats)."""
    g = torch.Generator().manual_seed(0)
    vocab, new, dim = args.cost_vocab, args.cost_new, args.cost_dim
    old = torch.randn(vocab, dim, generator=g) * 0.05
    pieces = [torch.randint(vocab, (int(n),), generator=g).tolist() for n in torch.randint(1, 5, (new,), generator=g)]
    ranks = torch.multinomial(1 / torch.arange(1, vocab + new + 1).float(), 300_000, replacement=True, generator=g)
    target_ids = ranks.view(-1, 100).tolist()  # Zipfian token ids, 3,000 "sentences" of 100 tokens
    static = StaticVectors(torch.randn(vocab + new, args.static_dim, generator=g),
                           torch.bincount(ranks, minlength=vocab + new))
    text = read(args.target)[: args.train_lines]
    tok = train_bpe(text, 4000)
    started = time.perf_counter()
    train_static(tok, text, args.static_dim, seed=0)
    static_s = time.perf_counter() - started
    n_tokens = sum(len(e.ids) for e in tok.encode_batch(text))
    seconds = {}
    for init in args.inits:
        runs = []
        for repeat in range(args.repeats):
            ctx = InitContext(old, pieces, 0.02, torch.Generator().manual_seed(repeat), static=static,
                              target_ids=target_ids, rank=args.ofa_rank)
            started = time.perf_counter()
            INITIALISERS[init](ctx)
            runs.append(time.perf_counter() - started)
        seconds[init] = statistics.median(runs)
    rows = [[init, f"{s:.2f}", f"{s / seconds['mean']:.0f}x" if "mean" in seconds else ""]
            for init, s in seconds.items()]
    print(f"\n## Cost: {new:,} new tokens over a {vocab:,} x {dim} embedding matrix "
          f"(median of {args.repeats}; 300k target tokens for cw2v; ofa rank {args.ofa_rank})\n")
    print(table(rows, ["init", "seconds", "vs mean"]))
    print(f"\nfocus and ofa also need static vectors: gensim fastText on {n_tokens:,} {args.target} tokens "
          f"(dim {args.static_dim}) took {static_s:.1f} s.")


def parameters(args) -> None:
    """Trainable parameters of the adapters that train new rows, counted on real models, and the
    size of OFA's factorised embedding E ≈ A·P against the full matrix."""
    shapes = [(args.source_vocab, args.new_tokens, args.dim, args.factor_rank),
              (args.cost_vocab, args.cost_new, args.cost_dim, 64), (args.cost_vocab, args.cost_new, 768, 100),
              (args.cost_vocab, args.cost_new, 768, 400)]
    rows = []
    for old, new, dim, rank in shapes:
        new_ids = list(range(old, old + new))
        counts = {}
        for method in ("embeddings", "embeddings-factorised", "embeddings-all"):
            model = GPT2LMHeadModel(GPT2Config(vocab_size=old, n_embd=dim, n_layer=1, n_head=4, n_positions=8))
            model.resize_token_embeddings(old + new, mean_resizing=False)
            counts[method] = trainable_parameters(ADAPTERS[method](model, LoraConfig(embedding_rank=rank), new_ids))
        factorised, stored = counts["embeddings-factorised"], (old + new) * rank + rank * dim
        rows.append([f"{old:,}+{new:,} x {dim}", rank, f"{counts['embeddings']:,}", f"{factorised:,}",
                     f"{factorised / counts['embeddings']:.3f}", f"{counts['embeddings-all']:,}", f"{stored:,}",
                     f"{stored / ((old + new) * dim):.3f}"])
    print("\n## Parameters: new rows trained in full vs in OFA's factorisation (tied GPT-2, counted by the adapters)\n")
    print(table(rows, ["vocab old+new x dim", "rank r", "embeddings (n_new·d)", "embeddings-factorised (n_new·r+r·d)",
                       "÷ embeddings", "embeddings-all (V·d)", "factorised matrix (V·r+r·d)", "÷ full matrix"]))
    print("\nembeddings-factorised exports full rows (stock transformers); the factorised matrix column is what "
          "storing E as A·P would take.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["eng", "deu", "ces", "pol"])
    parser.add_argument("--target", default="slk", help="NTREX-128 code of the held-out language")
    parser.add_argument("--inits", nargs="+", default=list(INITIALISERS))
    parser.add_argument("--methods", nargs="+", default=["full"], help="adaptation methods (model/adapters.py)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the continued pretraining")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="continued-pretraining steps per init and seed")
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--pretrain-steps", type=int, default=200)
    parser.add_argument("--train-lines", type=int, default=1700)
    parser.add_argument("--heldout-lines", type=int, default=60)
    parser.add_argument("--source-vocab", type=int, default=2000)
    parser.add_argument("--target-vocab", type=int, default=1200)
    parser.add_argument("--new-tokens", type=int, default=600)
    parser.add_argument("--dim", type=int, default=64, help="embedding size of the tiny GPT-2")
    parser.add_argument("--static-dim", type=int, default=64)
    parser.add_argument("--ofa-rank", type=int, default=None)
    parser.add_argument("--cost-vocab", type=int, default=50_000)
    parser.add_argument("--cost-new", type=int, default=10_000)
    parser.add_argument("--cost-dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is several times faster than 2 on cores shared with other jobs")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--factor-rank", type=int, default=16, help="rank of embeddings-factorised at the tiny shape")
    parser.add_argument("--skip-parameters", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(header())
    if not args.skip_quality:
        with tempfile.TemporaryDirectory(prefix="vocab_init_") as tmp:  # training logs
            quality(args, Path(tmp))
    if not args.skip_cost:
        cost(args)
    if not args.skip_parameters:
        parameters(args)


if __name__ == "__main__":
    main()
