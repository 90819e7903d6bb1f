"""Cross evaluation page: each checkpoint (rows, labelled with what it trained on) tested on each
test set (columns: the four 11k subsets, HD, and any other set evaluated), as a heatmap of
rank-1, mAP or mINP; missing cells can be queued as background evaluations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data.layouts import layouts
from core.data.protocols import DEFAULT
from core.metrics import RETRIEVAL
from core.runs import Metrics, RunDir
from dashboard.common import (checkpoints_root, eval_record, labels_of, percent, plain, readable_runs, run_config,
                              show_error, training_runs)
from dashboard.figures import matrix_figure
from dashboard.views import PageSpec
from jobs import api as jobs


PAGE = PageSpec("Cross evaluation", "cross_eval", ":material/grid_on:", order=60)

def standard_sets() -> list[str]:
    """The published test sets: every named protocol of every layout (`default` is no benchmark)."""
    return [f"{name}/{protocol}" for name, layout in layouts().items() for protocol in layout.protocols
            if protocol != DEFAULT]
METRICS = {RETRIEVAL[k]: k for k in ("rank1", "mAP", "mAP_trapezoid", "mINP")}


def train_set(run: RunDir) -> str:
    config = run_config(run)
    return f"{config.data.dataset}/{config.data.protocol}" if config else "?"


def results(run: RunDir) -> dict[str, Metrics]:
    """Test set (`dataset/protocol`) -> test metrics: the cross evaluations (of the checkpoint selected on
    validation, unless chosen otherwise) and the final evaluation on the run's own protocol."""
    record = eval_record(run)
    out = {key: result.test for key, result in record.cross.items()}
    if record.final is not None:
        out[record.key] = record.final.test
    return out


def has_checkpoint(run: RunDir) -> bool:
    return run.checkpoint("best").exists()


def row_label(run: RunDir, names: dict[str, str] | None = None) -> str:
    return f"{(names or {}).get(run.run_id, run.run_id)} · train {train_set(run)}"


def matrix(runs: list[RunDir], metric: str) -> pd.DataFrame:
    """Rows: runs; columns: the standard test sets then any others evaluated; values in % (NaN: not evaluated)."""
    names = labels_of(training_runs())
    per_run = {row_label(run, names): results(run) for run in runs}
    standard = standard_sets()
    extra = sorted({key for cells in per_run.values() for key in cells} - set(standard))
    return pd.DataFrame(
        [[_value(cells.get(column), metric) for column in (*standard, *extra)] for cells in per_run.values()],
        index=list(per_run), columns=[*standard, *extra], dtype=float,
    )


def _value(result: Metrics | None, metric: str) -> float | None:
    return percent((result or {}).get(metric))


def render() -> None:
    st.title("Cross evaluation")
    try:
        runs = [RunDir(checkpoints_root() / info.run_id) for info in readable_runs()]
        runs = [run for run in runs if has_checkpoint(run) or results(run)]
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
        config = run_config(run)
        if config is not None and config.data.root:
            roots.setdefault(config.data.dataset, str(config.data.root))
        for result in eval_record(run).cross.values():
            if result.dataset and result.root:
                roots.setdefault(result.dataset, result.root)
    return roots


def queue_form(runs: list[RunDir], table: pd.DataFrame) -> None:
    """Queue `python -m core.evaluate` jobs for chosen empty cells (runs with a checkpoint only)."""
    st.subheader("Fill missing cells")
    names = labels_of(training_runs())
    by_label = {row_label(run, names): run for run in runs if has_checkpoint(run)}
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
            st.error(plain(f"{column}: give the data root for {dataset}."))
            continue
        try:
            queued.append(jobs.evaluate(by_label[label].run_id, dataset, root_inputs[dataset].strip(), protocol,
                                        root=checkpoints_root()))
        except Exception as exc:
            show_error(exc)
    if queued:
        st.success(f"Queued {len(queued)} evaluation(s): {', '.join(queued)}. Results appear here when they finish.")
