"""Verification figures: ROC and DET on hand-made curves, and on the Run and Compare pages over the
shared trained runs."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from scipy.stats import norm

from core.runs import Result, RunDir
from dashboard.verification_figures import det_figure, probit, roc_figure, summary_table

CURVES = {"roc": {"far": [0.0, 0.001, 0.01, 0.5, 1.0], "tar": [0.2, 0.5, 0.75, 0.9, 1.0],
                  "threshold": [0.99, 0.9, 0.8, 0.3, -1.0]},
          "det": {"fmr": [0.0, 0.001, 0.01, 0.5, 1.0], "fnmr": [0.8, 0.5, 0.25, 0.1, 0.0]},
          "thresholds": {"far_target": [0.01, 0.001], "threshold": [0.8, 0.9], "far": [0.01, 0.001],
                         "tar": [0.75, 0.5]}}


def values(trace_value) -> np.ndarray:
    """A trace attribute as plotly serialises it (a list or a base64 typed array)."""
    if isinstance(trace_value, dict):
        return np.frombuffer(base64.b64decode(trace_value["bdata"]), dtype=trace_value["dtype"])
    return np.asarray(trace_value)


def test_roc_drops_far_zero_on_its_log_axis_and_marks_the_thresholds():
    fig = roc_figure({"a": CURVES})
    line, marks = fig.data
    assert list(line.x) == [0.001, 0.01, 0.5, 1.0] and list(line.y) == [0.5, 0.75, 0.9, 1.0]
    assert list(line.customdata) == [0.9, 0.8, 0.3, -1.0]
    assert list(marks.y) == [0.75, 0.5] and marks.customdata.tolist() == [[0.01, 0.8], [0.001, 0.9]]
    assert fig.layout.xaxis.type == "log"


def test_det_is_drawn_on_normal_deviates():
    fig = det_figure({"a": CURVES})
    trace, = fig.data
    assert trace.x[2] == pytest.approx(norm.ppf(0.01)) and trace.y[2] == pytest.approx(norm.ppf(0.25))
    assert trace.x[0] == pytest.approx(norm.ppf(1e-4))  # FMR 0 clipped to the axis end
    assert list(fig.layout.xaxis.ticktext)[:4] == ["0.1%", "0.2%", "0.5%", "1%"]
    assert probit(np.array([0.5]))[0] == 0


def test_summary_table_in_percent_with_thresholds():
    result = Result(epoch=3, test={"eer": 0.125, "eer_std": 0.01, "auc": 0.9, "tar@far=1e-2": 0.75}, curves=CURVES)
    row = summary_table({"a": result}).iloc[0]
    assert row["EER"] == "12.50 ± 1.00" and row["ROC AUC"] == "90.00" and row["TAR at FAR 1e-2"] == "75.00"
    assert row["TAR at FAR 1e-3"] == ""
    assert row["threshold at FAR 0.01"] == 0.8 and row["threshold at FAR 0.001"] == 0.9


def charts(at) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"]: s for s in specs if "title" in s["layout"]}


def test_run_page_shows_the_final_verification(checkpoints, open_page):
    at = open_page("run", run="done")
    assert not at.exception
    final = RunDir(checkpoints / "done").read_eval().final
    table = next(f.value for f in at.dataframe if "EER" in f.value.columns)
    assert table["run"].tolist() == [f"final (epoch {final.epoch})"]
    assert table["EER"].iloc[0].startswith(f"{100 * final.test['eer']:.2f}")
    figures = charts(at)
    roc = figures["ROC"]["data"][0]
    far = np.asarray(final.curves["roc"]["far"])
    assert values(roc["x"]).tolist() == pytest.approx(far[far > 0].tolist())
    assert len(figures["DET"]["data"]) == 1


def test_compare_overlays_the_runs_curves(checkpoints, open_page):
    at = open_page("compare", runs="done,done_ce")
    assert not at.exception
    table = next(f.value for f in at.dataframe if "EER" in f.value.columns)
    assert table["run"].tolist() == ["demo · done", "demo · done_ce"]
    figures = charts(at)
    assert [t["name"] for t in figures["DET"]["data"]] == ["demo · done", "demo · done_ce"]
    assert [t["name"] for t in figures["ROC"]["data"] if "thresholds" not in t["name"]] == ["demo · done",
                                                                                             "demo · done_ce"]
