"""Run page: live curves, final metrics per protocol, the resolved config, the log, and
evaluating the checkpoint on another protocol as a background job.

Curves and status refresh every few seconds while the run is queued or running. Everything is
read from the run folder (cached by file versions); nothing here trains or evaluates in-process.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st
import yaml

from core.data.protocols import protocol_names
from core.data.readers import DATASETS
from core.runs import RunDir
from dashboard.common import (
    ACTIVE_STATES,
    REFRESH_SECONDS,
    checkpoints_root,
    duration,
    eval_data,
    metrics_frame,
    pick_run,
    percent,
    show_error,
)
from dashboard.widgets import metric_cards
from jobs import api as jobs

LOSS_COMPONENTS = ("loss", "ce", "i2t", "triplet", "center", "arcface")
RETRIEVAL = {"rank1": "rank-1", "rank5": "rank-5", "rank10": "rank-10", "rank20": "rank-20", "mAP": "mAP", "mINP": "mINP"}
HEADLINE = ("rank1", "mAP", "mINP")


def status_line(run: RunDir) -> None:
    """The run's state, epoch, duration and error."""
    status = run.read_status()
    state = status.get("state", "unknown")
    epoch = f"epoch {status.get('epoch', 0)}/{status['epochs']}" if status.get("epochs") else ""
    started, ended = status.get("started"), status.get("ended")
    took = duration(ended - started) if isinstance(started, (int, float)) and isinstance(ended, (int, float)) else ""
    st.markdown(f"**{state}** {epoch} {'· took ' + took if took else ''}")
    if status.get("error"):
        st.error(status["error"])


def line_chart(frame: pd.DataFrame, x: str, columns: list[str], title: str, y_title: str, log_y: bool = False) -> None:
    """One plotly line per column (long format), skipping columns the frame lacks."""
    present = [c for c in columns if c in frame.columns and frame[c].notna().any()]
    if not present:
        return
    long = frame[[x, *present]].melt(id_vars=x, var_name="series", value_name="value").dropna()
    figure = px.line(long, x=x, y="value", color="series", title=title, labels={"value": y_title},
                     markers=len(frame) < 30, log_y=log_y)
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    st.plotly_chart(figure, key=f"chart_{title}")


def curves(run: RunDir) -> None:
    """Training curves (loss components, lr, images/s) and per-evaluation retrieval curves."""
    metrics = metrics_frame(run)
    if metrics.empty or "kind" not in metrics.columns:
        st.info("No metrics yet.")
        return
    train = metrics[metrics["kind"] == "train"]
    evals = metrics[metrics["kind"] == "eval"].copy()
    left, right = st.columns(2)
    if not train.empty:
        with left:
            # unweighted components differ by orders of magnitude (center ~100, CE ~1): a log axis shows each
            line_chart(train, "step", list(LOSS_COMPONENTS), "Losses", "loss (log scale)", log_y=True)
            line_chart(train, "step", ["images_per_s"], "Throughput", "images/s")
        with right:
            line_chart(train, "step", ["lr"], "Learning rate", "lr")
    if not evals.empty:
        for key in RETRIEVAL:
            if key in evals.columns:
                evals[RETRIEVAL[key]] = evals[key] * 100
        with left:
            line_chart(evals, "epoch", ["rank-1", "mAP", "mINP"], "Retrieval per evaluation", "%")
        with right:
            line_chart(evals, "epoch", ["ratio"], "Intra / inter-identity distance", "ratio")


def mean_std(result: dict[str, Any], key: str) -> str:
    """`91.23 ± 1.05` (percent) for a metric with its std over runs; empty when missing."""
    if key not in result:
        return ""
    std = result.get(f"{key}_std")
    return f"{percent(result[key]):.2f}" + (f" ± {percent(std):.2f}" if std is not None else "")


