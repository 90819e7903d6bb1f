"""Compare page over runs made by real tiny trainings, and a sweep's leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.analysis import disagreements
from core.runs import Embeddings
from dashboard.views.compare import config_diff
from jobs import api as jobs

DONE, DONE_CE = "demo · done", "demo · done_ce"

REPO = Path(__file__).resolve().parents[2]


def table_with(at, column: str):
    """The first st.dataframe that has `column`."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def test_two_runs_side_by_side(own_checkpoints, open_page):
    at = open_page("compare", runs="done,done_ce")
    assert not at.exception and not at.error
    assert at.multiselect(key="cmp_runs").value == ["done", "done_ce"]

    metrics = table_with(at, "Δ mAP")
    assert list(metrics.index) == [DONE, DONE_CE]  # the runs' names (the preset's, run by hand) and ids
    shown_difference = metrics.loc[DONE_CE, "mAP"] - metrics.loc[DONE, "mAP"]  # each shown to 4 decimals
    assert metrics.loc[DONE_CE, "Δ mAP"] == pytest.approx(shown_difference, abs=1.5e-4)
    assert metrics.loc[DONE, "Δ rank-1"] == 0
    assert [m.label for m in at.metric] == ["rank-1", "mAP", "mAP (papers' convention)"] * 2

    diff = table_with(at, DONE_CE)
    assert {"train.epochs", "loss.triplet.weight", "sampler.kind"} <= set(diff.index)
    assert "data.dataset" not in diff.index
    assert diff.loc["train.epochs"].tolist() == ["2", "1"]

    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    curves = [spec for spec in charts.values() if spec["data"][0]["type"] == "scatter"]
    assert [t["name"] for t in curves[0]["data"]] == [DONE, DONE_CE]
    assert len([spec for spec in charts.values() if spec["data"][0]["type"] == "scattergl"]) == 2

    expected = disagreements(*(Embeddings.load(own_checkpoints / r / "embeddings.npz") for r in ("done", "done_ce")))
    if expected.empty:
        assert any("same queries right" in s.value for s in at.success)
    else:
        assert len(table_with(at, f"{DONE} right")) == len(expected)  # columns named by the runs
    assert "No sweeps yet" in at.info[-1].value


def test_curve_choice_switches_the_metric(own_checkpoints, open_page):
    at = open_page("compare", runs="done,done_ce")
    at.selectbox(key="cmp_curve").set_value(("train", "loss")).run()
    assert not at.exception
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if '"type":"scatter"' in c.proto.spec)
    assert spec["layout"]["xaxis"]["title"]["text"] == "step"


def test_fewer_than_two_runs_asks_for_more(own_checkpoints, open_page):
    at = open_page("compare", runs="done")
    assert not at.exception
    assert at.info[0].value == "Pick two to four runs to compare."


def test_run_without_embeddings_is_an_empty_state(own_checkpoints, open_page):
    at = open_page("compare", runs="done,broken")
    assert not at.exception and not at.error
    assert any("no embeddings yet" in i.value for i in at.info)


def test_sweep_leaderboard(empty_checkpoints, open_page):
    ids = jobs.sweep(str(REPO / "configs" / "demo.yaml"), {"optim.lr": [1e-4, 5e-5]}, root=empty_checkpoints,
                     start_scheduler=False)
    at = open_page("compare")
    assert not at.exception and not at.error
    board = table_with(at, "selected mAP")
    assert sorted(board.index) == sorted(ids)
    assert sorted(board["optim.lr"]) == ["0.0001", "5e-05"]
    assert set(board["state"]) == {"queued"}


def test_config_diff_keeps_only_differing_keys():
    diff = config_diff({"a": {"optim": {"lr": 1e-4, "name": "adam"}, "x": 1},
                        "b": {"optim": {"lr": 5e-5, "name": "adam"}},
                        "c": {"optim": {"lr": 1e-4, "name": "adam"}, "x": 1}})
    assert list(diff.index) == ["optim.lr", "x"]
    assert diff.loc["x"].tolist() == ["1", "–", "1"]
    assert config_diff({"a": {"k": 1}, "b": {"k": 1}}).empty
