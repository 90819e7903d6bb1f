"""Constructed studies and sweeps for the tests (no training): runs queued through jobs (the real
folders, labels and study file), then finished by hand with chosen results and short curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.runs import Result, RunDir
from jobs import api, study_runs
from jobs.studies import Study, new_study

DEMO = str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
EPOCHS = 3


def figures(base: float) -> dict[str, float]:
    """Test figures derived from one number (mAP), as the hand-ID protocols give them."""
    return {"rank1": base + 0.05, "mAP": base, "mAP_trapezoid": base + 0.025, "mINP": base, "rank5": 0.99}


def finish(run: RunDir, final: float, selected: float | None = None, state: str = "succeeded") -> None:
    """Results (final and selected mAP), EPOCHS epochs of curves, and the state, written as a trainer would."""
    def change(record):
        record.final = Result(epoch=EPOCHS, test=figures(final))
        record.selected = Result(epoch=EPOCHS - 1, test=figures(final if selected is None else selected))
    run.update_eval(change)
    for epoch in range(1, EPOCHS + 1):
        run.append_metrics({"kind": "train", "epoch": epoch, "step": 2 * epoch, "loss": 3.0 / epoch, "lr": 1e-4})
        run.append_metrics({"kind": "eval", "split": "test", "epoch": epoch, **figures(final * epoch / EPOCHS)})
    run.update_status(state=state, epoch=EPOCHS, started=1.0, ended=2.0)


def seeded_values(effect: float, seeds: int, seed: int = 0) -> dict[str, dict[int, float]]:
    """Final mAP of arms CE and TRI by seed: each training seed moves both arms alike, `effect` is the
    true difference (TRI - CE)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.60, 0.03, seeds)
    return {"CE": {s: float(shared[s] + rng.normal(0, 0.005)) for s in range(seeds)},
            "TRI": {s: float(shared[s] + effect + rng.normal(0, 0.005)) for s in range(seeds)}}


def constructed_study(root: Path, values: dict[str, dict[int, float]], seeds: int, name: str = "constructed",
                      left: dict[tuple[str, int], str] | None = None) -> Study:
    """A study of arms `values` (CE first: the reference) x seeds, queued without a scheduler; runs in
    `values` succeed with those final mAPs (selected: 0.01 lower), the (arm, seed) in `left` are put in
    that state, the rest stay queued."""
    arms = [(arm, {"loss.triplet.weight": float(i)}) for i, arm in enumerate(values)]
    study = study_runs.create(new_study(name, DEMO, arms, seeds), root, start_scheduler=False)
    for run in study.runs:
        folder = RunDir.at(root / run["run_id"])
        if (run["arm"], run["seed"]) in (left or {}):
            folder.update_status(state=left[run["arm"], run["seed"]], error="constructed")
        elif run["seed"] in values[run["arm"]]:
            mAP = values[run["arm"]][run["seed"]]
            finish(folder, mAP, mAP - 0.01)
    return study


def constructed_sweep(root: Path, margins: list[float], maps: list[float], stopped: int | None = None) -> list[str]:
    """A sweep over loss.triplet.margin x optim.lr (1e-4, 1e-3), queued without a scheduler and finished with
    the given mAPs (one per run, in sweep order); run `stopped` ends early-stopped."""
    ids = api.sweep(DEMO, {"loss.triplet.margin": margins, "optim.lr": [1e-4, 1e-3]}, name="margins",
                    root=root, start_scheduler=False)
    for i, (run_id, mAP) in enumerate(zip(ids, maps)):
        finish(RunDir.at(root / run_id), mAP, state="stopped" if i == stopped else "succeeded")
    return ids
