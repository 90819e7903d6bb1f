"""Errors page: the queries a checkpoint misidentifies at rank 1, hardest first, each with its
top-k gallery (green: same identity, red: another) and where its true match ranked."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core.runs import Embeddings
from dashboard import analysis
from dashboard.common import plain, show_error
from dashboard.figures import FIXED_COLOURS
from dashboard.views import PageSpec
from dashboard.widgets import image_grid


PAGE = PageSpec("Errors", "errors", ":material/error:", order=40)

PAGE_SIZE = 10
TABLE_COLUMNS = {"query": "query", "identity": "identity", "aspect": "aspect", "true_rank": "true-match rank",
                 "true_similarity": "true-match similarity", "top1_similarity": "rank-1 similarity"}


def render() -> None:
    st.title("Errors")
    try:
        run = analysis.pick_run_with_embeddings()
        if run is None:
            return
        k = st.slider("Gallery images per query (top k)", 1, 10, 5, key="err_k")
        usable = int((analysis.outcomes(run, k)["true_rank"] > 0).sum())
        wrong = analysis.wrong_queries(run, k)
        if wrong.empty:
            st.success(f"All {usable:,} queries find their own identity at rank 1.")
            return
        st.caption(f"{len(wrong):,} of {usable:,} queries are misidentified at rank 1, hardest first "
                   "(the true match ranked lowest).")
        shown = filtered(wrong)
        if shown.empty:
            st.info("No misidentified query matches these filters.")
            return
        st.dataframe(shown[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS), hide_index=True, height=240,
                     key="err_table")
        pages = math.ceil(len(shown) / PAGE_SIZE)
        page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="err_page") if pages > 1 else 1
        emb = analysis.embeddings(run)
        for row in shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE].itertuples():
            show_query(emb, row, k)
    except Exception as exc:
        show_error(exc)


def filtered(wrong: pd.DataFrame) -> pd.DataFrame:
    """The misidentified queries of the chosen aspects and identities (all when none chosen)."""
    left, right = st.columns(2)
    aspects = left.multiselect("Aspect", sorted(wrong["aspect"].unique()), key="err_aspects")
    identities = right.multiselect("Identity", sorted(wrong["identity"].unique()), key="err_identities")
    keep = pd.Series(True, index=wrong.index)
    if aspects:
        keep &= wrong["aspect"].isin(aspects)
    if identities:
        keep &= wrong["identity"].isin(identities)
    return wrong[keep]


def show_query(emb: Embeddings, row: object, k: int) -> None:
    """One misidentified query: itself, its top k, and its true match when that ranked below k."""
    gallery = list(row.top_indices)
    paths = [row.path, *(emb.gallery_paths[i] for i in gallery)]
    captions = [f"query · {row.identity}", *(f"{rank}. {emb.gallery_identities[i]} · {s:.3f}"
                                             for rank, (i, s) in enumerate(zip(gallery, row.top_similarities), 1))]
    borders = [FIXED_COLOURS["query"], *(FIXED_COLOURS["right" if c else "wrong"] for c in row.top_correct)]
    if row.true_rank > k:
        paths.append(emb.gallery_paths[row.true_index])
        captions.append(f"{row.true_rank}. {row.identity} · {row.true_similarity:.3f} (true match)")
        borders.append(FIXED_COLOURS["right"])
    with st.container(border=True):
        st.markdown(f"**Query {row.query}** · identity {plain(row.identity)} · {plain(row.aspect)} · true match at rank "
                    f"**{row.true_rank}** (similarity {row.true_similarity:.3f}, rank-1 {row.top1_similarity:.3f})")
        image_grid(paths, captions, borders, columns=k + 2, width=130, key=f"err_grid_{row.query}")
        if st.button("Enlarge", key=f"err_enlarge_{row.query}", icon=":material/zoom_in:"):
            true_match = f"true match: rank {row.true_rank}, {row.true_similarity:.3f}"
            enlarge([paths[0], paths[1], emb.gallery_paths[row.true_index]],
                    [captions[0], f"rank-1: {captions[1]}", true_match])


@st.dialog("Query, its rank-1 match and its true match", width="large")
def enlarge(paths: list[str], captions: list[str]) -> None:
    for column, path, caption in zip(st.columns(len(paths)), paths, captions):
        column.image(str(path), caption=plain(caption), width="stretch")
