"""The Run page's curves as people read them: x-axis by epoch, step or wall time; smoothing; raw or
weighted loss parts, labelled; resume points marked; legends below the plots (dashboard.figures)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import Config
from core.losses import registry as losses
from core.metrics import RETRIEVAL, VALIDATION
from dashboard.figures import X_AXES, curve_figure, resume_points

TOTAL = {"loss": "total (weighted sum)"}


def loss_columns(frame: pd.DataFrame, config: Config | None, parts: str) -> dict[str, str]:
    """{column: legend name} of the total and each loss part, `raw` or `weighted` (with its weight)."""
    weights = losses.active(config.loss) if config is not None else {}
    names = list(weights) or [n for n in losses.entries() if n in frame.columns]
    if parts == "raw":
        return {**TOTAL, **{n: f"{losses.label(n)} (raw)" for n in names}}
    return {**TOTAL, **{f"{n}_weighted": f"{losses.label(n)} × {weights[n]:g}" if n in weights
                        else f"{losses.label(n)} (weighted)" for n in names}}


def controls(metrics: pd.DataFrame) -> tuple[str, float, str]:
    """(x-axis, smoothing weight, loss parts) as chosen; wall time only when the metrics carry it."""
    axes = [x for x in X_AXES if x != "time" or ("time" in metrics.columns and metrics["time"].notna().any())]
    left, middle, right = st.columns(3)
    x = left.radio("x-axis", axes, format_func=X_AXES.get, horizontal=True, key="run_x")
    smoothing = middle.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="run_smoothing",
                              help="exponential moving average of the training curves (0: none); the raw "
                                   "line stays faint behind")
    parts = right.radio("Loss parts", ("weighted", "raw"), horizontal=True, key="run_parts",
                        help="weighted: each part times its weight, the terms of the total; raw: unweighted")
    return x, smoothing, parts


def chart(frame: pd.DataFrame, x: str, columns: dict[str, str], title: str, y_title: str, **options) -> None:
    present = {c: n for c, n in columns.items() if c in frame.columns and frame[c].notna().any()}
    if present and (x != "time" or "time" in frame.columns):
        st.plotly_chart(curve_figure(frame, x, present, y_title, title, **options), key=f"chart_{title}")


def show(metrics: pd.DataFrame, config: Config | None) -> None:
    """Training, prompt and evaluation curves of one run's metrics frame."""
    if metrics.empty or "kind" not in metrics.columns:
        st.info("No metrics yet.")
        return
    x, smoothing, parts = controls(metrics)
    train = metrics[metrics["kind"] == "train"]
    marks = {"resumes": resume_points(metrics, x), "train": train}
    left, right = st.columns(2)
    if not train.empty:
        smoothed = {**marks, "smoothing": smoothing}
        with left:
            # parts differ by orders of magnitude (center ~100, CE ~1): a log axis shows each
            chart(train, x, loss_columns(train, config, parts), "Losses", "loss (log scale)", log_y=True, **smoothed)
            chart(train, x, {"images_per_s": "images/s"}, "Throughput", "images/s", **smoothed)
        with right:
            chart(train, x, {"lr": "learning rate"}, "Learning rate", "lr", **marks)
    prompt = metrics[metrics["kind"] == "prompt"]
    if not prompt.empty:
        # its own phase, before image training: x is the prompt epoch
        chart(prompt.assign(epoch=prompt["prompt_epoch"]), "epoch", {"image_to_text": "image-to-text", "text_to_image": "text-to-image"},
              "Prompt learning (both encoders frozen)", "loss", smoothing=smoothing)
    evaluation_curves(metrics[metrics["kind"] == "eval"], x, marks, left, right)


def evaluation_curves(evals: pd.DataFrame, x: str, marks: dict, left, right) -> None:
    if evals.empty:
        return
    split = evals["split"] if "split" in evals.columns else pd.Series("test", index=evals.index)
    test, val = evals[split == "test"].copy(), evals[split == "val"].copy()
    for frame in (test, val):
        for key in RETRIEVAL:
            if key in frame.columns:
                frame[key] = frame[key] * 100
    with left:
        chart(test, x, {k: RETRIEVAL[k] for k in ("rank1", "mAP", "mAP_trapezoid")}, "Test retrieval per evaluation",
              "%", **marks)
        chart(val, x, {k: VALIDATION[k] for k in ("rank1", "mAP")}, "Validation (model selection)", "%", **marks)
    with right:
        chart(test, x, {"ratio": "intra / inter", "spread_pre_bn": "pre-BN spread"}, "Feature statistics (test)",
              "value", **marks)
