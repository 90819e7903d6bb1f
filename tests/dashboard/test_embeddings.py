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
from dashboard.views.embeddings import selected_rows


def array(value: dict | list) -> np.ndarray:
    """A trace attribute as plotly serialises it: a plain list, or a base64 typed array."""
    if isinstance(value, dict):
        shape = tuple(int(n) for n in str(value.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def scatter_traces(at: AppTest) -> list[dict]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)["data"]


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
    if not path.exists():  # usually: the first run only starts the thread and says so
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
