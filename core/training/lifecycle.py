"""A trainer process's life in its run folder: logging, heartbeat, status, and SIGTERM.

SIGTERM (and Ctrl-C) only raise a flag; the trainer checks it between steps, so the step in
flight finishes, the last checkpoint is saved and the run ends `cancelled`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.runs import RunDir, now

HEARTBEAT_S = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Cancelled(Exception):
    """Raised at a safe point after SIGTERM asked the trainer to stop."""


class CancelFlag:
    """Set by SIGTERM/SIGINT; `check()` raises Cancelled at the trainer's safe points."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, signum: int, _frame=None) -> None:
        logging.getLogger(__name__).warning("received %s: stopping after the current step", signal.Signals(signum).name)
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise Cancelled()


@contextmanager
def cancel_on_signals() -> Iterator[CancelFlag]:
    """Route SIGTERM and SIGINT to a CancelFlag for the duration (main thread only)."""
    flag = CancelFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.signal(s, flag.set) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _not_library_chatter(record: logging.LogRecord) -> bool:
    """open_clip logs every model and tokenizer it builds at INFO through the root logger: keep its warnings only."""
    return record.levelno >= logging.WARNING or "open_clip" not in record.pathname


@contextmanager
def run_logging(run: RunDir) -> Iterator[logging.Logger]:
    """Python logging to the run's train.log and to stderr while the run lives."""
    root = logging.getLogger()
    handlers = [logging.FileHandler(run.log_path), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(_not_library_chatter)
        root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield logging.getLogger("core.train")
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


@contextmanager
def heartbeat(run: RunDir, every: float = HEARTBEAT_S) -> Iterator[None]:
    """Touch the run's heartbeat file every `every` seconds from a daemon thread."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            run.beat()
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def mark_running(run: RunDir, epochs: int, epoch: float) -> None:
    """This process runs the run now, from `epoch` (0, or the resumed checkpoint's)."""
    run.update_status(state="running", pid=os.getpid(), started=now(), ended=None, error=None,
                      epoch=epoch, start_epoch=epoch, epochs=epochs, updated=now())


def mark_progress(run: RunDir, epoch: int) -> None:
    run.update_status(epoch=epoch, updated=now())


def mark_ended(run: RunDir, state: str, error: str | None = None) -> None:
    run.update_status(state=state, ended=now(), updated=now(), error=error)
