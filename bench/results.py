"""bench/RESULTS.md: the machine, library versions and every benchmark's figures, per device kind.

The file holds a CPU section and a GPU section, rendered from a JSON copy of the figures kept
at its end. A run replaces only its own kind's section (and within it only the benchmarks it
ran), so GPU figures recorded earlier on a card survive a CPU-only run and vice versa.
`python -m bench.results --machine` prints the machine as JSON; `--summary DIR` combines a
gpu_check output folder's JSON files; `--merge-gpu DIR` folds them into RESULTS.md's GPU section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from core.config import flatten

RESULTS = Path(__file__).parent / "RESULTS.md"
LIBRARIES = ("torch", "torchvision", "open_clip_torch", "timm", "pytorch-metric-learning", "numpy", "pandas",
             "pillow", "scikit-learn", "openTSNE")
DATA_START, DATA_END = "<!-- data", "-->"
KINDS = {"cpu": "CPU", "gpu": "GPU"}
MACHINE_FILE = "machine.json"
SUMMARY_FILE = "summary.json"
HEADER = """# Benchmark results

Written by `make bench` (`python -m bench`; `--quick`, `--only NAME`, `--json`); the GPU section by
`bench/gpu_check.sh` on a lent card, folded in with `python -m bench.results --merge-gpu DIR`.
Every figure is the median of the repeats its benchmark states (see each module's docstring in
`bench/`); images/s count training or embedded images. Machines shared with other work give
noisier figures: the load average at the start of the run is recorded with the machine.
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load, GPU (when present), Python and library versions."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    info.update({dist: version(dist) for dist in LIBRARIES})
    return info


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# reading and writing RESULTS.md
def read_data(path: Path) -> dict[str, Any]:
    """The figures kept at the end of RESULTS.md ({} when absent or unreadable)."""
    if not path.is_file():
        return {}
    text = path.read_text()
    start = text.rfind(DATA_START)
    if start < 0:
        return {}
    end = text.find(DATA_END, start)
    try:
        data = json.loads(text[start + len(DATA_START):end])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def record(kind: str, info: dict, benchmarks: dict[str, dict], path: Path = RESULTS) -> Path:
    """Replace `kind`'s machine and the given benchmarks' entries, keep the rest, rewrite the file."""
    data = read_data(path)
    section = data.get(kind, {})
    section["machine"] = info
    section["recorded"] = now()
    section.setdefault("benchmarks", {}).update(benchmarks)
    data[kind] = section
    path.write_text(render(data))
    return path


def render(data: dict[str, Any]) -> str:
    lines = [HEADER]
    headline = [line for kind in KINDS if kind in data for line in headlines(kind, data[kind]["benchmarks"])]
    if headline:
        lines += ["## Headline", "", *headline, ""]
    for kind, title in KINDS.items():
        if kind in data:
            lines += render_section(title, data[kind])
        else:
            lines += [f"## {title}", "", "Not recorded yet.", ""]
    lines += [DATA_START, json.dumps(data, indent=1), DATA_END, ""]
    return "\n".join(lines)


def render_section(title: str, section: dict) -> list[str]:
    info = section["machine"]
    name = info.get("gpu") or f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores"
    lines = [f"## {title}: {name} (recorded {section.get('recorded', '?')})", "", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in info.items()]
    lines.append("")
    for bench, entry in section.get("benchmarks", {}).items():
        lines += render_benchmark(bench, entry)
    return lines


