"""Backends: where queued runs execute. Looked up by name; the run folder stays the one record.

A backend is a module with two functions:
- `start(queue, run_ids, options)`: the runs' folders (status `queued`) and queue rows are
  written; make them run (`options`: jobs.tune.TuneOptions or None).
- `stop(job, run, status)`: ask a running run to stop: SIGTERM to its trainer first, so it saves
  its checkpoint and ends `cancelled`.
`local` (the scheduler, the embedded default) and `ray` (a Ray cluster, Ray Tune for early
stopping and search). Only the chosen backend's module is imported: without `ray` nothing imports Ray.
"""

from __future__ import annotations

import argparse
import importlib
import os
from types import ModuleType

from jobs.queue import JobError

BACKENDS = {"local": "jobs.backends.local", "ray": "jobs.backends.ray"}
ENV_BACKEND = "HANDID_BACKEND"
DEFAULT = "local"


def resolve(name: str | None = None) -> str:
    """The backend asked for: the argument, else $HANDID_BACKEND, else local."""
    name = name or os.environ.get(ENV_BACKEND) or DEFAULT
    if name not in BACKENDS:
        raise JobError(f"backend {name!r} is not valid; choose one of {', '.join(BACKENDS)}")
    return name


def get(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[resolve(name)])


def add_option(parser: argparse.ArgumentParser) -> None:
    """The `--backend` option of every command that queues runs."""
    parser.add_argument("--backend", choices=tuple(BACKENDS),
                        help=f"where the runs execute (default: ${ENV_BACKEND} or {DEFAULT})")
