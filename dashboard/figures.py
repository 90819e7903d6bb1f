"""Plotly figures of the analysis pages: embedding scatters (WebGL), metric curves, result matrices."""

from __future__ import annotations

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
                      legend=dict(orientation="h"))
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
