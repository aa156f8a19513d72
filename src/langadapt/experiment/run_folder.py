"""Run folders and their manifest: what ran, on which inputs, with which versions.

A run is built in `<name>.incomplete/` and renamed to `<name>/` only when it completes, so a
finished folder is always whole; a run stopped by a user error leaves nothing behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from langadapt.atomic import replace_folder, write_json
from langadapt.config import ExperimentConfig
from langadapt.errors import fs_error
from langadapt.provenance import file_hash, now, provenance, read_manifest


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
        replace_folder(self.dir, self.final)
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
