"""Seconds to list 200 runs and render the Runs page over them (target: under 2 s).

`make_runs` writes finished run folders as the trainer and the job system leave them (config.yaml,
status.json, eval.json with ROC curves, metrics.jsonl, some tags and notes, queue rows), in sweeps
and studies of five, plus evaluation jobs of the first runs: constructed records, no training.
Timed: `jobs.api.list_runs` (a first call, then again with every file unchanged), the page's table
build, and the whole Runs page under Streamlit's AppTest (a first render with nothing read yet, as
a freshly started dashboard, then a rerun).
Run: `python -m bench.runs_page [--quick] [--json]` from the repo root. The `f58685b_before_*` figures
in RESULTS.md are this benchmark run over that commit's code (before the listing caches), on the
same machine a minute earlier, added by hand for comparison.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import component_main
from core.config import load_config, to_dict
from core.runs import EvalRecord, Result, RunDir
from jobs.queue import Job, Queue

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo.yaml"
GROUP = 5  # runs per sweep or study
EPOCHS = 10
LOG_LINES = 10  # train lines per epoch
ROC_POINTS = 200
VARIANTS = [  # (name suffix, overrides): what the runs differ in
    ("lr=0.001", {"optim.lr": 1e-3}),
    ("lr=0.0003", {"optim.lr": 3e-4}),
    ("ce", {"loss.triplet.weight": 0.0, "loss.center.weight": 0.0}),
    ("vit", {"model.backbone": "ViT-B-16", "optim.lr": 1e-5}),
    ("arcface", {"loss.arcface.weight": 1.0, "loss.triplet.weight": 0.0}),
]
STATES = ["succeeded"] * 8 + ["failed", "cancelled"]


def _metrics(rng: np.random.Generator, level: float) -> dict[str, float]:
    values = {k: float(np.clip(level + rng.normal(0, 0.03) + bump, 0, 1))
              for k, bump in (("rank1", 0.15), ("rank5", 0.3), ("rank10", 0.35), ("mAP", 0.0),
                              ("mAP_trapezoid", -0.01), ("mINP", -0.15))}
    values.update({f"{k}_std": float(abs(rng.normal(0.02, 0.01))) for k in list(values)})
    return values


def _result(rng: np.random.Generator, epoch: int, level: float) -> Result:
    fpr = np.linspace(0, 1, ROC_POINTS)
    return Result(epoch, _metrics(rng, level), _metrics(rng, level + 0.05),
                  curves={"roc": {"fpr": fpr.tolist(), "tpr": np.sqrt(fpr).tolist()}})


def _metric_lines(rng: np.random.Generator, started: float) -> str:
    lines = []
    for epoch in range(1, EPOCHS + 1):
        for i in range(LOG_LINES):
            step = (epoch - 1) * LOG_LINES + i + 1
            ce = float(3.0 / step ** 0.3 + rng.normal(0, 0.05))
            lines.append({"kind": "train", "epoch": epoch, "step": step, "loss": ce + 0.3, "ce": ce,
                          "triplet": 0.3, "ce_weighted": ce, "triplet_weighted": 0.3, "lr": 1e-3,
                          "images_per_s": 500.0, "time": started + 6 * step})
        lines.append({"kind": "eval", "split": "test", "epoch": epoch, **_metrics(rng, 0.3 + 0.02 * epoch),
                      "time": started + 6 * epoch * LOG_LINES})
    return "".join(json.dumps(line) + "\n" for line in lines)


def _fill(record: EvalRecord, results: dict[str, Result]) -> None:
    record.dataset, record.protocol, record.runs = "synthetic", "dorsal_r", 3
    for name, result in results.items():
        setattr(record, name, result)


def _train_run(root: Path, i: int, rng: np.random.Generator, configs: list[dict[str, Any]], created: float) -> Job:
    suffix, _ = VARIANTS[i % len(VARIANTS)]
    state = STATES[i % len(STATES)]
    run = RunDir.at(root / f"run-{i:04d}").create()
    run.write_config(configs[i % len(configs)])
    group = i // GROUP
    labels = {"sweep_id": f"sweep-{group:03d}"} if group % 2 == 0 else {
        "study_id": f"study-{group:03d}", "arm": suffix, "seed": i % GROUP}
    run.update_status(state=state, name=f"demo {suffix}", created=created, started=created + 1,
                      ended=created + 600, epoch=float(EPOCHS if state == "succeeded" else EPOCHS // 2),
                      epochs=EPOCHS, error=None if state == "succeeded" else f"{state}: at epoch {EPOCHS // 2}",
                      **labels)
    results = {"epoch0": _result(rng, 0, 0.1)}
    if state == "succeeded":
        results.update(final=_result(rng, EPOCHS, 0.45), selected=_result(rng, EPOCHS - 2, 0.46))
    run.update_eval(lambda record: _fill(record, results))
    run.metrics_path.write_text(_metric_lines(rng, created))
    if i % 3 == 0:
        run.update_meta(add=["baseline" if i % 2 else "candidate"], note=f"run {i}: generated for the benchmark")
    return Job(id=run.run_id, path=str(run.path), argv=["-m", "core.train", "--run-dir", str(run.path)], cwd=str(REPO),
               created=created)


def _evaluation_job(root: Path, target: str, j: int, rng: np.random.Generator, created: float) -> Job:
    run = RunDir.at(root / "evaluations" / f"eval-{j:04d}")
    run.path.mkdir(parents=True)
    run.update_status(kind="evaluate", state="succeeded", name=f"evaluate {target} on 11k/palmar_r",
                      created=created, started=created, ended=created + 30, target=target)
    (run.path / "result.json").write_text(json.dumps({"test": _metrics(rng, 0.3)}))
    return Job(id=run.run_id, path=str(run.path), kind="evaluate", argv=["-m", "core.evaluate"], cwd=str(REPO),
               created=created)


def make_runs(root: Path, count: int, evaluations: int = 0, seed: int = 0) -> list[str]:
    """`count` training runs (and `evaluations` evaluation jobs of the first runs) under root, with their
    queue rows, none of them queued or running (no scheduler starts); the training runs' ids."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    configs = [to_dict(load_config(DEMO, overrides)) for _, overrides in VARIANTS]
    start = time.time() - 86_400
    jobs = [_train_run(root, i, rng, configs, start + 60 * i) for i in range(count)]
    jobs += [_evaluation_job(root, jobs[j % count].id, j, rng, start + 60 * count + j) for j in range(evaluations)]
    Queue(root).insert(jobs)
    return [job.id for job in jobs[:count]]


