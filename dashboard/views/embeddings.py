"""Embeddings page: a checkpoint's query and gallery features in 2-D (PCA with the variance of its
axes, t-SNE, UMAP), coloured by identity, aspect, split or rank-1 outcome, distractors ringed;
search identities to highlight them across query and gallery; click a point to see its image
beside the chart, select points to see their images and nearest neighbours. Slow projections
are computed in the background and cached in the run folder."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.projections import methods
from core.runs import Embeddings, RunDir
from dashboard import analysis
from dashboard.common import show_error
from dashboard.figures import FIXED_COLOURS
from dashboard.projector import cached_variance, highlight_counts, point_row, projector_figure, with_roles
from dashboard.protocol_rows import test_rows
from dashboard.views import PageSpec
from dashboard.widgets import image_grid


PAGE = PageSpec("Embeddings", "embeddings", ":material/scatter_plot:", order=30)

METHOD_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
COLOURS = {"identity": "identity", "aspect": "aspect", "query / gallery": "split", "rank-1 right / wrong": "rank-1"}
SELECTED_SHOWN = 24
NEIGHBOUR_ROWS = 6
NEIGHBOURS = 5


def render() -> None:
    st.title("Embeddings")
    try:
        run = analysis.pick_run_with_embeddings()
        if run is None:
            return
        left, right = st.columns(2)
        method = left.radio("Projection", methods(), format_func=METHOD_LABELS.get, horizontal=True,
                            key="emb_method")
        colour = right.radio("Colour by", list(COLOURS), horizontal=True, key="emb_colour")
        try:
            frame = analysis.projection(run, method)
        except Exception as exc:
            show_error(exc)
            st.button("Retry", key="emb_retry", on_click=analysis.retry_projection, args=(run, method))
            return
        if frame is None:
            wait_for_projection(run, method)
            return
        show_projection(run, frame, method, COLOURS[colour])
    except Exception as exc:
        show_error(exc)


@st.fragment(run_every=1.0)
def wait_for_projection(run: RunDir, method: str) -> None:
    """A note while the background thread works; reruns the page when the projection is ready or failed."""
    try:
        ready = analysis.projection(run, method) is not None
        emb = analysis.embeddings(run)
    except Exception:
        ready = True  # the page run shows the error
    if ready:
        st.rerun()
    points = len(emb.query_labels) + len(emb.gallery_labels)
    st.info(f"Computing the {METHOD_LABELS[method]} projection of {points:,} points in the background; "
            "it is cached in the run folder for next time.", icon=":material/hourglass_top:")


def show_projection(run: RunDir, frame: pd.DataFrame, method: str, colour: str) -> None:
    emb = analysis.embeddings(run)
    frame = with_roles(analysis.with_rank1(frame, analysis.outcomes(run)),
                       test_rows(run, "distractors are not marked"))
    queries = int((frame["split"] == "query").sum())
    distractors = int((frame["role"] == "distractor").sum())
    st.caption(f"{queries:,} queries (circles) and {len(frame) - queries:,} gallery images (diamonds"
               + (f"; {distractors:,} distractors ringed" if distractors else "") + f") of "
               f"{frame['identity'].nunique():,} identities. Click, box- or lasso-select points to see their "
               "images and nearest neighbours.")
    highlight = st.multiselect("Highlight identities (type to search)", sorted(frame["identity"].unique()),
                               key="emb_highlight")
    variance = cached_variance(str(run.embeddings_path), run.embeddings_path.stat().st_mtime_ns, emb) \
        if method == "pca" else None
    chart, panel = st.columns([3, 1])
    with chart:
        event = st.plotly_chart(projector_figure(frame, colour, highlight, variance), on_select="rerun",
                                selection_mode=("points", "box", "lasso"), key=f"emb_chart_{run.run_id}_{method}")
    rows = selected_rows(event)
    with panel:
        show_point(frame, rows)
    if highlight:
        st.dataframe(highlight_counts(frame, highlight), hide_index=True, key="emb_highlight_counts")
    show_selection(emb, frame, rows)


def show_point(frame: pd.DataFrame, rows: list[int]) -> None:
    """The panel beside the chart: the clicked (first selected) point's image and what it is."""
    if not rows:
        st.caption("Click a point to see its image here.")
        return
    row = rows[0]
    facts = point_row(frame, row)
    image_grid([facts["path"]], [f"{facts['identity']} · {facts['split']}"],
               [FIXED_COLOURS.get(facts["split"], "#d0d0d0")], columns=1, width=220, key="emb_point")
    st.dataframe(pd.DataFrame({"": list(facts), "value": list(facts.values())}), hide_index=True,
                 key="emb_point_facts")


def selected_rows(event: object) -> list[int]:
    """Row positions of the selected points, read from their customdata."""
    points = getattr(getattr(event, "selection", None), "points", None) or []
    rows = set()
    for point in points:
        data = point.get("customdata")
        if isinstance(data, dict):  # a typed array serialised by index
            data = list(data.values())
        if data is not None:
            rows.add(int(data[0] if isinstance(data, (list, tuple)) else data))
    return sorted(rows)


def show_selection(emb: Embeddings, frame: pd.DataFrame, rows: list[int]) -> None:
    """The selected points' images, then each one's nearest neighbours (green: same identity)."""
    if not rows:
        return
    paths, identities, splits = frame["path"].to_numpy(), frame["identity"].to_numpy(), frame["split"].to_numpy()
    shown = rows[:SELECTED_SHOWN]
    st.subheader(f"{len(rows)} selected" + (f" (first {len(shown)} shown)" if len(rows) > len(shown) else ""))
    image_grid([paths[r] for r in shown], captions=[f"{identities[r]} · {splits[r]}" for r in shown],
               columns=8, width=120, key="emb_selected")
    st.subheader("Nearest neighbours")
    st.caption("Cosine similarity over all query and gallery points; green border: same identity, red: another.")
    heads = rows[:NEIGHBOUR_ROWS]
    neighbours, sims = analysis.nearest_neighbours(emb, heads, NEIGHBOURS)
    for row, idx, sim in zip(heads, neighbours, sims):
        image_grid(
            [paths[row], *(paths[i] for i in idx)],
            captions=[f"selected: {identities[row]}",
                      *(f"{identities[i]} · {splits[i]} · {s:.3f}" for i, s in zip(idx, sim))],
            borders=[FIXED_COLOURS["query"], *(FIXED_COLOURS["right" if identities[i] == identities[row] else "wrong"]
                                               for i in idx)],
            columns=NEIGHBOURS + 1, width=120, key=f"emb_neighbours_{row}",
        )
