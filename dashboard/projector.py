"""The Embeddings page's projector figure: the projection scatter (dashboard.figures) with the
protocol's distractors ringed, searched identities highlighted across query and gallery, and
the PCA axes labelled with the variance they explain.

Overlays are extra WebGL traces over the same points, carrying the same customdata (row
positions), so clicking or lassoing them selects the points beneath.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sklearn.decomposition import PCA

from core.runs import Embeddings
from dashboard.figures import PER_POINT, projection_figure

DISTRACTOR_MARK = dict(symbol="circle-open", size=11, color="#444444", line=dict(width=1))
HIGHLIGHT_MARK = dict(symbol="circle-open", size=18, color="#000000", line=dict(width=3))


def explained_variance(emb: Embeddings) -> tuple[float, float]:
    """The fractions of the features' variance along the first two principal axes (the PCA layout's)."""
    features = emb.features
    if min(features.shape) < 2:
        return (1.0, 0.0) if len(features) else (0.0, 0.0)
    ratio = PCA(n_components=2, random_state=0).fit(features).explained_variance_ratio_
    return float(ratio[0]), float(ratio[1])


@st.cache_data(max_entries=16, show_spinner=False)
def cached_variance(path: str, version: int, _emb: Embeddings) -> tuple[float, float]:
    """`explained_variance`, once per embeddings file version."""
    return explained_variance(_emb)


def with_roles(frame: pd.DataFrame, rows: pd.DataFrame | None) -> pd.DataFrame:
    """The projection frame plus `role` (target | distractor, by image path; "" without a table)."""
    out = frame.copy()
    if rows is None:
        out["role"] = ""
        return out
    roles = rows.drop_duplicates("path").set_index("path")["role"]
    out["role"] = roles.reindex(out["path"]).fillna("").to_numpy()
    return out


def _overlay(fig: go.Figure, part: pd.DataFrame, name: str, marker: dict) -> None:
    fig.add_trace(go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=name, marker=marker,
                               customdata=part.index.to_numpy()[:, None], hoverinfo="skip", showlegend=True))


def projector_figure(frame: pd.DataFrame, colour: str, highlight: list[str] | None = None,
                     variance: tuple[float, float] | None = None, height: int = 560) -> go.Figure:
    """`projection_figure` plus the distractor rings (frame's `role`), rings round the `highlight`
    identities' points, and axis titles with the explained variance (PCA)."""
    frame = frame.reset_index(drop=True)
    fig = projection_figure(frame, colour, height)
    if colour == PER_POINT:
        fig.update_traces(showlegend=False)  # an identity per colour: no legend entry; the rings get one
    if "role" in frame.columns and (frame["role"] == "distractor").any():
        _overlay(fig, frame[frame["role"] == "distractor"], "distractor", DISTRACTOR_MARK)
    for identity in highlight or []:
        _overlay(fig, frame[frame["identity"] == identity], f"highlight: {identity}", HIGHLIGHT_MARK)
    if variance is not None:
        fig.update_xaxes(title=f"PC1 ({100 * variance[0]:.1f}% of variance)")
        fig.update_yaxes(title=f"PC2 ({100 * variance[1]:.1f}% of variance)")
    fig.update_layout(showlegend=any(t.showlegend for t in fig.data))
    return fig


def highlight_counts(frame: pd.DataFrame, identities: list[str]) -> pd.DataFrame:
    """Per highlighted identity: its query and gallery points (the search result under the chart)."""
    part = frame[frame["identity"].isin(identities)]
    counts = part.groupby(["identity", "split"]).size().unstack(fill_value=0)
    return counts.reindex(index=identities, columns=["query", "gallery"], fill_value=0).reset_index()


def point_row(frame: pd.DataFrame, row: int) -> dict[str, str]:
    """What the panel beside the chart says about a point."""
    point = frame.iloc[row]
    return {k: str(point[k]) for k in ("identity", "split", "aspect", "role", "path") if k in frame.columns
            and not (k == "role" and not point[k])} | {"position": f"({point['x']:.3f}, {point['y']:.3f})"}

