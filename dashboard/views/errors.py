"""Errors page: the queries a checkpoint misidentifies at rank 1, hardest first, each with its
top-k gallery (green: same identity, red: another) and where its true match ranked; facets (what
the rank-1 match was, the true match's rank, the dataset's metadata), the hard cases as CSV, and
the attention maps of a picked mistake (query, wrong rank-1 match, true match)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core.facets import METADATA, error_facets, hard_cases
from core.runs import Embeddings, RunDir
from dashboard import analysis
from dashboard.attention import mistake_maps
from dashboard.common import plain, show_error
from dashboard.protocol_rows import test_rows
from dashboard.figures import FIXED_COLOURS
from dashboard.views import PageSpec
from dashboard.widgets import image_grid


PAGE = PageSpec("Errors", "errors", ":material/error:", order=40)

PAGE_SIZE = 10
TABLE_COLUMNS = {"query": "query", "identity": "identity", "aspect": "aspect", "true_rank": "true-match rank",
                 "true_similarity": "true-match similarity", "top1_similarity": "rank-1 similarity",
                 "rank1_identity": "rank-1 identity", "rank1_kind": "rank-1 match was"}


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
        facets = error_facets(wrong, analysis.embeddings(run),
                              test_rows(run, "mistakes are not split by kind or metadata"))
        shown = filtered(facets)
        if shown.empty:
            st.info("No misidentified query matches these filters.")
            return
        columns = {**TABLE_COLUMNS, **{c: label for c, label in METADATA.items() if c in shown.columns}}
        st.dataframe(shown[list(columns)].rename(columns=columns), hide_index=True, height=240, key="err_table")
        st.download_button("Download these hard cases (CSV)", hard_cases(shown).to_csv(index=False),
                           file_name=f"{run.run_id}-hard-cases.csv", mime="text/csv", key="err_csv",
                           icon=":material/download:")
        pages = math.ceil(len(shown) / PAGE_SIZE)
        page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="err_page") if pages > 1 else 1
        on_page = shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        show_attention(run, on_page)
        emb = analysis.embeddings(run)
        for row in on_page.itertuples():
            show_query(emb, row, k)
    except Exception as exc:
        show_error(exc)


def filtered(facets: pd.DataFrame) -> pd.DataFrame:
    """The misidentified queries that pass every chosen facet (a facet left empty keeps all)."""
    left, middle, right = st.columns(3)
    keep = pd.Series(True, index=facets.index)
    for column, label, key, where in (("aspect", "Aspect", "err_aspects", left),
                                      ("identity", "Identity", "err_identities", middle),
                                      ("rank1_kind", "Rank-1 match was", "err_kinds", right)):
        chosen = where.multiselect(label, sorted(facets[column].unique()), key=key)
        if chosen:
            keep &= facets[column].isin(chosen)
    lowest, highest = int(facets["true_rank"].min()), int(facets["true_rank"].max())
    if highest > lowest:
        low, high = st.slider("True-match rank", lowest, highest, (lowest, highest), key="err_rank")
        keep &= facets["true_rank"].between(low, high)
    present = [c for c in METADATA if c in facets.columns]
    for column, where in zip(present, st.columns(len(present)) if present else []):
        keep &= metadata_filter(facets[column], METADATA[column], f"err_meta_{column}", where)
    return facets[keep]


def metadata_filter(values: pd.Series, label: str, key: str, where) -> pd.Series:
    """A range slider for a numeric column with several values, else a multiselect of its values."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 2:
        lowest, highest = int(values.min()), int(values.max())
        low, high = where.slider(label, lowest, highest, (lowest, highest), key=key)
        return values.between(low, high)
    chosen = where.multiselect(label, sorted(values.dropna().unique().tolist()), key=key)
    return values.isin(chosen) if chosen else pd.Series(True, index=values.index)


def show_attention(run: RunDir, on_page: pd.DataFrame) -> None:
    """Grad-CAM maps (core.explain) of the mistake picked here: the query, its wrong rank-1 match and
    its true match, each explained against the query (the query against the rank-1)."""
    st.subheader("Where the model looks")
    labels = {int(row.query): f"query {row.query} · {row.identity} · rank-1 {row.rank1_identity}"
              for row in on_page.itertuples()}
    chosen = st.selectbox("Mistake", list(labels), format_func=labels.get, key="err_explain")
    row = on_page[on_page["query"] == chosen].iloc[0]
    with st.spinner("Computing attention maps..."):
        maps = mistake_maps(run, row["path"], row["rank1_path"], row["true_path"])
    st.caption("Element-wise Grad-CAM of the cosine similarity between the two images of each pair: red regions "
               "raise it. Each image is explained against the query; the query against its rank-1 match.")
    titles = {"query": f"query · {row['identity']}", "rank1": f"wrong rank-1 · {row['rank1_identity']}",
              "true": f"true match (rank {row['true_rank']}) · {row['identity']}"}
    with st.container(key="err_maps"):
        for column, (name, (image, similarity, _)) in zip(st.columns(len(maps)), maps.items()):
            column.image(image, caption=f"{titles[name]} · cosine {similarity:.3f}", width="stretch")


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
        st.text(f"Query {row.query} · identity {row.identity} · {row.aspect} · true match at rank {row.true_rank} "
                f"(similarity {row.true_similarity:.3f}, rank-1 {row.top1_similarity:.3f}, {row.rank1_kind})")
        image_grid(paths, captions, borders, columns=k + 2, width=130, key=f"err_grid_{row.query}")
        if st.button("Enlarge", key=f"err_enlarge_{row.query}", icon=":material/zoom_in:"):
            true_match = f"true match: rank {row.true_rank}, {row.true_similarity:.3f}"
            enlarge([paths[0], paths[1], emb.gallery_paths[row.true_index]],
                    [captions[0], f"rank-1: {captions[1]}", true_match])


@st.dialog("Query, its rank-1 match and its true match", width="large")
def enlarge(paths: list[str], captions: list[str]) -> None:
    for column, path, caption in zip(st.columns(len(paths)), paths, captions):
        column.image(str(path), caption=plain(caption), width="stretch")
