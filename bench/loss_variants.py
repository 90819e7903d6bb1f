"""Do the Stage 2 losses do what they promise? The loss combinations on the CPU demo, 3 training seeds.

The demo preset (configs/demo.yaml: synthetic hands, HandID-Tiny from random init, PK 8x4
batches, 30 training identities) with the centre loss and triplet off as the base, then:
CE; CE + triplet (batch-hard, margin 0.3, on the BNNeck feature); + centre; + ArcFace (weight
0.1); + image-to-text against learned identity prompts (a prompt phase first); and CE + triplet
with margins 0.2 and 0.5. Each variant trains with `train.seed` 0, 1, 2 through
`python -m core.train` (two at a time, one thread each), evaluated at epoch 0 and at the end.
Per variant: the final test mAP's mean and std over the seeds (sample std), rank-1, the pre-BN
features' mean pairwise distance (`spread_pre_bn`: near 0 when the embedding collapsed) and the
last epoch's mean unweighted loss parts. The checks: no variant's mean mAP below CE's by more
than CE's std over seeds; the triplet variants' pre-BN spread at least half of CE's; margins 0.2
and 0.5 give different figures; the image-to-text loss below chance (ln of the identity count).
Run: `python -m bench.loss_variants [--quick] [--epochs N] [--json] [--out FILE]` from the repo
root (`--quick`: one seed, 10 epochs).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.timing import add_output_arguments, emit

REPO = Path(__file__).resolve().parents[1]
DEMO = "configs/demo.yaml"
EPOCHS, SEEDS, PARALLEL = 60, (0, 1, 2), 2
PROMPT_EPOCHS = 40
BASE = {"loss.triplet.weight": 0.0, "loss.center.weight": 0.0, "eval.every": 0, "train.threads": 1,
        "train.device": "cpu"}
TRIPLET = {"loss.triplet.weight": 1.0, "loss.triplet.mining": "batch_hard", "loss.triplet.margin": 0.3}
CENTRE = {**TRIPLET, "loss.center.weight": 0.01, "loss.center.lr": 0.5}
ARCFACE = {**CENTRE, "loss.arcface.weight": 0.1}
VARIANTS = {
    "CE": {},
    "CE+triplet": TRIPLET,
    "CE+triplet+centre": CENTRE,
    "CE+triplet+centre+ArcFace": ARCFACE,
    "CE+triplet+centre+ArcFace+i2t (learned prompts)": {**ARCFACE, "loss.i2t.weight": 1.0,
                                                        "prompts.epochs": PROMPT_EPOCHS},
    "CE+triplet margin 0.2": {**TRIPLET, "loss.triplet.margin": 0.2},
    "CE+triplet margin 0.5": {**TRIPLET, "loss.triplet.margin": 0.5},
}
PARTS = ("ce", "triplet", "center", "arcface", "i2t")


def train_one(overrides: dict, run_dir: Path) -> dict:
    """Train one run; its final test figures and the last epoch's mean loss parts."""
    sets = [arg for key, value in {**BASE, **overrides}.items() for arg in ("--set", f"{key}={value}")]
    done = subprocess.run([sys.executable, "-m", "core.train", "--config", DEMO, "--run-dir", str(run_dir), *sets],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training {overrides} failed: {(done.stdout + done.stderr).strip().splitlines()[-1]}")
    final = json.loads((run_dir / "eval.json").read_text())["final"]["test"]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in lines if m["kind"] == "train"]
    last = [m for m in train if m["epoch"] == train[-1]["epoch"]]
    out = {k: final.get(k) for k in ("mAP", "rank1", "spread_pre_bn")}
    out.update({p: statistics.fmean(m[p] for m in last) for p in PARTS if p in last[0]})
    return out


def summarise(runs: dict[str, list[dict]], identities: int) -> dict:
    """Per variant mean/std of the figures over seeds, and the checks of the module docstring."""
    table = {name: _variant(rows) for name, rows in runs.items()}
    ce = table["CE"]
    checks = {
        "no variant below CE by more than CE's std": all(v["mAP"] >= ce["mAP"] - ce["mAP_std"] for v in table.values()),
        "triplet pre-BN spread >= half of CE's": all(v["spread_pre_bn"] >= ce["spread_pre_bn"] / 2
                                                     for name, v in table.items() if "triplet" in name),
        "i2t chance (ln identities)": math.log(identities),
    }
    margins = [[r["mAP"] for r in runs[name]] for name in runs if "margin" in name]
    if len(margins) == 2:
        checks["margins 0.2 and 0.5 differ"] = margins[0] != margins[1]
    i2t = [v["i2t"] for v in table.values() if v.get("i2t") is not None]
    if i2t:
        checks["i2t below chance"] = all(value < math.log(identities) for value in i2t)
    return {**checks, **table}


def _variant(rows: list[dict]) -> dict:
    out: dict = {"seeds": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows if r.get(key) is not None]
        if not values:
            continue
        out[key] = statistics.fmean(values)
        if key in ("mAP", "rank1"):
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def run(quick: bool = False, epochs: int | None = None) -> dict:
    """Train every variant x seed (two at a time) and summarise."""
    from core.config import load_config

    epochs = epochs or (10 if quick else EPOCHS)
    seeds = SEEDS[:1] if quick else SEEDS
    jobs = [(name, seed) for name in VARIANTS for seed in seeds]
    with tempfile.TemporaryDirectory(prefix="loss-variants-") as tmp, ThreadPoolExecutor(PARALLEL) as pool:
        futures = {job: pool.submit(train_one, {**VARIANTS[job[0]], "train.epochs": epochs, "train.seed": job[1]},
                                    Path(tmp) / f"{i}") for i, job in enumerate(jobs)}
        runs = {name: [futures[name, seed].result() for seed in seeds] for name in VARIANTS}
    identities = math.ceil(load_config(REPO / DEMO).data.synth_identities / 2)  # the training half
    return {"epochs": epochs, "training seeds": len(seeds), **summarise(runs, identities)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 10 epochs")
    parser.add_argument("--epochs", type=int, help=f"training epochs (default {EPOCHS})")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    emit(run(args.quick, args.epochs), args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
