"""Run folders: the one place that knows their layout. A run's folder is all the state it has.

checkpoints/<run_id>/
  config.yaml         the full resolved config
  status.json         core.runs.records.Status
  heartbeat           touched by the trainer while it lives (mtime = last sign of life)
  metrics.jsonl       one JSON object per line: train steps, evaluations (`split` val | test) and
                      resumes (`kind` resume: training continued after `epoch`), each with its `time`
  eval.json           core.runs.records.EvalRecord
  meta.json           core.runs.meta.RunMeta: the researcher's tags and note
  last.safetensors    the weights after the last completed epoch, with their optimizer state
                      (last.optim.safetensors) written as one unit (see `commit_last`)
  best.safetensors    the weights of the epoch selected on the validation split
  embeddings.npz      core.runs.records.Embeddings of the final evaluation
  train.log           the trainer's log lines (python logging; tracebacks of failures)
  process.log         stdout and stderr of the process that ran it (jobs)

status.json, eval.json and meta.json are changed under an exclusive lock on `.lock` (read, change, write
atomically), so a trainer, a scheduler and an evaluation job never lose each other's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from core.runs.meta import RunMeta
from core.runs.records import EvalRecord, Embeddings, RecordError, Status, read_json

if TYPE_CHECKING:
    from core.config import Config

CHECKPOINTS = ("best", "last")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, ten times faster, when installed
TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file; a failure (disk
    full) leaves no temporary file and raises OSError naming the file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunDir:
    """Paths and typed readers/writers of one run folder."""

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
    meta_path = property(lambda self: self.path / "meta.json")
    embeddings_path = property(lambda self: self.path / "embeddings.npz")
    log_path = property(lambda self: self.path / "train.log")
    process_log_path = property(lambda self: self.path / "process.log")
    best_path = property(lambda self: self.path / "best.safetensors")
    last_path = property(lambda self: self.path / "last.safetensors")
    optimizer_state_path = property(lambda self: self.path / "last.optim.safetensors")
    cancel_request_path = property(lambda self: self.path / "cancel.request")  # a remote run's cancel (jobs ray)

    def checkpoint(self, which: str = "best") -> Path:
        """`best`, `last`, or a path; `best` falls back to `last` when no evaluation selected one."""
        if which not in CHECKPOINTS:
            return Path(which)
        if which == "best" and not self.best_path.exists():
            return self.last_path
        return self.best_path if which == "best" else self.last_path

    def create(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock on the folder's records (status.json, eval.json) for a read-change-write."""
        with open(self.path / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # config
    def write_config(self, config: dict[str, Any]) -> None:
        write_atomic(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> "Config | None":
        """config.yaml as the Config dataclass; None when there is none (an evaluation job's folder)."""
        from core.config import flatten, from_flat
        from core.errors import ConfigError

        try:
            data = yaml.load(self.config_path.read_text(), Loader=SAFE_LOADER)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise RecordError(f"{self.config_path}: not a readable config ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise RecordError(f"{self.config_path}: expected a mapping of config sections")
        try:
            return from_flat(flatten(data))
        except ConfigError as exc:
            raise RecordError(f"{self.config_path}: {exc}") from None

    # status
    def read_status(self) -> Status | None:
        """status.json as its record; None when the folder has none yet."""
        data = read_json(self.status_path)
        return None if data is None else Status.from_json(data, self.status_path)

    def update_status(self, **fields: Any) -> Status:
        """Set fields of status.json under the folder lock; returns the new record."""
        return self._change_status(None, fields)

    def transition(self, from_states: tuple[str | None, ...], expect_pid: int | None = None,
                   **fields: Any) -> Status | None:
        """Set fields only while the state is one of `from_states` (None: no status yet) and, with
        `expect_pid`, the status names that process; atomically. The new record, or None when not."""
        return self._change_status(from_states, fields, expect_pid)

    def _change_status(self, from_states: tuple[str | None, ...] | None, fields: dict[str, Any],
                       expect_pid: int | None = None) -> Status | None:
        with self.locked():
            try:
                status = self.read_status()
            except RecordError:
                if from_states is not None:
                    raise
                status = None  # a damaged status.json is replaced by the writer that owns the run
            if from_states is not None and (status.state if status else None) not in from_states:
                return None
            if expect_pid is not None and (status is None or status.pid != expect_pid):
                return None
            status = replace(status or Status(), **fields)
            write_atomic(self.status_path, json.dumps(status.to_json(), indent=1))
            return status

    def request_cancel(self) -> None:
        """Ask the supervisor of a run on another node to stop it (it watches this file)."""
        self.cancel_request_path.touch()

    def cancel_requested(self) -> bool:
        return self.cancel_request_path.exists()

    def clear_cancel_request(self) -> None:
        self.cancel_request_path.unlink(missing_ok=True)

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
        """One line of metrics.jsonl, stamped with the wall time (seconds since the epoch) unless it has one."""
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps({**record, "time": record.get("time", now())}) + "\n")
            fh.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete JSON-object line of metrics.jsonl (a half-written or damaged line is skipped)."""
        try:
            text = self.metrics_path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def truncate_metrics(self, after_epoch: int, evaluated_again: int | None = None) -> int:
        """Drop the records of epochs after `after_epoch` (a resume replays them) and the evaluation records
        of epoch `evaluated_again` (one a resume evaluates once more); returns how many."""
        def dropped(r: dict[str, Any]) -> bool:
            epoch = r.get("epoch")
            return isinstance(epoch, (int, float)) and (
                epoch > after_epoch or (epoch == evaluated_again and r.get("kind") == "eval"))

        records = self.read_metrics()
        kept = [r for r in records if not dropped(r)]
        if len(kept) != len(records):
            write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        return len(records) - len(kept)

    # evaluation
    def read_eval(self) -> EvalRecord:
        """eval.json as its record (an empty record before the first evaluation)."""
        data = read_json(self.eval_path)
        return EvalRecord() if data is None else EvalRecord.from_json(data, self.eval_path)

    def update_eval(self, change: Callable[[EvalRecord], None]) -> EvalRecord:
        """Apply `change` to eval.json's record under the folder lock and write it atomically."""
        with self.locked():
            record = self.read_eval()
            change(record)
            write_atomic(self.eval_path, json.dumps(record.to_json(), indent=1))
            return record

    # tags and note
    def read_meta(self) -> RunMeta:
        """meta.json as its record (no tags, no note before the first annotation)."""
        data = read_json(self.meta_path)
        return RunMeta() if data is None else RunMeta.from_json(data, self.meta_path)

    def update_meta(self, add: list[str] = (), remove: list[str] = (), note: str | None = None) -> RunMeta:
        """Add and remove tags, replace the note (when given), under the folder lock; the new record."""
        with self.locked():
            meta = self.read_meta().changed(add, remove, note)
            write_atomic(self.meta_path, json.dumps(meta.to_json(), indent=1))
            return meta

    # embeddings
    def write_embeddings(self, emb: Embeddings) -> None:
        """Write embeddings.npz atomically (plain arrays: strings as unicode, no pickles)."""
        tmp = self.embeddings_path.with_name(f".{self.embeddings_path.name}.{os.getpid()}{TMP_SUFFIX}")
        try:
            with tmp.open("wb") as fh:
                np.savez(fh, **emb.arrays())
            os.replace(tmp, self.embeddings_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OSError(exc.errno, f"cannot write {self.embeddings_path}: {exc.strerror or exc}") from None

    def read_embeddings(self) -> Embeddings:
        return Embeddings.load(self.embeddings_path)

    def reset_outputs(self) -> None:
        """Remove a previous attempt's results (metrics, evaluation, embeddings, checkpoints) before a
        fresh start; train.log and status.json stay (a launcher may hold them open)."""
        for path in (self.metrics_path, self.eval_path, self.embeddings_path, self.last_path, self.best_path,
                     self.optimizer_state_path):
            path.unlink(missing_ok=True)

    def remove_temporary_files(self) -> list[Path]:
        """Delete leftovers of writes a kill interrupted (`.<name>.<pid>.tmp`); returns them."""
        leftovers = [p for p in self.path.glob(f".*{TMP_SUFFIX}") if p.is_file()]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return leftovers

    def log_tail(self, lines: int = 50) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def list_run_dirs(root: str | Path = "checkpoints") -> list[RunDir]:
    """Run folders under root (those holding a config or status), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and ((p / "config.yaml").exists() or (p / "status.json").exists())]
    return sorted(runs, key=lambda r: r.path.stat().st_mtime, reverse=True)
