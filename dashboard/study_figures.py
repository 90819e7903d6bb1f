"""Plotly figures of studies and sweeps (no Streamlit calls): forest plots of paired differences,
arm curves with a mean band, parallel coordinates and metric-versus-parameter scatters; PNG export.

Inputs are plain data: a study summary (jobs.studies.aggregate), frames of curves, a frame with one
row per run. PNG export drives a Chrome through kaleido; see `to_png`.
"""

from __future__ import annotations

from collections.abc import Sequence

import kaleido
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from kaleido.errors import KaleidoError
from plotly.subplots import make_subplots

from dashboard.figures import PALETTE

MARGIN = dict(l=10, r=10, t=40, b=10)
LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1)  # above the plot: never on an axis
ZERO = "#7f7f7f"


def forest_figure(summary: dict, metric: str = "mAP", height: int | None = None) -> go.Figure:
    """One row per comparison of `metric` against the reference: the mean paired difference with its
    95% CI bar, each seed's paired difference as a point just below it, and a line at 0."""
    rows = [c for c in summary["comparisons"] if c["metric"] == metric]
    fig = go.Figure()
    for i, c in enumerate(rows):
        fig.add_trace(go.Scatter(
            x=c["diffs"], y=[i + 0.18] * len(c["diffs"]), mode="markers", name="per seed", showlegend=i == 0,
            legendgroup="seeds", marker=dict(size=7, color="rgba(31,119,180,0.55)"), customdata=c["seeds"],
            hovertemplate="seed %{customdata}: %{x:+.4f}<extra></extra>"))
    shown = [(i, c) for i, c in enumerate(rows) if c["diff"] is not None]
    fig.add_trace(go.Scatter(
        x=[c["diff"] for _, c in shown], y=[i for i, _ in shown], mode="markers", name="mean, 95% CI",
        marker=dict(size=12, symbol="diamond", color="#d62728"),
        error_x=dict(type="data", array=[c["ci95"][1] - c["diff"] if c["ci95"] else 0 for _, c in shown],
                     arrayminus=[c["diff"] - c["ci95"][0] if c["ci95"] else 0 for _, c in shown],
                     thickness=2, width=8),
        customdata=[[_ci_text(c), c["n_pairs"], _p_text(c)] for _, c in shown],
        hovertemplate="%{x:+.4f} (95% CI %{customdata[0]})<br>%{customdata[2]}, %{customdata[1]} pairs"
                      "<extra></extra>"))
    fig.add_vline(x=0, line=dict(color=ZERO, dash="dash"))
    fig.update_layout(height=height or 160 + 60 * max(len(rows), 1), margin=dict(MARGIN, t=70), legend=LEGEND,
                      xaxis_title=f"paired difference in {metric}",
                      title=f"{metric}: arms against {summary['reference']}")
    fig.update_yaxes(tickvals=list(range(len(rows))), ticktext=[f"{c['arm']} − {c['reference']}" for c in rows],
                     range=[len(rows) - 0.5, -0.5], zeroline=False)
    return fig


def _ci_text(c: dict) -> str:
    return "–" if c["ci95"] is None else f"{c['ci95'][0]:+.4f} to {c['ci95'][1]:+.4f}"


def _p_text(c: dict) -> str:
    p, holm = c["p"], c.get("p_holm")
    return "p –" if p is None else f"p = {p:.3g}" + ("" if holm is None else f", Holm p = {holm:.3g}")


