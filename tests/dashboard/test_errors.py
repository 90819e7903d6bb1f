"""Errors page over runs made by real tiny trainings: misidentified queries, hardest first, their
facets, the hard-case CSV and the attention maps of a picked mistake."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
import streamlit

from core.analysis import misidentified
from core.facets import RANK1_KINDS, error_facets, protocol_rows
from core.runs import Embeddings
from core.runs import RunDir


def wrong_of(root, run_id: str, k: int = 5):
    return misidentified(Embeddings.load(root / run_id / "embeddings.npz"), k)


def grids(at) -> list[str]:
    """The image-grid markdown blocks with at least one readable image."""
    return [m.value for m in at.markdown if "<img" in m.value]


def test_misidentified_queries_hardest_first_with_their_top_k(checkpoints, open_page):
    wrong = wrong_of(checkpoints, "done")
    assert len(wrong) > 0  # the tiny model gets some wrong: the page has something to show
    at = open_page("errors", run="done")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["query"].tolist() == wrong["query"].tolist()
    assert table["true-match rank"].tolist() == wrong["true_rank"].tolist()
    assert table["true-match rank"].is_monotonic_decreasing
    page = wrong.head(10)
    # One image per markdown block: the query, its top 5, and its true match when that ranked below 5.
    assert len(grids(at)) == sum(6 + (page["true_rank"] > 5))
    red = sum(int((~row.astype(bool)).sum()) for row in page["top_correct"])
    assert sum("#d62728" in g for g in grids(at)) == red
    assert len([b for b in at.button if b.key.startswith("err_enlarge_")]) == len(page)


def test_true_match_below_top_k_is_appended(checkpoints, open_page):
    at = open_page("errors", run="done")
    at.slider(key="err_k").set_value(1).run()
    assert not at.exception
    wrong = wrong_of(checkpoints, "done", k=1)
    shown = min(len(wrong), 10)
    assert len(grids(at)) == shown * 3  # query, rank 1 (wrong), the true match further down
    assert any("(true match)" in g for g in grids(at))


def test_identity_filter(checkpoints, open_page):
    wrong = wrong_of(checkpoints, "done")
    identity = wrong["identity"].iloc[-1]
    at = open_page("errors", run="done")
    at.multiselect(key="err_identities").set_value([identity]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["identity"]) == {identity}
    assert len(at.dataframe[0].value) == (wrong["identity"] == identity).sum()


def test_enlarge_opens_the_full_size_images(checkpoints, open_page):
    at = open_page("errors", run="done")
    first = wrong_of(checkpoints, "done")["query"].iloc[0]
    at.button(key=f"err_enlarge_{first}").click().run()
    assert not at.exception
    # query, its rank-1 image, its true match, in a dialog, after the attention maps of the picked mistake
    assert len(at.get("image")) == 3 + 3


def test_run_without_embeddings_says_so(checkpoints, open_page):
    at = open_page("errors", run="broken")
    assert not at.exception
    assert "no embeddings yet" in at.info[0].value


@pytest.fixture
def perfect_run(trained_root, tmp_path, monkeypatch):
    """A copy of `done` whose queries sit exactly on a gallery image of their own identity."""
    root = tmp_path / "checkpoints"
    shutil.copytree(trained_root / "done", root / "perfect")
    run = RunDir(root / "perfect")
    arrays = Embeddings.load(run.embeddings_path).arrays()
    first = {label: i for i, label in reversed(list(enumerate(arrays["gallery_labels"])))}
    arrays["query_features"] = arrays["gallery_features"][[first[label] for label in arrays["query_labels"]]]
    run.write_embeddings(Embeddings(**arrays))
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    return root


def test_all_right_says_so(perfect_run, open_page):
    at = open_page("errors", run="perfect")
    assert not at.exception
    queries = len(Embeddings.load(perfect_run / "perfect" / "embeddings.npz").query_labels)
    assert at.success[0].value.startswith(f"All {queries} queries find their own identity")
    assert not at.dataframe


def facets_of(root, run_id: str = "done") -> pd.DataFrame:
    run = RunDir(root / run_id)
    return error_facets(wrong_of(root, run_id), Embeddings.load(run.embeddings_path), protocol_rows(run.read_config()))


def test_attention_maps_of_the_picked_mistake(checkpoints, open_page):
    at = open_page("errors", run="done")
    assert not at.exception
    facets = facets_of(checkpoints)
    picker = at.selectbox(key="err_explain")
    assert picker.options[:2] == [f"query {q} · {i} · rank-1 {r}" for q, i, r in
                                  facets[["query", "identity", "rank1_identity"]].head(2).itertuples(index=False)]
    images = at.get("image")
    assert len(images) == 3  # query, its wrong rank-1, its true match, each with its map
    captions = [i.proto.imgs[0].caption for i in images]
    assert captions[1].startswith(f"wrong rank-1 · {facets['rank1_identity'].iloc[0]} · cosine ")
    assert captions[2].startswith(f"true match (rank {facets['true_rank'].iloc[0]})")
    picker.set_value(int(facets["query"].iloc[1])).run()
    assert not at.exception
    assert at.get("image")[0].proto.imgs[0].caption.startswith(f"query · {facets['identity'].iloc[1]}")


def shown_queries(at) -> list[int]:
    return at.dataframe[0].value["query"].tolist()


def test_kind_and_rank_facets_filter(checkpoints, open_page):
    facets = facets_of(checkpoints)
    assert set(facets["rank1_kind"]) <= set(RANK1_KINDS)
    at = open_page("errors", run="done")
    kind = facets["rank1_kind"].iloc[0]
    at.multiselect(key="err_kinds").set_value([kind]).run()
    assert not at.exception
    assert shown_queries(at) == facets.loc[facets["rank1_kind"] == kind, "query"].tolist()
    at.multiselect(key="err_kinds").set_value([]).run()
    low, high = int(facets["true_rank"].min()), int(facets["true_rank"].max())
    assert high > low  # the slider exists
    at.slider(key="err_rank").set_value((low, low)).run()
    assert shown_queries(at) == facets.loc[facets["true_rank"] == low, "query"].tolist()


def test_metadata_facets_come_from_the_dataset_table(checkpoints, open_page):
    facets = facets_of(checkpoints)
    at = open_page("errors", run="done")
    assert [at.multiselect(key=f"err_meta_{c}").label for c in ("skinColor", "accessories", "nailPolish", "gender")] \
        == ["skin colour", "accessories", "nail polish", "gender"]
    assert at.slider(key="err_meta_age").value == (int(facets["age"].min()), int(facets["age"].max()))
    gender = facets["gender"].iloc[-1]
    at.multiselect(key="err_meta_gender").set_value([gender]).run()
    assert not at.exception
    assert shown_queries(at) == facets.loc[facets["gender"] == gender, "query"].tolist()
    assert set(at.dataframe[0].value["gender"]) == {gender}


def test_hard_cases_download_as_csv(checkpoints, open_page, monkeypatch):
    offered = []
    original = streamlit.download_button
    monkeypatch.setattr(streamlit, "download_button", lambda label, data, **kw: offered.append((data, kw))
                        or original(label, data, **kw))
    at = open_page("errors", run="done")
    assert not at.exception and at.download_button(key="err_csv")
    data, kw = offered[-1]
    assert kw["file_name"] == "done-hard-cases.csv"
    table = pd.read_csv(io.StringIO(data), dtype={"identity": str, "rank1_identity": str})
    facets = facets_of(checkpoints)
    assert table["query"].tolist() == facets["query"].tolist()
    assert table["rank1_path"].tolist() == facets["rank1_path"].tolist()
    assert table["rank1_kind"].tolist() == facets["rank1_kind"].tolist()
    assert np.allclose(table["true_similarity"], facets["true_similarity"], atol=1e-6)
    assert {"skinColor", "age", "gender"} <= set(table.columns)
