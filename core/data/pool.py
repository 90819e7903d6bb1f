"""Process pools for image work (decoding, drawing): forked, so workers start in milliseconds.

Spawned workers would re-import the caller's main module (torch, open_clip: tens of seconds
on a small machine). The workers only run PIL and numpy, never CUDA, so fork is safe even
when the parent holds threads or a CUDA context.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def parallel_map(fn: Callable[..., Any], *iterables: Iterable[Any], workers: int | None = None, chunksize: int = 1) -> Iterator[Any]:
    """`map(fn, *iterables)` over `workers` forked processes (default: all cores), in order."""
    workers = workers or os.cpu_count() or 1
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(fn, *iterables, chunksize=chunksize)
