"""Wall time from an idea to its number: the Stage 2 recipe through `python -m core.train`.

CE + triplet + center loss (configs/stage2_ce_triplet_center.yaml), PK 16x4 batches, 60
epochs, evaluation every 5 epochs on 10 query/gallery runs, on the synthetic 1600x1200 photos
(bench.photos), into a real run folder with a cold image cache. The wall time is split by the
trainer's train.log into start-up (interpreter, imports, reading the table), data preparation
(protocol and cache build), model build, training, evaluation and finishing (embeddings,
exit). CUDA: ViT-B/16 at 224 px (goal: under 2 minutes); CPU: HandID-Tiny at 64 px.
Run: `python -m bench.time_to_result [--quick] [--epochs N] [--json] [--out FILE]` from the repo root.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from bench.photos import PROTOCOL, ensure_photos, scale
from bench.timing import add_output_arguments, device_name, emit

REPO = Path(__file__).resolve().parents[1]
STAGE2 = "configs/stage2_ce_triplet_center.yaml"
RECIPE_EPOCHS = 60
GPU_GOAL_S = 120.0
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ ([\w.]+): (.*)$")
# (logger, message prefix) -> the phase that ends with that line
MARKS = (
    ("core.training.trainer", "read ", "startup"),
    ("core.training.trainer", "train ", "data_prep"),
    ("core.training.trainer", "model ", "model_build"),
    ("core.training.trainer", "eval epoch", "evaluation"),
    ("core.training.trainer", "epoch ", "training"),
    ("core.train", "succeeded", "finish"),
)
PHASES = ("startup", "data_prep", "model_build", "training", "evaluation", "finish")


def phase_seconds(log_text: str, started: float, ended: float) -> dict[str, float]:
    """Seconds per phase: each marked train.log line closes its phase's interval since the previous
    marked line (unmarked lines count towards the next mark); the tail up to `ended` is `finish`."""
    totals = dict.fromkeys(PHASES, 0.0)
    previous = started
    for line in log_text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        stamp, logger, message = match.groups()
        phase = next((p for name, prefix, p in MARKS if logger == name and message.startswith(prefix)), None)
        if phase is None:
            continue
        moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        totals[phase] += max(0.0, moment - previous)
        previous = max(previous, moment)
    totals["finish"] += max(0.0, ended - previous)
    return totals


def overrides(root: Path, backbone: str, image_size: int, epochs: int, cache_dir: Path) -> list[str]:
    return [
        "data.dataset=synthetic", f"data.root={root}", f"data.protocol={PROTOCOL}", f"data.image_size={image_size}",
        f"data.cache_dir={cache_dir}", f"model.backbone={backbone}", "model.pretrained=", "sampler.kind=pk",
        "sampler.p=16", "sampler.k=4", f"train.epochs={epochs}", "eval.runs=10",
    ]


def one_run(root: Path, backbone: str, image_size: int, epochs: int) -> dict:
    """One `python -m core.train` run in a fresh run folder and cache: wall time, phases, final metrics."""
    with tempfile.TemporaryDirectory(prefix="handid-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        sets = [arg for o in overrides(root, backbone, image_size, epochs, Path(tmp) / "cache") for arg in ("--set", o)]
        command = [sys.executable, "-m", "core.train", "--config", STAGE2, *sets, "--run-dir", str(run_dir)]
        started = time.time()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        ended = time.time()
        log = (run_dir / "train.log").read_text() if (run_dir / "train.log").is_file() else ""
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"python -m core.train exited {done.returncode}: {tail}")
        final = json.loads((run_dir / "eval.json").read_text()).get("final", {})
    phases = phase_seconds(log, started, ended)
    return {"wall_s": ended - started, **{f"{k}_s": v for k, v in phases.items()},
            "final_rank1": final.get("rank1"), "final_mAP": final.get("mAP")}


def run(quick: bool = False, epochs: int | None = None, repeats: int | None = None) -> dict:
    """Median over repeats of the recipe's wall time and its phases (CPU: the tiny model)."""
    cuda = torch.cuda.is_available()
    backbone, image_size = ("ViT-B-16", 224) if cuda else ("HandID-Tiny", 64)
    epochs = epochs or (10 if quick else RECIPE_EPOCHS)
    repeats = repeats or (1 if quick or cuda else 2)
    size = scale()
    root = ensure_photos(**size)
    runs = [one_run(root, backbone, image_size, epochs) for _ in range(repeats)]
    result: dict = {
        "recipe": f"{Path(STAGE2).stem}, PK 16x4, eval every 5 epochs on 10 runs",
        "backbone": backbone, "image_size": image_size, "epochs": epochs, "reduced_epochs": epochs < RECIPE_EPOCHS,
        "device": device_name(torch.device("cuda" if cuda else "cpu")), "repeats": repeats,
        "photos": f"{size['identities']} identities x 4 aspects x {size['images_per_aspect']}, 1600x1200 JPEG",
        "protocol": PROTOCOL,
    }
    result.update({k: statistics.median(r[k] for r in runs) for k in runs[0] if k.endswith("_s")})
    result.update(final_rank1=runs[-1]["final_rank1"], final_mAP=runs[-1]["final_mAP"])
    if cuda:
        result["gpu_goal_under_2_min_met"] = result["wall_s"] < GPU_GOAL_S
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 epochs, one run")
    parser.add_argument("--epochs", type=int, help="instead of the recipe's 60 (the output says so)")
    parser.add_argument("--repeats", type=int, help="runs to take the median of")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    result = run(args.quick, args.epochs, args.repeats)
    emit(result, args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
