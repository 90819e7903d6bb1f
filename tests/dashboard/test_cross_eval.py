"""Cross-evaluation page over runs made by real tiny trainings (one with a cross-aspect evaluation)."""

from __future__ import annotations

import json

import pytest

from core.runs import CrossResult, EvalRecord, Result, RunDir
from dashboard.views.cross_eval import matrix, standard_sets

STANDARD = standard_sets()

DONE, DONE_CE = "demo · done · train synthetic/dorsal_r", "demo · done_ce · train synthetic/dorsal_r"


def test_matrix_of_own_and_cross_results(checkpoints, open_page):
    at = open_page("cross_eval")
    assert not at.exception and not at.error
    evaluation = RunDir(checkpoints / "done").read_eval()
    table = at.dataframe[0].value
    assert list(table.columns) == [*STANDARD, "synthetic/dorsal_r", "synthetic/palmar_r"]
    assert sorted(table.index) == [DONE, DONE_CE]  # `broken` has no checkpoint and no results
    assert table.at[DONE, "synthetic/dorsal_r"] == pytest.approx(100 * evaluation.final.test["rank1"])
    cross = evaluation.cross["synthetic/palmar_r"]
    assert table.at[DONE, "synthetic/palmar_r"] == pytest.approx(100 * cross.test["rank1"])
    assert table.loc[DONE_CE, STANDARD + ["synthetic/palmar_r"]].isna().all()
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["x"] == list(table.columns)


def test_metric_choice(checkpoints, open_page):
    at = open_page("cross_eval")
    at.radio(key="xe_metric").set_value("mAP").run()
    assert not at.exception
    final = RunDir(checkpoints / "done").read_eval().final
    assert at.dataframe[0].value.at[DONE, "synthetic/dorsal_r"] == pytest.approx(100 * final.test["mAP"])


def test_form_queues_missing_cells(checkpoints, open_page, monkeypatch):
    calls = []
    monkeypatch.setattr("jobs.api.evaluate", lambda *args, **kwargs: calls.append((args, kwargs)) or "job7")
    at = open_page("cross_eval")
    cells = at.multiselect(key="xe_cells")
    assert f"{DONE_CE} → synthetic/palmar_r" in cells.options
    assert f"{DONE} → synthetic/palmar_r" not in cells.options  # already evaluated
    cells.set_value([(DONE_CE, "synthetic/palmar_r"), (DONE, "hd/hd")])
    trained_on = RunDir(checkpoints / "done").read_config().data.root
    assert at.text_input(key="xe_root_synthetic").value == str(trained_on)
    at.text_input(key="xe_root_hd").set_value("/data/hd")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert calls == [(("done_ce", "synthetic", at.text_input(key="xe_root_synthetic").value, "palmar_r"),
                      {"root": checkpoints}),
                     (("done", "hd", "/data/hd", "hd"), {"root": checkpoints})]
    assert "job7, job7" in at.success[0].value


def test_form_needs_a_root(checkpoints, open_page, monkeypatch):
    monkeypatch.setattr("jobs.api.evaluate", lambda *args, **kwargs: pytest.fail("queued without a root"))
    at = open_page("cross_eval")
    at.multiselect(key="xe_cells").set_value([(DONE, "11k/dorsal_l")])
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value == "11k/dorsal_l: give the data root for 11k."


def test_no_checkpoints_is_an_empty_state(empty_checkpoints, open_page):
    at = open_page("cross_eval")
    assert not at.exception
    assert "No trained checkpoints yet" in at.info[0].value


def test_matrix_puts_own_final_result_in_its_column(tmp_path):
    run = RunDir(tmp_path / "r1").create()
    run.write_config({"data": {"dataset": "11k", "protocol": "dorsal_r"}})
    cross = {key: CrossResult(test={"rank1": value}, dataset=key.split("/")[0], protocol=key.split("/")[1])
             for key, value in (("hd/hd", 0.5), ("11k/dorsal_r", 0.1), ("folder/default", 0.25))}
    record = EvalRecord(dataset="11k", protocol="dorsal_r", final=Result(2, {"rank1": 0.9, "mAP": 0.8}), cross=cross)
    run.update_eval(lambda r: r.__dict__.update(record.__dict__))
    table = matrix([run], "rank1")
    assert list(table.columns) == [*STANDARD, "folder/default"]
    assert table.loc["r1 · train 11k/dorsal_r"].tolist()[:5] == pytest.approx([90.0, float("nan"), float("nan"),
                                                                              float("nan"), 50.0], nan_ok=True)
    assert table.iloc[0, -1] == 25.0
