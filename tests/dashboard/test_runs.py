"""Runs page over runs made by real tiny trainings: the table, actions and the compare link."""

from __future__ import annotations

import pandas as pd
import pytest

from pathlib import Path

from core.runs import RunDir
from dashboard.views.runs import runs_table
from jobs import api as jobs
from jobs.api import RunInfo

REPO = Path(__file__).resolve().parents[2]


def test_table_lists_every_run_with_its_state_and_results(checkpoints, open_page):
    at = open_page("runs")
    assert not at.exception
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[["done", "done_ce", "broken"], "state"].tolist() == ["succeeded", "succeeded", "failed"]
    assert table.loc["done", "epochs"] == "2/2"
    assert table.loc["done", "losses"] == "ce+triplet"
    assert table.loc["done_ce", "losses"] == "ce"
    assert table.loc["done", "backbone"] == "HandID-Tiny"
    record = RunDir(checkpoints / "done").read_eval()
    assert table.loc["done", "rank1"] == pytest.approx(100 * record.final.test["rank1"])
    assert table.loc["done", "mAP"] == pytest.approx(100 * record.final.test["mAP"])
    assert table.loc["done", "selected_mAP"] == pytest.approx(100 * record.selected.test["mAP"])
    assert table.loc["done", "selected_epoch"] == record.selected.epoch
    assert "at least 2 are needed" in table.loc["broken", "error"]


def test_finished_runs_are_not_refreshed_and_offer_no_cancel(checkpoints, open_page):
    at = open_page("runs")
    at.selectbox(key="runs_selected").set_value("done").run()
    assert not at.exception
    assert at.button(key="runs_cancel").disabled
    assert at.button(key="runs_resume").disabled
    at.selectbox(key="runs_selected").set_value("broken").run()
    assert not at.button(key="runs_resume").disabled


def test_picking_runs_to_compare_sets_the_query_and_links_to_compare(checkpoints, open_page):
    at = open_page("runs")
    at.multiselect(key="runs_compare").set_value(["done", "done_ce"]).run()
    assert not at.exception
    assert at.query_params["runs"] == "done,done_ce"
    links = [link for link in at.get("page_link") if link.proto.page == "compare"]
    assert links and "Compare 2 runs" in links[0].proto.label


def test_compare_selection_follows_the_query(checkpoints, open_page):
    at = open_page("runs", runs="done_ce,nosuchrun")
    assert at.multiselect(key="runs_compare").value == ["done_ce"]


def test_an_empty_root_says_so(empty_checkpoints, open_page):
    at = open_page("runs")
    assert not at.exception
    assert "No runs" in at.info[0].value


def test_running_run_shows_eta_and_epoch_progress():
    info = RunInfo(run_id="r1", name="r", state="running", epoch=2.5, epochs=10, progress=0.25,
                   final={"rank1": 0.5}, created=0.0, started=0.0, sweep_id="sweep-1", path="/x", kind="train",
                   backbone="RN50", losses="ce", eta_seconds=3725.0)
    row = runs_table([info]).iloc[0]
    assert (row["epochs"], row["eta"], row["rank1"], row["sweep"]) == ("2.5/10", "1h 02m", 50.0, "sweep-1")
    assert pd.isna(row["mAP"])


def test_a_queued_run_refreshes_and_can_be_cancelled_then_resumed(empty_checkpoints, open_page, monkeypatch):
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)  # queued, never started
    run_id = jobs.submit(str(REPO / "configs" / "demo.yaml"), {"train.epochs": 1}, root=empty_checkpoints)
    at = open_page("runs")
    assert not at.exception
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "queued"
    at.button(key="runs_cancel").click().run()
    assert not at.exception
    assert at.success[0].value == f"Cancelled {run_id}."
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "cancelled"
    at.button(key="runs_resume").click().run()
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "queued"