def _runs_page(start: str) -> None:
    from dashboard.app import main

    main(start)


def _timed(fn) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def run(quick: bool = False) -> dict:
    """Seconds of each step over 200 runs and 20 evaluation jobs (`quick`: 40 and 4)."""
    from streamlit.testing.v1 import AppTest

    from dashboard.views import pages
    from dashboard.views.runs import runs_table
    from jobs import api, summaries

    pages()  # the page modules imported up front: their import is no part of a render
    count = 40 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "checkpoints"
        make_runs(root, count, evaluations=count // 10)
        os.environ["HANDID_CHECKPOINTS"] = str(root)
        first, infos = _timed(lambda: api.list_runs(root, start_scheduler=False))
        again, _ = _timed(lambda: api.list_runs(root, start_scheduler=False))
        table, _ = _timed(lambda: runs_table(infos))
        summaries.forget()  # the page's first render reads every run as a freshly started dashboard does
        at = AppTest.from_function(_runs_page, args=("runs",), default_timeout=300)
        page_first, _ = _timed(at.run)
        page_again, _ = _timed(at.run)
        problems = [str(e.value) for e in at.exception] + [e.value for e in at.error]
    return {"runs": count, "evaluation_jobs": count // 10, "list_runs_first_s": first, "list_runs_again_s": again,
            "table_build_s": table, "page_first_render_s": page_first, "page_rerun_s": page_again,
            "page_under_2s": page_first < 2.0 and page_again < 2.0, "page_errors": len(problems)}


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "40 runs instead of 200", argv)


if __name__ == "__main__":
    raise SystemExit(main())
