"""Cross evaluation page: each checkpoint (rows, labelled with what it trained on) tested on each
test set (columns: the four 11k subsets, HD, and any other set evaluated), as a heatmap of
rank-1, mAP or mINP; missing cells can be queued as background evaluations."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.runs import RunDir, list_runs
from dashboard.common import checkpoints_root, eval_data, percent, show_error
from dashboard.figures import matrix_figure
from jobs import api as jobs

STANDARD = ["11k/dorsal_r", "11k/dorsal_l", "11k/palmar_r", "11k/palmar_l", "hd/hd"]
METRICS = {"rank-1": "rank1", "mAP": "mAP", "mINP": "mINP"}


def train_set(run: RunDir) -> str:
    data = run.read_config().get("data") or {}
    return f"{data.get('dataset', '?')}/{data.get('protocol', '?')}"


def results(run: RunDir) -> dict[str, dict[str, Any]]:
    """Test set (`dataset/protocol`) -> metrics: the cross evaluations, and the final one on its own protocol."""
    evaluation = eval_data(run)
    out = dict(evaluation.get("cross") or {})
    if evaluation.get("final"):
        data = run.read_config().get("data") or {}
        own = f"{evaluation.get('dataset') or data.get('dataset')}/{evaluation.get('protocol') or data.get('protocol')}"
        out[own] = evaluation["final"]
    return out


def has_checkpoint(run: RunDir) -> bool:
    return run.checkpoint("best").exists()


def row_label(run: RunDir) -> str:
    return f"{run.run_id} · train {train_set(run)}"


def matrix(runs: list[RunDir], metric: str) -> pd.DataFrame:
    """Rows: runs; columns: the standard test sets then any others evaluated; values in % (NaN: not evaluated)."""
    per_run = {row_label(run): results(run) for run in runs}
    extra = sorted({key for cells in per_run.values() for key in cells} - set(STANDARD))
    return pd.DataFrame(
        [[_value(cells.get(column), metric) for column in (*STANDARD, *extra)] for cells in per_run.values()],
        index=list(per_run), columns=[*STANDARD, *extra], dtype=float,
    )


def _value(result: dict[str, Any] | None, metric: str) -> float | None:
    return percent((result or {}).get(metric))


def render() -> None:
    st.title("Cross evaluation")
    try:
        runs = [run for run in list_runs(checkpoints_root()) if has_checkpoint(run) or results(run)]
        if not runs:
            st.info("No trained checkpoints yet: train a run on the New run page, then test it on other sets here.")
            return
        label = st.radio("Metric", list(METRICS), horizontal=True, key="xe_metric")
        table = matrix(runs, METRICS[label])
        st.plotly_chart(matrix_figure(table, f"{label} (%) by train set (rows) and test set (columns)"),
                        key="xe_heatmap")
        st.dataframe(table.style.format("{:.1f}"), key="xe_table", placeholder="–")  # "–": not evaluated
        queue_form(runs, table)
    except Exception as exc:
        show_error(exc)


def known_roots(runs: list[RunDir]) -> dict[str, str]:
    """Dataset -> a data root some run used for it (trained on or evaluated on)."""
    roots: dict[str, str] = {}
    for run in runs:
        data = run.read_config().get("data") or {}
        if data.get("dataset") and data.get("root"):
            roots.setdefault(data["dataset"], str(data["root"]))
        for result in results(run).values():
            if result.get("dataset") and result.get("root"):
                roots.setdefault(result["dataset"], str(result["root"]))
    return roots


def queue_form(runs: list[RunDir], table: pd.DataFrame) -> None:
    """Queue `python -m core.evaluate` jobs for chosen empty cells (runs with a checkpoint only)."""
    st.subheader("Fill missing cells")
    by_label = {row_label(run): run for run in runs if has_checkpoint(run)}
    missing = [(label, column) for label in by_label for column in table.columns if pd.isna(table.at[label, column])]
    if not missing:
        st.info("Every checkpoint has been tested on every set shown.")
        return
    roots = known_roots(runs)
    datasets = sorted({column.split("/", 1)[0] for _, column in missing})
    with st.form("xe_queue"):
        cells = st.multiselect("Cells to evaluate", missing, format_func=lambda c: f"{c[0]} → {c[1]}", key="xe_cells")
        root_inputs = {d: st.text_input(f"Data root for {d}", roots.get(d, ""), key=f"xe_root_{d}") for d in datasets}
        submitted = st.form_submit_button("Queue evaluations")
    if not submitted:
        return
    if not cells:
        st.warning("Pick at least one cell.")
        return
    queued = []
    for label, column in cells:
        dataset, protocol = column.split("/", 1)
        if not root_inputs[dataset].strip():
            st.error(f"{column}: give the data root for {dataset}.")
            continue
        try:
            queued.append(jobs.evaluate(by_label[label].run_id, dataset, root_inputs[dataset].strip(), protocol,
                                        root=checkpoints_root()))
        except Exception as exc:
            show_error(exc)
    if queued:
        st.success(f"Queued {len(queued)} evaluation(s): {', '.join(queued)}. Results appear here when they finish.")
