"""The run queue: one SQLite file in the checkpoints root, safe for concurrent processes.

The queue says what to run, in which order, where and as which process; each run's own
folder (core/runs.py) holds its progress and results. Writes use BEGIN IMMEDIATE
transactions in WAL mode, so concurrent submitters, the scheduler and readers never lose or
duplicate a row.
"""

from __future__ import annotations

import json
import os
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
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL DEFAULT 'train',
  path TEXT NOT NULL,
  config TEXT NOT NULL DEFAULT '',
  overrides TEXT NOT NULL DEFAULT '{}',
  argv TEXT NOT NULL,
  cwd TEXT NOT NULL,
  state TEXT NOT NULL,
  created REAL NOT NULL,
  started REAL,
  ended REAL,
  sweep_id TEXT,
  after TEXT,
  pid INTEGER,
  slot TEXT,
  attempt INTEGER NOT NULL DEFAULT 0,
  start_epoch REAL NOT NULL DEFAULT 0,
  exit_code INTEGER,
  cancel_requested REAL,
  error TEXT
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
"""


class JobError(HandIDError):
    """A run that cannot be queued, found, cancelled or resumed as asked."""


def resolve_root(root: str | Path | None = None) -> Path:
    """The checkpoints root: the argument, else $HANDID_CHECKPOINTS, else ./checkpoints (absolute)."""
    return Path(root or os.environ.get(ENV_ROOT) or "checkpoints").expanduser().absolute()


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
    state: str = "queued"
    created: float = 0.0
    name: str = ""
    kind: str = "train"
    config: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    sweep_id: str | None = None
    after: str | None = None
    pid: int | None = None
    slot: str | None = None
    attempt: int = 0
    start_epoch: float = 0.0
    exit_code: int | None = None
    cancel_requested: float | None = None
    error: str | None = None

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
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
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
                con.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))

    def get(self, run_id: str) -> Job | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def all(self) -> list[Job]:
        """Every row, oldest first."""
        return self._read("SELECT * FROM runs ORDER BY created, id")

    def with_state(self, *states: str) -> list[Job]:
        """Rows in the given states, oldest first (the order runs start in)."""
        marks = ", ".join("?" * len(states))
        return self._read(f"SELECT * FROM runs WHERE state IN ({marks}) ORDER BY created, id", states)

    def update(self, run_id: str, only_if: tuple[str, ...] = (), **values: Any) -> bool:
        """Set columns of one row, only while its state is one of `only_if` (if given)."""
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        args: tuple = (*values.values(), run_id)
        if only_if:
            sql += f" AND state IN ({', '.join('?' * len(only_if))})"
            args += only_if
        with self._connect(write=True) as con:
            return con.execute(sql, args).rowcount == 1

    def request_cancel(self, run_id: str, at: float) -> Job | None:
        """Cancel a queued row outright or flag a running one; the row as it was before, or None."""
        with self._connect(write=True) as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            if row["state"] == "queued":
                con.execute("UPDATE runs SET state = 'cancelled', ended = ?, error = ? WHERE id = ?",
                            (at, "cancelled before it started", run_id))
            elif row["state"] == "running" and row["cancel_requested"] is None:
                con.execute("UPDATE runs SET cancel_requested = ? WHERE id = ?", (at, run_id))
            return Job.from_row(row)
