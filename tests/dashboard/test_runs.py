"""Runs page: the table over real tiny trainings, and filters, groups, config columns, selection,
tags and notes over constructed run folders (bench.runs_page.make_runs, no training)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.runs_page import make_runs
from core.runs import RunDir
from dashboard.views.runs import TABLE, RunFilter, runs_table
from jobs import api as jobs
from jobs.api import RunInfo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """12 finished runs: sweep-000 (runs 0-4), study-001 (5-9), sweep-002 (10, 11); run 8 failed, 9 cancelled;
    3 and 8 on ViT-B-16; tagged candidate (0, 6) and baseline (3, 9); one evaluation job each of runs 0 and 1."""
    root = tmp_path_factory.mktemp("made") / "checkpoints"
    make_runs(root, 12, evaluations=2)
    return root


@pytest.fixture
def constructed(made, monkeypatch) -> Path:
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(made))
    return made


@pytest.fixture
def writable(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "checkpoints"
    make_runs(root, 3)
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    return root


def ids(at, index: int = 0) -> list[str]:
    return at.dataframe[index].value["run_id"].tolist()


def run_ids(*numbers: int) -> list[str]:
    return [f"run-{n:04d}" for n in numbers]


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
    assert "loss.triplet.weight" in table.columns  # a config key that differs between the runs
    assert table.loc["done_ce", "loss.triplet.weight"] == "0.0"


def test_evaluation_jobs_are_nested_under_their_run_not_in_the_table(constructed, open_page):
    at = open_page("runs")
    assert not at.exception
    assert ids(at) == run_ids(*range(11, -1, -1))  # training runs only, newest first
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc["run-0000", "evaluations"] == "1: 1 succeeded"
    assert table.loc["run-0002", "evaluations"] == ""
    evaluations = at.dataframe[1].value
    assert evaluations["of_run"].tolist() == ["demo lr=0.0003 · run-0001", "demo lr=0.001 · run-0000"]
    assert evaluations["run_id"].tolist() == ["eval-0001", "eval-0000"]


@pytest.mark.parametrize(("widget", "value", "expected"), [
    ("runs_f_states", ["failed", "cancelled"], (9, 8)),
    ("runs_f_sweeps", ["sweep-002"], (11, 10)),
    ("runs_f_studies", ["study-001"], (9, 8, 7, 6, 5)),
    ("runs_f_backbones", ["ViT-B-16"], (8, 3)),
    ("runs_f_losses", ["ce"], (7, 2)),
    ("runs_f_tags", ["baseline"], (9, 3)),
])
def test_each_filter_keeps_the_matching_runs(constructed, open_page, widget, value, expected):
    at = open_page("runs")
    at.multiselect(key=widget).set_value(value).run()
    assert not at.exception
    assert ids(at) == run_ids(*expected)


def test_filters_combine_and_the_name_filter_ignores_case(constructed, open_page):
    at = open_page("runs")
    at.text_input(key="runs_f_text").input("ARCFACE").run()
    assert ids(at) == run_ids(9, 4)
    at.multiselect(key="runs_f_states").set_value(["succeeded"]).run()
    assert ids(at) == run_ids(4)
    assert "1 of 12 training runs" in at.caption[0].value


def test_grouping_by_sweep_sums_up_each_group_and_sorts_the_table(constructed, open_page):
    at = open_page("runs")
    at.selectbox(key="runs_group").set_value("sweep").run()
    assert not at.exception
    summary = at.dataframe[0].value.set_index("sweep")
    assert summary["runs"].to_dict() == {"(none)": 5, "sweep-000": 5, "sweep-002": 2}
    assert summary.loc["(none)", "succeeded"] == 3  # runs 8 and 9 failed and were cancelled
    table = at.dataframe[1].value
    assert table["group"].tolist() == ["(none)"] * 5 + ["sweep-000"] * 5 + ["sweep-002"] * 2
    assert table["run_id"].tolist()[5:10] == run_ids(4, 3, 2, 1, 0)  # newest first within a group
    members = [RunDir(constructed / r).read_eval().final for r in run_ids(0, 1, 2, 3, 4)]
    assert summary.loc["sweep-000", "mean final mAP %"] == pytest.approx(
        sum(100 * m.test["mAP"] for m in members) / 5)


def test_config_keys_are_columns_and_default_to_the_keys_that_differ(constructed, open_page):
    at = open_page("runs")
    chosen = at.multiselect(key="runs_config_columns").value
    assert {"model.backbone", "optim.lr", "loss.triplet.weight"} <= set(chosen)
    at.multiselect(key="runs_config_columns").set_value(["train.epochs", "optim.lr"]).run()
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc["run-0000", "optim.lr"] == "0.001" and table.loc["run-0001", "optim.lr"] == "0.0003"
    assert table.loc["run-0000", "train.epochs"] == "150"
    assert "model.backbone" not in table.columns


def test_selected_rows_link_to_compare_and_offer_what_their_states_allow(constructed, open_page):
    at = open_page("runs")
    at.session_state[TABLE] = {"selection": {"rows": [1, 2, 3], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    links = [link for link in at.get("page_link") if link.proto.page == "compare"]
    assert links and links[0].proto.label == "Compare 3 runs"
    assert links[0].proto.query_string == "runs=run-0010%2Crun-0009%2Crun-0008"
    assert at.button(key="runs_cancel").disabled  # nothing active
    assert at.button(key="runs_resume").label == "Resume 2"  # the failed and the cancelled run


def test_tags_and_a_note_are_set_on_the_selected_runs(writable, open_page):
    at = open_page("runs")
    at.session_state[TABLE] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    at.text_input(key="runs_tag_add").input("best, lr-sweep")  # a form: its values are sent with its button
    at.button(key="runs_tag_apply").click().run()
    assert not at.exception
    assert at.success[0].value == "Tags updated on 2 run(s)."
    assert [RunDir(writable / r).read_meta().tags for r in run_ids(2, 1, 0)] == [
        ["best", "lr-sweep"], ["best", "lr-sweep"], ["candidate"]]
    assert at.dataframe[0].value.set_index("run_id").loc["run-0002", "tags"] == "best, lr-sweep"
    at.session_state[TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.text_area(key="runs_note_run-0002").input("<b>not html</b>")
    at.button(key="runs_note_save").click().run()
    assert RunDir(writable / "run-0002").read_meta().note == "<b>not html</b>"
    assert at.dataframe[0].value.set_index("run_id").loc["run-0002", "note"] == "<b>not html</b>"


def test_a_bad_tag_is_a_message(writable, open_page):
    at = open_page("runs")
    at.session_state[TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.text_input(key="runs_tag_add").input("x" * 50)
    at.button(key="runs_tag_apply").click().run()
    assert not at.exception
    assert "is not valid" in at.error[0].value


def test_an_empty_root_says_so(empty_checkpoints, open_page):
    at = open_page("runs")
    assert not at.exception
    assert "No runs" in at.info[0].value


def test_running_run_shows_eta_and_epoch_progress():
    info = RunInfo(run_id="r1", name="r", state="running", epoch=2.5, epochs=10, progress=0.25,
                   final={"rank1": 0.5}, created=0.0, started=0.0, sweep_id="sweep-1", path="/x", kind="train",
                   backbone="RN50", losses="ce", eta_seconds=3725.0, tags=["a", "b"])
    row = runs_table([info]).iloc[0]
    assert (row["epochs"], row["eta"], row["rank1"], row["sweep"], row["tags"]) == ("2.5/10", "1h 02m", 50.0,
                                                                                    "sweep-1", "a, b")
    assert pd.isna(row["mAP"])


def test_a_filter_matches_every_chosen_field():
    info = RunInfo(run_id="r1", path="/x", name="Demo lr=0.1", state="failed", backbone="RN50", losses="ce",
                   tags=["a"], sweep_id="s1")
    assert RunFilter().keeps(info)
    assert RunFilter(states=["failed", "succeeded"], tags=["b", "a"], text="LR=0.1").keeps(info)
    assert not RunFilter(states=["failed"], sweeps=["s2"]).keeps(info)
    assert not RunFilter(studies=["t1"]).keeps(info)
    assert not RunFilter(tags=["b"]).keeps(info)
    assert RunFilter(text="r1").keeps(info) and not RunFilter(text="zz").keeps(info)


def test_queued_runs_selected_are_cancelled_then_resumed(empty_checkpoints, open_page, monkeypatch):
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)  # queued, never started
    run_id = jobs.submit(str(REPO / "configs" / "demo.yaml"), {"train.epochs": 1}, root=empty_checkpoints)
    at = open_page("runs")
    assert not at.exception
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "queued"
    at.session_state[TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.button(key="runs_cancel").click().run()
    assert not at.exception
    assert at.success[0].value == f"Cancelled {run_id}."
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "cancelled"
    at.button(key="runs_resume").click().run()
    assert at.dataframe[0].value.set_index("run_id").loc[run_id, "state"] == "queued"


def test_a_running_run_shows_the_time_left_on_the_runs_and_run_pages(writable, open_page, monkeypatch):
    monkeypatch.setattr("jobs.state._settle_running", lambda run, job, status, child: status)  # no process checks
    run = RunDir(writable / "run-0002")
    run.update_status(state="running", epoch=5.0, epochs=10, start_epoch=0.0, started=time.time() - 10_000,
                      ended=None)
    at = open_page("runs")
    assert not at.exception
    eta = at.dataframe[0].value.set_index("run_id").loc["run-0002", "eta"]
    assert re.fullmatch(r"2h [45]\dm", eta)  # half done in 10,000 s: as long again (loose: the render takes time)
    at = open_page("run", run="run-0002")
    assert not at.exception
    assert re.search(r"about 2h [45]\dm left", at.markdown[0].value)
