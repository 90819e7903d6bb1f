"""Synthetic hands rendered and JPEG-encoded per second on one core, at the default 400x300.

One process renders a fixed set of people and aspects (median of repeats), so the figure is
per core; `write_dataset` spreads the same work over a process pool. Run from the repo root:
`python -m bench.bench_synth [--quick] [--json]`.
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np

from bench.timing import component_main
from core.data.synth import ASPECTS, DEFAULT_SIZE, make_person, render_hand


def render_all(people: list, count: int, size: tuple[int, int]) -> None:
    """Render and JPEG-encode `count` photos cycling through people and aspects."""
    for k in range(count):
        image = render_hand(people[k % len(people)], ASPECTS[k % len(ASPECTS)], np.random.default_rng(k), size)
        image.save(io.BytesIO(), "JPEG", quality=85)


def run(quick: bool = False) -> dict:
    count, repeats = (20, 3) if quick else (100, 5)
    people = [make_person(0, i) for i in range(10)]
    render_all(people, 4, DEFAULT_SIZE)  # warm-up: imports, font and allocator
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_all(people, count, DEFAULT_SIZE)
        seconds.append(time.perf_counter() - start)
    return {
        "size": f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}",
        "images": count,
        "repeats": repeats,
        "synth_images_per_s_per_core": count / statistics.median(seconds),
    }


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "20 images x 3 repeats instead of 100 x 5", argv)


if __name__ == "__main__":
    raise SystemExit(main())
