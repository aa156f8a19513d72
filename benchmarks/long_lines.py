"""Peak memory of `langadapt train` on the same text as one line and as many lines.

A text source of ~50 MB (the sample corpus repeated) is written twice: once with one document a
line, once as a single line. Each file is the only source of a tiny job (one training step), run
as a fresh process; its peak RSS comes from `os.wait4`. `--src` points at another checkout's
`src/` to compare revisions side by side. Prints a table; asserts nothing.

    PYTHONPATH=src python benchmarks/long_lines.py --mb 50
    PYTHONPATH=src python benchmarks/long_lines.py --mb 50 --src /tmp/before/src --tokenizer bytes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def corpus(size: int) -> list[str]:
    from langadapt.corpus.sources import read_sample

    texts = [d.text.replace("\n", " ") for d in read_sample(["hsb_Latn", "ces_Latn", "pol_Latn"])]
    out, used = [], 0
    while used < size:
        for text in texts:
            out.append(text)
            used += len(text.encode("utf-8")) + 1
            if used >= size:
                break
    return out


def peak_rss(command: list[str], env: dict) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        print(process.stderr.read().decode()[-2000:], file=sys.stderr)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--src", default="src", help="the langadapt src/ folder to run")
    parser.add_argument("--tokenizer", default="bpe", help="bpe (trained on the text) or bytes")
    args = parser.parse_args()
    texts = corpus(int(args.mb * 1e6))
    env = {**os.environ, "PYTHONPATH": str(Path(args.src).resolve())}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout, joiner in (("lines", "\n"), ("one line", " ")):
            data = Path(tmp) / f"{layout.replace(' ', '_')}.txt"
            data.write_text(joiner.join(texts) + "\n", encoding="utf-8")
            job = Path(tmp) / f"{data.stem}.json"
            job.write_text(json.dumps({
                "name": data.stem, "output_dir": str(Path(tmp) / "runs"),
                "model": {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 32},
                "data": {"tokenizer": args.tokenizer, "vocab_size": 400,
                         "sources": [{"name": "text", "format": "text", "files": [str(data)],
                                      "languages": ["hsb_Latn"]}]},
                "train": {"steps": 1, "batch_size": 2, "checkpoint_every": 1}}))
            rss, seconds, code = peak_rss([sys.executable, "-m", "langadapt.cli", "train", str(job)], env)
            rows.append((layout, data.stat().st_size / 1e6, rss, seconds, code))
    print(f"# langadapt train, peak RSS by line layout ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, src {args.src}, tokenizer {args.tokenizer})")
    print(f"{'layout':<10} {'file MB':>8} {'peak RSS MB':>12} {'seconds':>8} {'exit':>5}")
    for layout, size, rss, seconds, code in rows:
        print(f"{layout:<10} {size:>8.1f} {rss:>12.0f} {seconds:>8.0f} {code:>5}")
    print(f"one line / lines peak RSS: {rows[1][2] / rows[0][2]:.2f}x")


if __name__ == "__main__":
    main()
