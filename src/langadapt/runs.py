"""Run folders and their manifest: what ran, on which inputs, with which versions.

A run is built in `<name>.incomplete/` and renamed to `<name>/` only when it completes, so a
finished folder is always whole; a run stopped by a user error leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from langadapt.atomic import write_json
from langadapt.config import ExperimentConfig
from langadapt.errors import LangadaptError, fs_error

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


class Run:
    """A run folder under construction; `finish()` makes it final.

    A `<name>.incomplete/` folder of the same config, left by a killed run, is resumed: its
    manifest says which stages finished (see `stages.run_stages`). One of another config is
    replaced (`run_state` refuses that case first, unless `--overwrite`).
    """

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg
        self.final = Path(cfg.output_dir) / cfg.name
        self.dir = self.final.with_name(self.final.name + ".incomplete")
        config = cfg.model_dump(mode="json")
        previous = read_manifest(self.dir)
        if previous is not None and previous.get("config") == config:
            self.manifest = {**previous, "status": "running", "resumed": now()}
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            try:
                self.dir.mkdir(parents=True)
            except OSError as err:
                raise fs_error(err, self.dir, "creating the run folder") from None
            self.manifest = {"name": cfg.name, "status": "running", "started": now(), "finished": None,
                             "config": config, **provenance([])}
        self.save_manifest()

    def save_manifest(self) -> None:
        write_json(self.dir / "manifest.json", self.manifest)

    def record_inputs(self, paths: list[Path]) -> None:
        self.manifest["inputs"] = {str(p): file_hash(p) for p in paths}
        self.save_manifest()

    def finish(self) -> Path:
        self.manifest.update(status="completed", finished=now())
        self.save_manifest()
        previous = self.final.with_name(self.final.name + ".previous")
        if self.final.exists():
            self.final.rename(previous)
        self.dir.rename(self.final)
        shutil.rmtree(previous, ignore_errors=True)
        self.dir = self.final
        return self.final

    def fail(self, error: str) -> None:
        self.manifest.update(status="failed", error=error)
        self.save_manifest()

    @staticmethod
    def finished_stages(folder: Path, cfg: ExperimentConfig) -> list[str]:
        """The stages a half-finished run folder of the same config has finished."""
        manifest = read_manifest(folder)
        same = manifest is not None and manifest.get("config") == cfg.model_dump(mode="json")
        return list(manifest.get("stages", {})) if same else []

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


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


def different_run(folder: Path, what: list[str], overwrite_flag: str = "--overwrite") -> LangadaptError:
    """The refusal to reuse `folder` for another run: the differences and the two ways forward."""
    shown = "; ".join(what[:12]) + (f"; and {len(what) - 12} more" if len(what) > 12 else "")
    return LangadaptError(f"{folder} holds a run of a different config, so it is neither resumed nor reused "
                          f"(changed: {shown})",
                          fix=f"pass {overwrite_flag} to replace it (the old run stays until the new one has "
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


def read_manifest(folder: Path) -> dict | None:
    """The run's `manifest.json`, or None where it has none (yet)."""
    path = folder / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
