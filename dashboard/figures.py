"""Plotly figures of the analysis pages: embedding scatters (WebGL), metric curves, result matrices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

PALETTE = px.colors.qualitative.Alphabet + px.colors.qualitative.Dark24 + px.colors.qualitative.Light24
FIXED_COLOURS = {"query": "#1f77b4", "gallery": "#ff7f0e", "right": "#2ca02c", "wrong": "#d62728"}
GREY = "#c7c7c7"
SYMBOLS = {"query": "circle", "gallery": "diamond"}
PER_POINT = "identity"  # too many values for a legend: one trace per split, colours cycled by identity
IDENTITY_SCALE = [[i / (len(PALETTE) - 1), c] for i, c in enumerate(PALETTE)]  # code i -> PALETTE[i] exactly


def projection_figure(frame: pd.DataFrame, colour: str, height: int = 560) -> go.Figure:
    """A WebGL scatter of a projection frame (x, y, split, identity, aspect, path, `colour`).

    Queries are circles, gallery images diamonds (one trace per colour group and split, sharing
    a legend entry). Each point's customdata is [its row position in `frame`], so a selection
    maps back to rows whatever the traces. Colours and customdata go as numeric arrays: per-point
    strings cost plotly seconds of validation at 5,000 points (bench/projector_points.py).
    """
    frame = frame.reset_index(drop=True)
    fig = go.Figure()
    codes = pd.factorize(frame["identity"], sort=True)[0] % len(PALETTE)
    groups = [("", frame)] if colour == PER_POINT else frame.groupby(colour, sort=True)
    for group, (name, part) in enumerate(groups):
        fixed = FIXED_COLOURS.get(str(name), PALETTE[group % len(PALETTE)])
        for first, (split, rows) in enumerate(part.groupby("split", sort=False)):
            colours = dict(color=codes[rows.index], colorscale=IDENTITY_SCALE, cmin=0, cmax=len(PALETTE) - 1) \
                if colour == PER_POINT else dict(color=fixed)
            fig.add_trace(go.Scattergl(
                x=rows["x"], y=rows["y"], mode="markers", name=str(name), legendgroup=str(name),
                showlegend=first == 0, customdata=rows.index.to_numpy()[:, None],
                marker=dict(**colours, size=7, opacity=0.85, symbol=SYMBOLS.get(split, "circle"), line=dict(width=0)),
                hovertext=[f"{i} · {a} · {s}<br>{p.rsplit('/', 1)[-1]}"
                           for i, a, s, p in zip(rows["identity"], rows["aspect"], rows["split"], rows["path"])],
                hoverinfo="text",
            ))
    fig.update_layout(height=height, showlegend=colour != PER_POINT, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(title=colour), dragmode="lasso")
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x")
    return fig


def curves_figure(series: dict[str, pd.DataFrame], x: str, y: str, y_title: str = "", height: int = 380) -> go.Figure:
    """One line per run (name -> frame with columns x and y), overlaid."""
    fig = go.Figure()
    for name, frame in series.items():
        fig.add_trace(go.Scatter(x=frame[x], y=frame[y], mode="lines+markers", name=name))
    fig.update_layout(height=height, xaxis_title=x, yaxis_title=y_title or y, margin=dict(l=10, r=10, t=30, b=10),
                      legend=LEGEND_BELOW)
    return fig


def matrix_figure(matrix: pd.DataFrame, title: str, height: int | None = None) -> go.Figure:
    """A heatmap of percentages (rows: runs, columns: test sets); empty cells are left blank."""
    z = matrix.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:.1f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=list(matrix.columns), y=list(matrix.index), text=text, texttemplate="%{text}",
                               colorscale="Viridis", zmin=0, zmax=100, colorbar=dict(title="%"),
                               hovertemplate="train %{y}<br>test %{x}<br>%{z:.2f}%<extra></extra>"))
    fig.update_layout(title=title, height=height or 160 + 40 * len(matrix), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(autorange="reversed")
    return fig


# training curves

X_AXES = {"epoch": "epoch", "step": "step", "time": "wall time"}
LEGEND_BELOW = dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0, xanchor="left", title_text="")
RESUME_COLOUR = "#7f7f7f"


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average with TensorBoard's debiasing: s_t = sum_i w^i x_{t-i} / sum_i w^i
    over the points so far (`weight` 0: the values as they are; missing points skipped)."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean()


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick values and plain labels (0.01, 0.2, 5, 100) of a log axis over [low, high]: 1, 2 and 5 per
    decade over up to two decades, then every decade."""
    low, high = max(low, 1e-12), max(high, low)
    first, last = int(np.floor(np.log10(low))), int(np.ceil(np.log10(high)))
    steps = (1, 2, 5) if last - first <= 2 else (1,)
    values = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
    inside = [v for v in values if low / 1.0001 <= v <= high * 1.0001]
    if len(inside) < 2:  # a narrow range: the ticks around it
        below = [v for v in values if v < low]
        above = [v for v in values if v > high]
        inside = below[-1:] + inside + above[:1]
    return inside, [f"{v:g}" for v in inside]


