"""`python -m bench` (`make bench`): run every benchmark and rewrite bench/RESULTS.md.

Options: `--quick` for a fast pass, `--only NAME` (repeatable) for some benchmarks, `--json` to
print every result as one JSON object, `--threads N` to pin torch's CPU threads (OMP_NUM_THREADS,
inherited by the trainer subprocesses; steadier figures on a CPU shared with other work). A benchmark that fails is recorded with its error and
the others still run. Figures land in RESULTS.md's GPU section on a machine with CUDA, else in
its CPU section; the other section is kept. Heavy imports happen inside main(): decoding
processes that re-import this module start fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

BENCHMARKS = ("bench_metrics", "bench_synth", "bench_cache", "bench_projections", "train_throughput",
              "pipeline_vs_reference", "time_to_result", "embed_throughput", "loss_variants", "runs_page",
              "projector_points")


def run_one(name: str, quick: bool) -> dict:
    """{result, quick, seconds} of one benchmark; an exception becomes {"error": ...}."""
    from bench.timing import error_text

    start = time.perf_counter()
    try:
        result = importlib.import_module(f"bench.{name}").run(quick=quick)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": error_text(exc)}
    return {"result": result, "quick": quick, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", action="store_true", help="print all results as one JSON object")
    parser.add_argument("--results", type=Path, help="RESULTS.md to rewrite (default bench/RESULTS.md)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from bench import results

    if args.threads:
        torch.set_num_threads(args.threads)

    info = results.machine()
    entries: dict[str, dict] = {}
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        entries[name] = run_one(name, args.quick)
        status = entries[name]["result"].get("error", "done")
        print(f"[bench] {name}: {status} in {entries[name]['seconds']:.0f} s", file=sys.stderr, flush=True)
    kind = "gpu" if torch.cuda.is_available() else "cpu"
    path = results.record(kind, info, entries, args.results or results.RESULTS)
    total = time.perf_counter() - started
    if args.json:
        print(json.dumps({"machine": info, "benchmarks": entries, "seconds": total}))
    else:
        print(f"wrote {path} ({kind} section) after {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