def metrics_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per protocol: each retrieval metric as mean ± std over runs, in percent."""
    rows = [{"protocol": name, **{label: mean_std(r, key) for key, label in RETRIEVAL.items()}}
            for name, r in results.items() if r]
    return pd.DataFrame(rows, columns=["protocol", *RETRIEVAL.values()])


def gains_table(evaluation: dict[str, Any]) -> pd.DataFrame:
    """Epoch 0 (before training) -> final, per metric, in percent."""
    start, final = evaluation.get("epoch0", {}), evaluation.get("final", {})
    rows = [
        {"metric": label, "epoch 0": percent(start.get(key)), "final": percent(final.get(key)),
         "gain": percent(final[key] - start[key]) if key in start and key in final else None}
        for key, label in RETRIEVAL.items() if key in start or key in final
    ]
    return pd.DataFrame(rows, columns=["metric", "epoch 0", "final", "gain"])


def results(run: RunDir, config: dict[str, Any]) -> None:
    """Headline cards, per-protocol table and epoch-0 gains from eval.json."""
    evaluation = eval_data(run)
    final = evaluation.get("final")
    if not final:
        st.info("No final evaluation yet.")
        return
    start = evaluation.get("epoch0", {})
    metric_cards(
        {RETRIEVAL[k]: percent(final.get(k)) for k in HEADLINE},
        {RETRIEVAL[k]: percent(final[k] - start[k]) for k in HEADLINE if k in start and k in final},
    )
    data = config.get("data", {})
    trained_on = evaluation.get("protocol") or f"{data.get('dataset', '?')}/{data.get('protocol', '?')}"
    runs = evaluation.get("runs", "?")
    best = f"; best epoch {evaluation['best_epoch']}" if "best_epoch" in evaluation else ""
    st.caption(f"Mean ± std over {runs} query/gallery runs{best}.")
    st.dataframe(metrics_table({str(trained_on): final}), hide_index=True, placeholder="–")
    st.dataframe(gains_table(evaluation), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("epoch 0", "final", "gain")})


def live(run: RunDir, config: dict[str, Any]) -> None:
    status_line(run)
    curves(run)
    results(run, config)


@st.fragment(run_every=REFRESH_SECONDS)
def live_fragment(run: RunDir, config: dict[str, Any]) -> None:
    """`live` every few seconds; a full rerun once the run has finished drops the timer."""
    live(run, config)
    if run.read_status().get("state") not in ACTIVE_STATES:
        st.rerun(scope="app")


def evaluate_form(run: RunDir) -> None:
    """Queue an evaluation of this run's checkpoint on another dataset / protocol."""
    dataset = st.selectbox("Dataset", DATASETS, key="run_eval_dataset")
    with st.form("run_eval"):
        root = st.text_input("Dataset root", key="run_eval_root")
        protocol = st.selectbox("Protocol", protocol_names(dataset), key="run_eval_protocol")
        checkpoint = st.selectbox("Checkpoint", ("best", "last"), key="run_eval_checkpoint")
        submitted = st.form_submit_button("Evaluate", key="run_eval_submit")
    if submitted:
        try:
            job = jobs.evaluate(run.run_id, dataset, root, protocol, checkpoint, root=checkpoints_root())
            st.success(f"Evaluation {job} queued: its result appears below when it finishes.")
        except Exception as exc:
            show_error(exc)


def cross_results(run: RunDir) -> None:
    """Earlier evaluations of this run on other protocols (eval.json["cross"])."""
    cross = eval_data(run).get("cross", {})
    if cross:
        st.dataframe(metrics_table(cross), hide_index=True, placeholder="–")
    else:
        st.caption("No evaluations on other protocols yet.")


def render() -> None:
    st.title("Run")
    run = pick_run()
    if run is None:
        return
    try:
        config = run.read_config()
        if run.read_status().get("state") in ACTIVE_STATES:
            live_fragment(run, config)
        else:
            live(run, config)
        st.subheader("Evaluate on another protocol")
        evaluate_form(run)
        cross_results(run)
        with st.expander("Resolved config"):
            st.code(yaml.safe_dump(config, sort_keys=False), language="yaml")
        with st.expander("Log tail", expanded=run.read_status().get("state") == "failed"):
            st.code(run.log_tail(200) or "(empty)", language="text")
    except Exception as exc:  # a half-written or foreign run folder must not take the page down
        show_error(exc)
