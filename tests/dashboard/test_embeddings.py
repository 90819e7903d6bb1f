"""Embeddings page over runs made by real tiny trainings: projections, colouring, selection."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.runs import Embeddings
from core.errors import DataError
from core.projections import projection_path
from core.runs import RunDir
from dashboard import analysis
from core.facets import protocol_rows
from dashboard.projector import explained_variance
from dashboard.views.embeddings import selected_rows


def array(value: dict | list) -> np.ndarray:
    """A trace attribute as plotly serialises it: a plain list, or a base64 typed array."""
    if isinstance(value, dict):
        shape = tuple(int(n) for n in str(value.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def figure(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def is_overlay(trace: dict) -> bool:
    return trace["name"] == "distractor" or trace["name"].startswith("highlight: ")


def scatter_traces(at: AppTest) -> list[dict]:
    """The traces of the points themselves (the distractor and highlight rings left out)."""
    return [t for t in figure(at)["data"] if not is_overlay(t)]


def test_pca_of_every_query_and_gallery_point(own_checkpoints, open_page):
    at = open_page("embeddings", run="done")
    assert not at.exception and not at.error
    emb = Embeddings.load(own_checkpoints / "done" / "embeddings.npz")
    traces = scatter_traces(at)
    assert {t["type"] for t in traces} == {"scattergl"}
    rows = sorted(int(r[0]) for t in traces for r in array(t["customdata"]))
    assert rows == list(range(len(emb.query_labels) + len(emb.gallery_labels)))
    assert projection_path(RunDir(own_checkpoints / "done"), "pca").exists()


@pytest.mark.parametrize(("colour", "names"), [("query / gallery", {"query", "gallery"}),
                                               ("aspect", {"dorsal_r", "dorsal_l", "palmar_r", "palmar_l"})])
def test_colouring_by_a_category_gives_one_trace_each(own_checkpoints, open_page, colour, names):
    at = open_page("embeddings", run="done")
    at.radio(key="emb_colour").set_value(colour).run()
    assert not at.exception
    assert {t["name"] for t in scatter_traces(at)} <= names


def test_rank1_colouring_counts_wrong_queries(own_checkpoints, open_page):
    at = open_page("embeddings", run="done")
    at.radio(key="emb_colour").set_value("rank-1 right / wrong").run()
    wrong = (~analysis.query_outcomes(Embeddings.load(own_checkpoints / "done" / "embeddings.npz"))["correct"]).sum()
    counts = {t["name"]: len(array(t["x"])) for t in scatter_traces(at)}
    assert counts.get("wrong", 0) == wrong


def test_tsne_is_computed_in_the_background_then_shown(own_checkpoints, open_page):
    at = open_page("embeddings", run="done_ce")
    at.radio(key="emb_method").set_value("tsne").run()
    assert not at.exception
    path = projection_path(RunDir(own_checkpoints / "done_ce"), "tsne")
    if at.info:  # usually: the first run only starts the thread and says so
        assert "in the background" in at.info[0].value
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception
    assert len(array(scatter_traces(at)[0]["x"])) > 0


def test_run_without_embeddings_says_so(own_checkpoints, open_page):
    at = open_page("embeddings", run="broken")
    assert not at.exception
    assert "no embeddings yet" in at.info[0].value
    assert not at.get("plotly_chart")


def test_selected_rows_reads_customdata():
    event = {"selection": {"points": [{"customdata": [4]}, {"customdata": [1]}, {"customdata": {"0": 4}}, {}]}}
    as_attrs = type("E", (), {"selection": type("S", (), {"points": event["selection"]["points"]})()})()
    assert selected_rows(as_attrs) == [1, 4]
    assert selected_rows(None) == []


def _selection_script(run_path: str, rows: list[int]) -> None:
    from core.projections import cached_projection
    from core.runs import RunDir
    from dashboard import analysis
    from dashboard.views.embeddings import show_selection

    run = RunDir.at(run_path)
    show_selection(analysis.embeddings(run), cached_projection(run, "pca"), rows)


def test_selection_shows_images_and_nearest_neighbours(own_checkpoints):
    at = AppTest.from_function(_selection_script, args=(str(own_checkpoints / "done"), [0, 3]), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.subheader[0].value == "2 selected"
    images = [m.value for m in at.markdown if "<img" in m.value]
    assert len(images) == 2 + 2 * 6  # the selection, then each point with its 5 neighbours
    assert sum("#2ca02c" in m or "#d62728" in m for m in images) == 10


def test_nearest_neighbours_skip_the_point_itself():
    f = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    emb = Embeddings(f[:2], np.array([0, 1]), np.array(["a", "b"]), np.array(["0", "1"]), np.array(["", ""]),
                     f[2:], np.array([2, 3]), np.array(["c", "d"]), np.array(["2", "3"]), np.array(["", ""]))
    idx, sims = analysis.nearest_neighbours(emb, [0, 2], k=2)
    assert idx.tolist() == [[1, 3], [3, 1]]
    assert sims[0, 0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-6)


def test_failed_background_projection_is_shown_with_a_retry(own_checkpoints, open_page, monkeypatch):
    def fail(run, method):
        raise DataError(f"{run.embeddings_path}: broken on purpose")

    monkeypatch.setattr(analysis, "cached_projection", fail)
    at = open_page("embeddings", run="done")
    at.radio(key="emb_method").set_value("tsne").run()
    deadline = time.monotonic() + 30
    while not at.error and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()
    assert not at.exception
    assert "broken on purpose" in at.error[0].value
    assert at.button(key="emb_retry")


def test_no_runs_is_an_empty_state(empty_checkpoints, open_page):
    at = open_page("embeddings")
    assert not at.exception
    assert "No runs" in at.info[0].value


def test_pca_axes_say_the_variance_they_explain(own_checkpoints, open_page):
    at = open_page("embeddings", run="done")
    emb = Embeddings.load(own_checkpoints / "done" / "embeddings.npz")
    first, second = explained_variance(emb)
    layout = figure(at)["layout"]
    assert layout["xaxis"]["title"]["text"] == f"PC1 ({100 * first:.1f}% of variance)"
    assert layout["yaxis"]["title"]["text"] == f"PC2 ({100 * second:.1f}% of variance)"
    assert first >= second > 0


def test_explained_variance_by_hand():
    # Points (+-2, 0) and (0, +-1): variances 4 and 1 along the axes (2 and 0.5 with ddof=1 alike).
    f = np.array([[2, 0], [-2, 0], [0, 1], [0, -1]], np.float32)
    labels, text = np.arange(2), np.array(["a", "b"])
    emb = Embeddings(f[:2], labels, text, text, text, f[2:], labels, text, text, text)
    assert explained_variance(emb) == pytest.approx((0.8, 0.2))


def test_distractors_are_ringed_and_an_identity_highlighted(own_checkpoints, open_page):
    run = RunDir(own_checkpoints / "done")
    emb = Embeddings.load(run.embeddings_path)
    roles = protocol_rows(run.read_config()).set_index("path")["role"]
    distractors = int((roles.reindex(emb.gallery_paths) == "distractor").sum())
    assert distractors > 0  # the 11k protocols add the other subsets' images
    at = open_page("embeddings", run="done")
    rings = {t["name"]: t for t in figure(at)["data"] if is_overlay(t)}
    assert len(array(rings["distractor"]["x"])) == distractors
    identity = str(emb.query_identities[0])
    at.multiselect(key="emb_highlight").set_value([identity]).run()
    assert not at.exception
    ring = next(t for t in figure(at)["data"] if t["name"] == f"highlight: {identity}")
    points = emb.points()
    rows = sorted(int(r[0]) for r in array(ring["customdata"]))
    assert rows == points.index[points["identity"] == identity].tolist()
    counts = at.dataframe[0].value  # the only table: no point is clicked
    assert counts.to_dict("records") == [{"identity": identity, "query": int((emb.query_identities == identity).sum()),
                                          "gallery": int((emb.gallery_identities == identity).sum())}]


def _point_script(run_path: str, row: int) -> None:
    from core.projections import cached_projection
    from core.runs import RunDir
    from dashboard.views.embeddings import show_point

    show_point(cached_projection(RunDir.at(run_path), "pca"), [row])


def test_the_clicked_point_is_shown_beside_the_chart(own_checkpoints):
    at = AppTest.from_function(_point_script, args=(str(own_checkpoints / "done"), 2), default_timeout=30)
    at.run()
    assert not at.exception
    emb = Embeddings.load(own_checkpoints / "done" / "embeddings.npz")
    images = [m.value for m in at.markdown if "<img" in m.value]
    assert len(images) == 1 and f"{emb.query_identities[2]} · query" in images[0]
    facts = dict(at.dataframe[0].value.itertuples(index=False))
    assert facts["path"] == str(emb.query_paths[2]) and facts["split"] == "query"
