"""Verification figures of runs (core.verification, read from eval.json): ROC and DET curves
overlaid per run, and the EER / TAR@FAR table, for the Run and Compare pages.

ROC: TAR against FAR on a log FAR axis (the operating region of a biometric system is at small
FAR). DET: FNMR against FMR on normal-deviate (probit) axes, as ISO/IEC 19795-1 draws it, so
curves of normally distributed scores are straight lines; ticks are labelled in percent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from scipy.stats import norm

from core.metrics import FAR_TARGETS, VERIFICATION
from core.runs import Result, RunDir
from dashboard.common import eval_record, labels_of, percent, training_runs

DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)
DET_CLIP = (1e-4, 1 - 1e-4)  # 0 and 1 have no normal deviate; plotted at the axis ends
HEIGHT = 360


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title=title, height=HEIGHT, xaxis_title=x, yaxis_title=y, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h"))
    return fig


def roc_figure(curves: dict[str, dict]) -> go.Figure:
    """ROC of each run (name -> a result's curves), TAR against FAR on a log FAR axis, with the
    recorded FAR 1e-2 / 1e-3 operating points marked."""
    fig = go.Figure()
    for name, c in curves.items():
        far, tar = np.asarray(c["roc"]["far"]), np.asarray(c["roc"]["tar"])
        keep = far > 0  # FAR 0 has no place on a log axis
        fig.add_trace(go.Scatter(x=far[keep], y=tar[keep], mode="lines", name=name,
                                 customdata=np.asarray(c["roc"]["threshold"])[keep],
                                 hovertemplate="FAR %{x:.2e}<br>TAR %{y:.3f}<br>threshold %{customdata:.4f}"))
        points = c.get("thresholds", {})
        if points.get("far"):
            fig.add_trace(go.Scatter(x=[max(f, DET_CLIP[0]) for f in points["far"]], y=points["tar"], mode="markers",
                                     name=f"{name} · thresholds", marker=dict(symbol="x", size=9),
                                     customdata=np.stack([points["far_target"], points["threshold"]], axis=1),
                                     hovertemplate="FAR target %{customdata[0]:g}<br>threshold %{customdata[1]:.4f}"
                                                   "<br>TAR %{y:.3f}"))
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, "ROC", "false accept rate (log)", "true accept rate")


def probit(values: np.ndarray) -> np.ndarray:
    """Rates as normal deviates (norm.ppf), clipped away from 0 and 1."""
    return norm.ppf(np.clip(np.asarray(values, dtype=float), *DET_CLIP))


def det_figure(curves: dict[str, dict]) -> go.Figure:
    """DET of each run: FNMR against FMR on probit axes, ticks in percent."""
    fig = go.Figure()
    for name, c in curves.items():
        fmr, fnmr = np.asarray(c["det"]["fmr"]), np.asarray(c["det"]["fnmr"])
        fig.add_trace(go.Scatter(x=probit(fmr), y=probit(fnmr), mode="lines", name=name,
                                 customdata=np.stack([fmr, fnmr], axis=1),
                                 hovertemplate="FMR %{customdata[0]:.2e}<br>FNMR %{customdata[1]:.3f}"))
    ticks = dict(tickvals=probit(np.array(DET_TICKS)).tolist(), ticktext=[f"{100 * t:g}%" for t in DET_TICKS])
    fig.update_xaxes(**ticks, range=probit(np.array([DET_TICKS[0], DET_TICKS[-1]])).tolist())
    fig.update_yaxes(**ticks, range=probit(np.array([DET_TICKS[0], DET_TICKS[-1]])).tolist())
    return _layout(fig, "DET", "false match rate", "false non-match rate")


def summary_table(results: dict[str, Result]) -> pd.DataFrame:
    """One row per run: EER, ROC AUC and TAR at each FAR target (percent, mean ± std over runs) and the
    recorded decision thresholds."""
    rows = []
    for name, result in results.items():
        test, points = result.test, result.curves.get("thresholds", {})
        row = {"run": name}
        for key, label in VERIFICATION.items():
            value, std = test.get(key), test.get(f"{key}_std")
            row[label] = "" if value is None else f"{percent(value):.2f}" + ("" if std is None else f" ± {percent(std):.2f}")
        for far, threshold in zip(points.get("far_target", []), points.get("threshold", [])):
            row[f"threshold at FAR {far:g}"] = round(float(threshold), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def has_curves(result: Result | None) -> bool:
    return result is not None and bool(result.curves.get("roc", {}).get("far"))


def show_verification(results: dict[str, Result], key: str) -> None:
    """The table, then ROC and DET side by side, of the results that have verification curves."""
    usable = {name: r for name, r in results.items() if has_curves(r)}
    if not usable:
        st.info("No verification curves recorded: evaluations made before they were added have none.")
        return
    st.dataframe(summary_table(usable), hide_index=True, key=f"{key}_table")
    st.caption(f"Every query-gallery pair of the first query/gallery run scored by cosine similarity (same identity: "
               f"genuine). EER and TAR at FAR ({', '.join(f'{f:g}' for f in FAR_TARGETS.values())}) in %, mean ± std "
               "over runs; thresholds accept scores >= the value (what core.identify uses).")
    curves = {name: r.curves for name, r in usable.items()}
    left, right = st.columns(2)
    left.plotly_chart(roc_figure(curves), key=f"{key}_roc")
    right.plotly_chart(det_figure(curves), key=f"{key}_det")


def run_verification(run: RunDir) -> None:
    """The Run page's section: the final evaluation's verification figures."""
    final = eval_record(run).final
    if final is not None:
        st.subheader("Verification")
        show_verification({f"final (epoch {final.epoch})": final}, key="run_verification")


def compare_verification(runs: list[RunDir]) -> None:
    """The Compare page's tab: each run's final verification figures, curves overlaid."""
    names = labels_of(training_runs())
    finals = {names.get(run.run_id, run.run_id): eval_record(run).final for run in runs}
    show_verification({name: r for name, r in finals.items() if r is not None}, key="cmp_verification")
