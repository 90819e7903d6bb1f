"""Sweeps page on a constructed sweep (no training): parallel coordinates of the swept keys, one scatter
per key, runs with bit-identical results flagged, an early-stopped trial marked."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.study_folders import constructed_sweep

MAPS = [0.40, 0.50, 0.40, 0.45]  # margin 0.2 x lr 1e-4, 1e-3, then margin 0.5: its lr 1e-4 run equals the first


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sweeps") / "checkpoints"
    return {"root": root, "ids": constructed_sweep(root, [0.2, 0.5], MAPS, stopped=3)}


@pytest.fixture
def sweep(sweep_root: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(sweep_root["root"]))
    return sweep_root


def charts(at) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def array(value) -> list:
    """A figure array from its JSON: a list, or plotly's typed array {"dtype", "bdata": base64}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def test_sweep_table_flags_identical_results_and_early_stopping(sweep, open_page):
    at = open_page("sweeps")
    assert not at.exception and not at.error
    table = at.dataframe[0].value.set_index("run_id")
    first, second, third, fourth = sweep["ids"]
    assert table.loc[first, "identical to"] == third and table.loc[third, "identical to"] == first
    assert table.loc[second, "identical to"] == "" and table.loc[fourth, "state"] == "stopped early"
    assert [table.loc[i, "loss.triplet.margin"] for i in sweep["ids"]] == ["0.2", "0.2", "0.5", "0.5"]
    assert [table.loc[i, "mAP"] for i in sweep["ids"]] == pytest.approx(MAPS)
    assert "2 runs have bit-identical results" in at.warning[0].value
    assert "1 trials were stopped early" in at.info[0].value


def test_parallel_coordinates_and_scatters_of_the_swept_keys(sweep, open_page):
    at = open_page("sweeps", sweep="nope")  # an unknown sweep falls back to the first
    plots = charts(at)
    parallel = next(s for k, s in plots.items() if "parallel" in k)["data"][0]
    assert [d["label"] for d in parallel["dimensions"]] == ["loss.triplet.margin", "optim.lr (log)", "mAP"]
    assert sorted(array(parallel["dimensions"][2]["values"])) == pytest.approx(sorted(MAPS))
    scatter = next(s for k, s in plots.items() if "scatter" in k)["data"]
    assert len(scatter) == 2 and sorted(scatter[0]["marker"]["symbol"]) == ["circle", "circle", "circle", "x"]
    stopped = scatter[0]["marker"]["symbol"].index("x")
    assert array(scatter[0]["y"])[stopped] == pytest.approx(MAPS[3]) and scatter[0]["text"][stopped] == sweep["ids"][3]
    at.selectbox(key="sweeps_metric").set_value("rank1").run()
    parallel = next(s for k, s in charts(at).items() if "parallel" in k)["data"][0]
    assert parallel["dimensions"][2]["label"] == "rank1"
    assert sorted(array(parallel["dimensions"][2]["values"])) == pytest.approx(sorted(m + 0.05 for m in MAPS))


def test_no_sweeps_is_a_hint(empty_checkpoints, open_page):
    at = open_page("sweeps")
    assert not at.exception and "No sweeps yet" in at.info[0].value
