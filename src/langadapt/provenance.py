"""Provenance: what a result depends on besides its config (input file hashes, package versions,
code commit), and the refusal to reuse a folder whose config or inputs changed. Training jobs
and experiment runs both record and check it."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from langadapt.errors import LangadaptError

PACKAGES = ["langadapt", "torch", "transformers", "tokenizers", "peft", "accelerate", "safetensors",
            "datasketch", "py3langid", "langcodes", "django", "polib", "numpy", "pandas", "pydantic",
            "gensim", "datatrove", "scikit-learn", "sacrebleu", "lm-eval"]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(inputs: list[Path]) -> dict:
    """What a result depends on besides its config: input file hashes, versions, code commit."""
    return {"inputs": {str(p): file_hash(p) for p in inputs}, "versions": package_versions(),
            "python": platform.python_version(), "platform": platform.platform(), "git_commit": git_commit()}


def changes(old, new, prefix: str = "") -> list[str]:
    """What differs between two recorded configs (JSON values), one `key: old → new` per leaf, so a
    refusal to reuse a folder says exactly which edit caused it."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in dict.fromkeys([*old, *new])
                for change in changes(old.get(key, "(absent)"), new.get(key, "(absent)"), f"{prefix}{key}.")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [change for index, (a, b) in enumerate(zip(old, new, strict=True))
                for change in changes(a, b, f"{prefix}{index}.")]
    if old == new:
        return []
    return [f"{prefix.rstrip('.') or '(config)'}: {json.dumps(old, ensure_ascii=False)} → "
            f"{json.dumps(new, ensure_ascii=False)}"]


def read_manifest(folder: Path) -> dict | None:
    """A run folder's `manifest.json`, or None where it has none (yet)."""
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_same_run(folder: Path, record: Path, config: dict, inputs: list[Path]) -> None:
    """Refuse to resume or reuse `folder` for another run: no langadapt run in it (no `record`, the
    file holding its config), a recorded config other than `config` (naming the keys, old → new),
    or input files changed since it started."""
    if not record.is_file():
        raise LangadaptError(f"{folder} exists but is not a langadapt run folder (no {record.name})",
                             fix="move it away, or change `name` or `output_dir`.")
    recorded = json.loads(record.read_text(encoding="utf-8"))
    if record.name == "manifest.json":  # an experiment's manifest holds its config
        recorded = recorded.get("config")
    what = changes(recorded, config)
    if what:
        raise different_run(folder, what)
    manifest = read_manifest(folder)
    if manifest is not None and "inputs" in manifest:
        check_inputs(folder, manifest["inputs"], inputs)


def different_run(folder: Path, what: list[str]) -> LangadaptError:
    """The refusal to reuse `folder` for another run: the differences and the two ways forward."""
    shown = "; ".join(what[:12]) + (f"; and {len(what) - 12} more" if len(what) > 12 else "")
    return LangadaptError(f"{folder} holds a run of a different config, so it is neither resumed nor reused "
                          f"(changed: {shown})",
                          fix="pass --overwrite to replace it (the old run stays until the new one has "
                              "finished), or give this config a new `name` or `output_dir`.")


def check_inputs(folder: Path, recorded: dict[str, str], paths: list[Path]) -> None:
    """Refuse to continue a run whose input files changed since it started: its prepared data came
    from the old contents, so the folder would describe training on data it never saw."""
    now_hashes = {str(p): file_hash(p) for p in paths if Path(p).is_file()}
    edited = [f"{path}: contents changed" for path, digest in recorded.items()
              if path in now_hashes and now_hashes[path] != digest]
    edited += [f"{path}: no longer an input" for path in recorded if path not in now_hashes]
    edited += [f"{path}: new input" for path in now_hashes if path not in recorded]
    if edited:
        raise different_run(folder, edited)
