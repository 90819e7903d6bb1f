"""Values derived from run-folder files, re-read only when a file changes.

A long-lived reader (the dashboard lists every run every few seconds) would otherwise parse
each run's config.yaml and eval.json again at each listing; a changed file has a new
(mtime, size) and is read again. Readers errors are not kept: the next call reads again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
Version = tuple[int, int]


def file_version(path: Path) -> Version:
    """(mtime in ns, size) of a file, (0, 0) when missing: the cache key of anything read from it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


class FileCache(Generic[T]):
    """`read(path)` kept per path while the file's version holds (least recently used dropped first).

    Values are shared between callers: derive plain, small values to keep, never objects callers change."""

    def __init__(self, read: Callable[[Path], T], max_entries: int = 4096) -> None:
        self.read, self.max_entries = read, max_entries
        self.entries: OrderedDict[Path, tuple[Version, T]] = OrderedDict()
        self.lock = threading.Lock()  # Streamlit serves sessions from threads

    def get(self, path: Path) -> T:
        version = file_version(path)
        with self.lock:
            kept = self.entries.get(path)
            if kept is not None and kept[0] == version:
                self.entries.move_to_end(path)
                return kept[1]
        value = self.read(path)
        with self.lock:
            self.entries[path] = (version, value)
            self.entries.move_to_end(path)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
