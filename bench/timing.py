"""Helpers the benchmarks share: timing device work (CUDA events on a GPU, perf_counter on the
CPU), device names, freeing device memory, one-line errors, image-size arguments."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds `fn` takes, including the device work it queued."""
    if device.type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def median_rate(count: int, seconds: list[float]) -> float:
    """`count` items over the median of `seconds`."""
    return count / statistics.median(seconds)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def error_text(exc: BaseException) -> str:
    """One line naming an exception, for a benchmark's JSON instead of a crash."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def release(device: torch.device) -> None:
    """Collect garbage and return cached CUDA memory between measurements."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def size_arg(text: str) -> tuple[int, int]:
    """`224` or `256x128` (height x width)."""
    parts = [int(v) for v in text.lower().split("x")]
    if len(parts) not in (1, 2) or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"image size must look like 224 or 256x128, got {text!r}")
    return (parts[0], parts[-1])


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--json and --out, read by `emit`."""
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")


def emit(result: dict, out: Path | None, one_line: bool) -> None:
    """Print a benchmark's JSON object (one line or indented) and also write it to `out` if given."""
    if out:
        out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=None if one_line else 1))


def component_main(run: Callable[[bool], dict], description: str, quick_help: str,
                   argv: list[str] | None = None) -> int:
    """`python -m bench.<name> [--quick] [--json] [--out FILE]` for a benchmark's `run(quick)`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    emit(run(args.quick), args.out, args.json)
    return 0