def resample(frames: Sequence[pd.DataFrame], x: str = "x", y: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Curves on a common x (every x any run has): (x [K], y [runs, K]), NaN outside a run's range
    (no extrapolation, so unfinished runs count only where they have data)."""
    parts = [f[[x, y]].dropna().sort_values(x) for f in frames]
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.empty(0), np.empty((0, 0))
    grid = np.unique(np.concatenate([p[x].to_numpy(float) for p in parts]))
    ys = np.stack([np.interp(grid, p[x].to_numpy(float), p[y].to_numpy(float), left=np.nan, right=np.nan)
                   for p in parts])
    return grid, ys


def _mean_std(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std per column over the runs that have a value there (std NaN below 2)."""
    count = np.sum(~np.isnan(ys), axis=0)
    total = np.nansum(ys, axis=0)
    mean = np.divide(total, count, out=np.full(ys.shape[1], np.nan), where=count > 0)
    squares = np.nansum((ys - mean) ** 2, axis=0)
    std = np.sqrt(np.divide(squares, count - 1, out=np.full(ys.shape[1], np.nan), where=count > 1))
    return mean, std


def arm_curves_figure(curves: dict[str, list[pd.DataFrame]], x: str = "x", y: str = "y", y_title: str = "",
                      height: int = 400) -> go.Figure:
    """Each arm's runs as thin lines, their mean as a thick line and mean ± std (over runs) as a band;
    `curves` maps an arm to one frame (columns x, y) per run, resampled on a common x."""
    fig = go.Figure()
    for i, (arm, frames) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        grid, ys = resample(frames, x, y)
        if not len(grid):
            continue
        mean, std = _mean_std(ys)
        band = ~np.isnan(std)
        fig.add_trace(go.Scatter(x=np.concatenate([grid[band], grid[band][::-1]]),
                                 y=np.concatenate([(mean + std)[band], (mean - std)[band][::-1]]),
                                 mode="lines", fill="toself", fillcolor=colour, opacity=0.2, line=dict(width=0),
                                 hoverinfo="skip", legendgroup=arm, showlegend=False, name=f"{arm} ± std"))
        for run in ys:
            fig.add_trace(go.Scatter(x=grid, y=run, mode="lines", line=dict(color=colour, width=1), opacity=0.35,
                                     legendgroup=arm, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=grid, y=mean, mode="lines", line=dict(color=colour, width=3), legendgroup=arm,
                                 name=f"{arm} (mean ± std of {len(ys)} runs)"))
    fig.update_layout(height=height, xaxis_title=x, yaxis_title=y_title or y, margin=MARGIN,
                      legend=LEGEND)
    return fig


MAX_TICKS = 12  # distinct values of a numeric key that get a tick each


def _numeric(values: pd.Series) -> np.ndarray | None:
    """A swept key's values as numbers (numeric strings such as "1e-4" included), None if any is not."""
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.to_numpy(float) if numeric.notna().all() else None


def _log_scale(x: np.ndarray) -> bool:
    """Positive values spanning a factor of 10 or more (learning rates) read better on a log axis."""
    return bool(len(x)) and bool((x > 0).all()) and x.max() >= 10 * x.min()


def _dimension(key: str, values: pd.Series) -> dict:
    """A parcoords axis: numbers (log10 where `_log_scale`, ticks labelled with the values) or
    categories coded 0..k-1 in sorted order, one tick per value."""
    x = _numeric(values)
    if x is None:
        codes, uniques = pd.factorize(values.astype(str), sort=True)
        return dict(label=key, values=codes.astype(float), tickvals=list(range(len(uniques))), ticktext=list(uniques))
    log = _log_scale(x)
    ticks = np.unique(x)
    dimension = dict(label=f"{key} (log)" if log else key, values=np.log10(x) if log else x)
    if len(ticks) <= MAX_TICKS:
        dimension.update(tickvals=list(np.log10(ticks) if log else ticks), ticktext=[f"{v:g}" for v in ticks])
    return dimension


def parallel_figure(runs: pd.DataFrame, keys: Sequence[str], metric: str, height: int = 420) -> go.Figure:
    """Parallel coordinates of the swept keys (one row of `runs` per run) and the metric, lines
    coloured by the metric."""
    fig = go.Figure(go.Parcoords(dimensions=[_dimension(key, runs[key]) for key in keys] + [
                                     dict(label=metric, values=pd.to_numeric(runs[metric]).to_numpy(float))],
                                 line=dict(color=pd.to_numeric(runs[metric]), colorscale="Viridis", showscale=True,
                                           colorbar=dict(title=metric))))
    fig.update_layout(height=height, margin=dict(l=60, r=60, t=60, b=20))
    return fig


def parameter_scatter(runs: pd.DataFrame, keys: Sequence[str], metric: str, height: int = 360) -> go.Figure:
    """The metric against each swept key, one panel per key sharing the metric axis (log axes as in
    `_log_scale`, categories for non-numeric keys); hover names the run (`run_id` column). Runs whose
    `state` column says `stopped` (early-stopped trials) are drawn as crosses."""
    fig = make_subplots(rows=1, cols=len(keys), shared_yaxes=True, horizontal_spacing=0.04)
    names = runs["run_id"] if "run_id" in runs else runs.index.astype(str)
    stopped = runs["state"].eq("stopped") if "state" in runs else pd.Series(False, index=runs.index)
    symbols = np.where(stopped, "x", "circle")
    for i, key in enumerate(keys, start=1):
        x = _numeric(runs[key])
        fig.add_trace(go.Scatter(x=runs[key].astype(str) if x is None else x, y=runs[metric], mode="markers",
                                 marker=dict(size=9, color=PALETTE[0], symbol=symbols), text=names, showlegend=False,
                                 hovertemplate=f"%{{text}}<br>{key} = %{{x}}<br>{metric} = %{{y:.4f}}<extra></extra>"),
                      row=1, col=i)
        kind = "category" if x is None else "log" if _log_scale(x) else "linear"
        fig.update_xaxes(title_text=key, type=kind, exponentformat="e", row=1, col=i)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_layout(height=height, margin=MARGIN)
    return fig


def to_png(fig: go.Figure, browser: str | None = None, width: int | None = None, height: int | None = None,
           scale: float = 2) -> tuple[bytes | None, str | None]:
    """(PNG bytes, None), or (None, the reason) when no Chrome can render it.

    kaleido drives a Chrome: `browser` (a path), else $BROWSER_PATH, else the first Chrome or
    Chromium on PATH (Debian's /usr/bin/chromium). MathJax is off, so nothing is fetched from a CDN
    and export works offline (plotly.js comes with plotly)."""
    kopts = {"mathjax": False, **({"path": browser} if browser else {})}
    opts = dict(format="png", width=width or fig.layout.width or 900, height=height or fig.layout.height or 500,
                scale=scale)
    try:
        return kaleido.calc_fig_sync(fig.to_dict(), opts=opts, kopts=kopts), None
    except (RuntimeError, OSError, TimeoutError, KaleidoError) as exc:
        return None, f"PNG export is not available here: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
