"""The run queue: one SQLite file in the checkpoints root, safe for concurrent processes.

The queue holds scheduling facts only: what to run (command, folder, kind), in which order,
after which run, on which backend, and, per attempt, the slot, the pid and a cancel request.
Each run's own folder (core.runs) is the one record of its state, progress and results;
`jobs.state` settles the two. Writes use BEGIN IMMEDIATE transactions in WAL mode, so
concurrent submitters, the scheduler and readers never lose or duplicate a row.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import HandIDError

ENV_ROOT = "HANDID_CHECKPOINTS"
DB_NAME = "queue.sqlite"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'train',
  argv TEXT NOT NULL,
  cwd TEXT NOT NULL,
  created REAL NOT NULL,
  config TEXT NOT NULL DEFAULT '',
  overrides TEXT NOT NULL DEFAULT '{}',
  after TEXT,
  backend TEXT NOT NULL DEFAULT 'local',
  pid INTEGER,
  slot TEXT,
  attempt INTEGER NOT NULL DEFAULT 0,
  started REAL,
  exit_code INTEGER,
  cancel_requested REAL
);
"""


class JobError(HandIDError):
    """A run that cannot be queued, found, cancelled or resumed as asked."""


def resolve_root(root: str | Path | None = None) -> Path:
    """The checkpoints root: the argument, else $HANDID_CHECKPOINTS, else ./checkpoints (absolute)."""
    return Path(root or os.environ.get(ENV_ROOT) or "checkpoints").expanduser().absolute()


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_run_id(run_id: str) -> str:
    """A run id as given, refused when it could name a folder outside the root (separators, `..`)."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise JobError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-' only, no '..')")
    return run_id


def new_id() -> str:
    """Sortable and unique across concurrent submitters: local time to the second + 32 random bits."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


def new_ids(count: int) -> list[str]:
    """`count` distinct ids for one submission (a sweep queues hundreds within a second)."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids[new_id()] = None
    return list(ids)


@dataclass
class Job:
    """One queue row. `argv` is the command after the Python executable; `cwd` where it runs."""

    id: str
    path: str
    argv: list[str]
    cwd: str
    created: float = 0.0
    kind: str = "train"
    config: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    after: str | None = None
    backend: str = "local"
    pid: int | None = None
    slot: str | None = None
    attempt: int = 0
    started: float | None = None
    exit_code: int | None = None
    cancel_requested: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        data["argv"] = json.loads(data["argv"])
        data["overrides"] = json.loads(data["overrides"])
        return cls(**data)

    def to_row(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["argv"] = json.dumps(self.argv)
        data["overrides"] = json.dumps(self.overrides)
        return data


class Queue:
    """The queue of one checkpoints root. Each method is one short transaction."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = resolve_root(root)
        self.path = self.root / DB_NAME

    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JobError(f"cannot open the run queue {self.path}: {exc}") from None
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            if write:
                con.execute(_SCHEMA)
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise JobError(f"run queue {self.path}: {exc}") from None
        finally:
            con.close()

    def _read(self, sql: str, args: tuple = ()) -> list[Job]:
        if not self.path.exists():
            return []
        with self._connect(write=False) as con:
            try:
                rows = con.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
        return [Job.from_row(r) for r in rows]

    def insert(self, jobs: list[Job]) -> None:
        """Add rows all together or not at all."""
        with self._connect(write=True) as con:
            for job in jobs:
                row = job.to_row()
                con.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))

    def get(self, run_id: str) -> Job | None:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def all(self) -> list[Job]:
        """Every row, oldest first (the order queued runs start in)."""
        return self._read("SELECT * FROM jobs ORDER BY created, id")

    def update(self, run_id: str, **values: Any) -> bool:
        """Set columns of one row; False when there is no such row."""
        sql = f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        with self._connect(write=True) as con:
            return con.execute(sql, (*values.values(), run_id)).rowcount == 1

    def claim(self, run_id: str, attempt: int, slot: str, at: float) -> bool:
        """Take a row for its next attempt on `slot`, unless a cancel was requested or another
        claim won (compare-and-set on the attempt number)."""
        with self._connect(write=True) as con:
            return con.execute(
                "UPDATE jobs SET attempt = attempt + 1, slot = ?, pid = NULL, started = ?, exit_code = NULL "
                "WHERE id = ? AND attempt = ? AND cancel_requested IS NULL", (slot, at, run_id, attempt)).rowcount == 1

    def request_cancel(self, run_ids: list[str], at: float) -> list[Job]:
        """Flag the rows for cancelling (once: an earlier request keeps its time); the rows as they were."""
        marks = ", ".join("?" * len(run_ids))
        with self._connect(write=True) as con:
            rows = [Job.from_row(r) for r in con.execute(f"SELECT * FROM jobs WHERE id IN ({marks})", run_ids)]
            con.execute(f"UPDATE jobs SET cancel_requested = ? WHERE id IN ({marks}) AND cancel_requested IS NULL",
                        (at, *run_ids))
        return rows

    def clear_cancel(self, run_id: str) -> bool:
        """Forget a cancel request and the last exit code (a run resumed); False when there is no such row."""
        return self.update(run_id, cancel_requested=None, exit_code=None)
