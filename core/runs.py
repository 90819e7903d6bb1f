"""Run folders: the one place that knows their layout. A run's folder is all the state it has.

checkpoints/<run_id>/
  config.yaml         the full resolved config
  status.json         state (queued|running|succeeded|failed|cancelled), pid, times, error, progress
  heartbeat           touched by the trainer while it lives (mtime = last sign of life)
  metrics.jsonl       one JSON object per line (train steps and evaluations)
  eval.json           {"epoch0": {...}, "final": {...}, "best_epoch": N, ...}
  last.safetensors / best.safetensors (+ last.optim.safetensors for resuming)
  embeddings.npz      query/gallery features, labels, image paths of the final evaluation
  train.log           the trainer's log lines (python logging; tracebacks of failures)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunDir:
    """Paths and readers/writers of one run folder."""

    path: Path

    @classmethod
    def at(cls, path: str | Path) -> "RunDir":
        return cls(Path(path))

    @property
    def run_id(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.yaml")
    status_path = property(lambda self: self.path / "status.json")
    heartbeat_path = property(lambda self: self.path / "heartbeat")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    eval_path = property(lambda self: self.path / "eval.json")
    embeddings_path = property(lambda self: self.path / "embeddings.npz")
    log_path = property(lambda self: self.path / "train.log")

    def checkpoint(self, which: str = "best") -> Path:
        """`best`, `last`, or a path; `best` falls back to `last` when no evaluation picked one."""
        if which not in ("best", "last"):
            return Path(which)
        path = self.path / f"{which}.safetensors"
        if which == "best" and not path.exists():
            return self.path / "last.safetensors"
        return path

    def optimizer_state(self) -> Path:
        return self.path / "last.optim.safetensors"

    def create(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # config
    def write_config(self, config: dict[str, Any]) -> None:
        write_atomic(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            return {}
        return yaml.safe_load(self.config_path.read_text()) or {}

    # status
    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into status.json (atomically) and return the result."""
        status = self.read_status()
        status.update(fields)
        write_atomic(self.status_path, json.dumps(status, indent=1))
        return status

    def beat(self) -> None:
        self.heartbeat_path.touch()

    def heartbeat_age(self) -> float | None:
        """Seconds since the trainer's last sign of life, None if it never beat."""
        try:
            return now() - self.heartbeat_path.stat().st_mtime
        except FileNotFoundError:
            return None

    # metrics
    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line of metrics.jsonl (a half-written last line is skipped)."""
        return list(self.iter_metrics())

    def iter_metrics(self) -> Iterator[dict[str, Any]]:
        try:
            lines = self.metrics_path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue

    # evaluation
    def write_eval(self, data: dict[str, Any]) -> None:
        write_atomic(self.eval_path, json.dumps(data, indent=1))

    def read_eval(self) -> dict[str, Any]:
        try:
            return json.loads(self.eval_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def update_eval(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into eval.json (atomically) and return the result."""
        data = self.read_eval()
        data.update(fields)
        self.write_eval(data)
        return data

    # embeddings
    def write_embeddings(self, arrays: dict[str, np.ndarray]) -> None:
        """Write embeddings.npz atomically (plain arrays: strings as unicode, no pickles)."""
        tmp = self.embeddings_path.with_name(f".{self.embeddings_path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, self.embeddings_path)

    def read_embeddings(self) -> dict[str, np.ndarray]:
        """embeddings.npz as a dict of arrays ({} when absent); never unpickles."""
        try:
            with np.load(self.embeddings_path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except FileNotFoundError:
            return {}

    def reset_outputs(self) -> None:
        """Remove a previous attempt's results (metrics, evaluation, embeddings, checkpoints) before a
        fresh start; train.log and status.json stay (a launcher may hold them open)."""
        for path in (self.metrics_path, self.eval_path, self.embeddings_path, self.checkpoint("last"),
                     self.path / "best.safetensors", self.optimizer_state()):
            path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 50) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def list_runs(root: str | Path = "checkpoints") -> list[RunDir]:
    """Run folders under root (those holding a config or status), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and ((p / "config.yaml").exists() or (p / "status.json").exists())]
    return sorted(runs, key=lambda r: r.path.stat().st_mtime, reverse=True)