def render_benchmark(name: str, entry: dict) -> list[str]:
    notes = [note for note, on in (("quick pass", entry.get("quick")),) if on]
    if entry.get("seconds") is not None:
        notes.append(f"{entry['seconds']:.0f} s")
    lines = [f"### {name}" + (f" ({', '.join(notes)})" if notes else ""), ""]
    result = entry.get("result", {})
    scalars = {k: v for k, v in result.items() if not isinstance(v, dict)}
    groups = {k: flatten(v) for k, v in result.items() if isinstance(v, dict)}
    if scalars:
        lines += ["| figure | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in scalars.items()), ""]
    if groups:
        rows = list(dict.fromkeys(k for g in groups.values() for k in g))
        lines += ["| figure | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
        lines += [f"| {row} | " + " | ".join(fmt(g.get(row)) for g in groups.values()) + " |" for row in rows]
        lines.append("")
    return lines


def headlines(kind: str, benchmarks: dict[str, dict]) -> list[str]:
    """One line per target the issues set: ours vs the reference, full vs bare step, time to result."""
    out = []
    pipeline = benchmarks.get("pipeline_vs_reference", {}).get("result", {})
    for backbone, r in pipeline.items():
        if isinstance(r, dict) and "ours_over_reference_b20" in r:
            out.append(f"- {KINDS[kind]}, {backbone}: this pipeline {fmt(r['ours_images_per_s'])} images/s vs the "
                       f"published one {fmt(r['reference_b20_images_per_s'])} at batch 20: "
                       f"**{r['ours_over_reference_b20']:.1f}x** ({r['ours_amortised_over_reference_b20']:.1f}x with "
                       f"the cache build amortised over {r['ours_timed_epochs'] + 1} epochs)")
    for setting, r in benchmarks.get("train_throughput", {}).get("result", {}).items():
        if isinstance(r, dict) and "full_over_bare" in r:
            mfu = f", MFU {r['full_mfu']:.0%}" if r.get("full_mfu") is not None else ""
            out.append(f"- {KINDS[kind]}, {r.get('backbone')} at {r.get('image_size')}, {setting}: full training step "
                       f"{fmt(r['full_images_per_s'])} images/s{mfu} = **{r['full_over_bare']:.0%}** of the bare "
                       f"model's {fmt(r['bare_images_per_s'])}")
    ttr = benchmarks.get("time_to_result", {}).get("result", {})
    if "wall_s" in ttr:
        out.append(f"- {KINDS[kind]}, {ttr['backbone']}: Stage 2 recipe ({ttr['epochs']} epochs) to its number in "
                   f"**{ttr['wall_s']:.0f} s** (training {ttr['training_s']:.0f} s, evaluation "
                   f"{ttr['evaluation_s']:.0f} s, data preparation {ttr['data_prep_s']:.0f} s)")
    page = benchmarks.get("runs_page", {}).get("result", {})
    if "page_first_render_s" in page:
        out.append(f"- {KINDS[kind]}: Runs page over {page['runs']} runs: first render **{page['page_first_render_s']:.2f} s**, "
                   f"rerun {page['page_rerun_s']:.2f} s (target under 2 s; listing {page['list_runs_first_s']:.2f} s "
                   f"first, {page['list_runs_again_s']:.2f} s again)")
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value).replace("|", "/")


# gpu_check.sh output folders
def collect(folder: Path) -> tuple[dict, dict[str, dict]]:
    """(machine, {benchmark: entry}) from a folder of `<benchmark>[-<setting>].json` files."""
    machine_path = folder / MACHINE_FILE
    info = json.loads(machine_path.read_text()) if machine_path.is_file() else {"gpu": "unknown card"}
    benchmarks: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name in (MACHINE_FILE, SUMMARY_FILE):
            continue
        name, _, setting = path.stem.partition("-")
        try:
            result = json.loads(path.read_text())
        except ValueError:
            result = {"error": f"{path.name} is not valid JSON"}
        entry = benchmarks.setdefault(name, {"result": {}, "quick": False, "seconds": None})
        if setting:
            entry["result"][setting] = result
        else:
            entry["result"].update(result)
    return info, benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--machine", action="store_true", help="print this machine as JSON")
    group.add_argument("--summary", type=Path, metavar="DIR", help="combine DIR's JSON files into DIR/summary.json and print it")
    group.add_argument("--merge-gpu", type=Path, metavar="DIR", help="fold DIR's JSON files into RESULTS.md's GPU section")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the RESULTS.md to rewrite")
    args = parser.parse_args(argv)
    if args.machine:
        print(json.dumps(machine(), indent=1))
        return 0
    folder = args.summary or args.merge_gpu
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    info, benchmarks = collect(folder)
    if args.summary:
        summary = {"machine": info, "benchmarks": benchmarks}
        (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
        print("\n".join(headlines("gpu", benchmarks)) or json.dumps(summary, indent=1))
        return 0
    print(f"wrote {record('gpu', info, benchmarks, args.results)} (GPU section: {info.get('gpu')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