def x_positions(frame: pd.DataFrame, x: str, train: pd.DataFrame | None = None) -> pd.Series:
    """Each row's place on the x-axis: its epoch, its step (an evaluation sits at the last step of its
    epoch in `train`), or its wall time as a datetime."""
    if x == "time":
        return pd.to_datetime(frame["time"], unit="s")
    if x == "step" and ("step" not in frame.columns or frame["step"].isna().all()):
        return frame["epoch"].map(_epoch_ends(train))
    return frame[x]


def _epoch_ends(train: pd.DataFrame | None) -> Callable[[float], float]:
    """epoch -> the last training step logged in it or before it (0 before any)."""
    ends = (train.groupby("epoch")["step"].max() if train is not None and not train.empty and "step" in train
            else pd.Series(dtype=float))

    def at(epoch: float) -> float:
        before = ends[ends.index <= epoch]
        return float(before.max()) if len(before) else 0.0

    return at


def resume_points(metrics: pd.DataFrame, x: str) -> list[Any]:
    """Where training resumed (metrics.jsonl `resume` lines), on the x-axis `x`."""
    if "kind" not in metrics.columns:
        return []
    resumes = metrics[metrics["kind"] == "resume"]
    if resumes.empty or (x == "time" and "time" not in resumes.columns):
        return []
    return list(x_positions(resumes.drop(columns=["step"], errors="ignore"), x, metrics[metrics["kind"] == "train"]))


def curve_figure(frame: pd.DataFrame, x: str, columns: dict[str, str], y_title: str, title: str = "",
                 log_y: bool = False, smoothing: float = 0.0, resumes: list[Any] = (), dashed: set[str] = frozenset(),
                 train: pd.DataFrame | None = None, height: int = 340) -> go.Figure:
    """One line per column of `frame` ({column: legend name}) against `x` (X_AXES), smoothed (the raw line
    kept faint behind), `dashed` columns dashed, resume points as dotted vertical lines, legend below."""
    fig = go.Figure()
    xs = x_positions(frame, x, train)
    shown = []
    for i, (column, name) in enumerate(columns.items()):
        if column not in frame.columns or frame[column].isna().all():
            continue
        colour = PALETTE[i % len(PALETTE)]
        values = frame[column]
        shown.append(values.dropna())
        dash = "dash" if column in dashed else "solid"
        if smoothing > 0:
            fig.add_trace(go.Scatter(x=xs, y=values, mode="lines", name=f"{name} (raw)", showlegend=False,
                                     line=dict(color=colour, width=1, dash=dash), opacity=0.3, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=xs, y=smooth(values, smoothing), mode="lines+markers" if len(frame) < 30 else "lines",
                                 name=name, line=dict(color=colour, dash=dash)))
    for point in resumes:
        fig.add_vline(x=point, line=dict(color=RESUME_COLOUR, dash="dot", width=1))
    if resumes:  # one legend entry for every resume line
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="resumed",
                                 line=dict(color=RESUME_COLOUR, dash="dot", width=1)))
    fig.update_layout(title=title or None, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=LEGEND_BELOW, xaxis_title=X_AXES[x], yaxis_title=y_title)
    if log_y and shown:
        values = pd.concat(shown)
        values = values[values > 0]
        fig.update_yaxes(type="log")
        if not values.empty:
            ticks, labels = log_ticks(float(values.min()), float(values.max()))
            fig.update_yaxes(tickvals=ticks, ticktext=labels)
    return fig
