"""Curve options of dashboard.figures and the Run page: x-axes, smoothing, log ticks, loss-part labels,
resume marks, legends below the plot (constructed metrics, no training)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.runs_page import make_runs
from core.config import load_config
from core.runs import RunDir
from dashboard.figures import LEGEND_BELOW, curve_figure, log_ticks, resume_points, smooth, x_positions
from dashboard.run_curves import loss_columns

TRAIN = pd.DataFrame({"kind": "train", "epoch": [1, 1, 2, 2], "step": [1, 2, 3, 4], "loss": [4.0, 2.0, 1.0, 0.5],
                      "time": [100.0, 110.0, 500.0, 510.0]})
EVALS = pd.DataFrame({"kind": "eval", "epoch": [0, 1, 2], "step": [None] * 3, "mAP": [0.1, 0.2, 0.3],
                      "time": [90.0, 115.0, 515.0]})
METRICS = pd.concat([TRAIN.iloc[:2], pd.DataFrame({"kind": ["resume"], "epoch": [1], "time": [400.0]}),
                     TRAIN.iloc[2:], EVALS], ignore_index=True)


def test_smoothing_is_a_debiased_exponential_average():
    values = pd.Series([1.0, 2.0, 4.0])
    # by hand: 1; (0.5 * 1 + 2) / 1.5; (0.25 * 1 + 0.5 * 2 + 4) / 1.75
    assert smooth(values, 0.5).tolist() == pytest.approx([1.0, 2.5 / 1.5, 3.0])
    assert smooth(values, 0.0).tolist() == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(("low", "high", "labels"), [
    (0.3, 80.0, ["1", "10"]),  # three decades: one tick each
    (0.5, 3.0, ["0.5", "1", "2"]),  # under two decades: 1, 2, 5 each
    (1.2, 1.5, ["1", "2"]),  # narrower than a tick step: the ticks around it
    (0.004, 0.03, ["0.005", "0.01", "0.02"]),
])
def test_log_ticks_are_plain_numbers(low, high, labels):
    values, text = log_ticks(low, high)
    assert text == labels and values == pytest.approx([float(t) for t in labels])


def test_x_positions_by_epoch_step_and_wall_time():
    assert x_positions(EVALS, "epoch").tolist() == [0, 1, 2]
    assert x_positions(EVALS, "step", TRAIN).tolist() == [0.0, 2.0, 4.0]  # the last step of each epoch
    assert x_positions(TRAIN, "step").tolist() == [1, 2, 3, 4]
    assert x_positions(TRAIN, "time").tolist() == list(pd.to_datetime([100.0, 110.0, 500.0, 510.0], unit="s"))


def test_resume_points_on_each_axis():
    assert resume_points(METRICS, "epoch") == [1]
    assert resume_points(METRICS, "step") == [2.0]
    assert resume_points(METRICS, "time") == [pd.Timestamp(400.0, unit="s")]
    assert resume_points(TRAIN, "step") == []


def test_a_curve_figure_smooths_marks_resumes_and_keeps_its_legend_below():
    fig = curve_figure(TRAIN, "step", {"loss": "total", "missing": "x"}, "loss", "Losses", log_y=True,
                       smoothing=0.5, resumes=[2.0], dashed={"loss"})
    raw, smoothed, resumed = fig.data
    assert list(raw.y) == [4.0, 2.0, 1.0, 0.5] and raw.showlegend is False and raw.opacity == 0.3
    assert list(smoothed.y) == pytest.approx(smooth(TRAIN["loss"], 0.5).tolist())
    assert smoothed.name == "total" and smoothed.line.dash == "dash"
    assert resumed.name == "resumed" and [s.x0 for s in fig.layout.shapes] == [2.0]
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"
    assert fig.layout.legend.y == LEGEND_BELOW["y"] == 0.0
    assert fig.layout.yaxis.type == "log" and list(fig.layout.yaxis.ticktext) == ["0.5", "1", "2"]
    assert fig.layout.xaxis.title.text == "step"


def test_loss_parts_are_labelled_raw_or_with_their_weight():
    config = load_config(None, {"loss.ce.weight": 1.0, "loss.triplet.weight": 0.5, "loss.center.weight": 0.0})
    frame = pd.DataFrame(columns=["loss", "ce", "triplet"])
    assert loss_columns(frame, config, "weighted") == {"loss": "total (weighted sum)", "ce_weighted": "Cross-entropy × 1",
                                                       "triplet_weighted": "Triplet × 0.5"}
    assert loss_columns(frame, config, "raw") == {"loss": "total (weighted sum)", "ce": "Cross-entropy (raw)",
                                                  "triplet": "Triplet (raw)"}
    assert loss_columns(frame, None, "weighted")["ce_weighted"] == "Cross-entropy (weighted)"  # no config


def test_the_run_page_draws_curves_by_wall_time_smoothed_with_resumes(tmp_path, monkeypatch, open_page):
    root = tmp_path / "checkpoints"
    run_id = make_runs(root, 1)[0]
    run = RunDir(root / run_id)
    lines = run.read_metrics()
    lines.insert(50, {"kind": "resume", "epoch": 5, "time": lines[49]["time"] + 5})
    run.metrics_path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    at = open_page("run", run=run_id)
    at.radio(key="run_x").set_value("time")
    at.slider(key="run_smoothing").set_value(0.6)
    at.radio(key="run_parts").set_value("raw").run()
    assert not at.exception
    figures = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
               for c in at.get("plotly_chart")}
    losses = figures["Losses"]
    assert [t["name"] for t in losses["data"] if t.get("showlegend", True)] == [
        "total (weighted sum)", "Cross-entropy (raw)", "Triplet (raw)", "resumed"]  # no center values logged
    assert losses["layout"]["xaxis"]["title"]["text"] == "wall time"
    assert [pd.Timestamp(s["x0"]) for s in losses["layout"]["shapes"]] == [pd.Timestamp(lines[49]["time"] + 5, unit="s")]
    assert figures["Test retrieval per evaluation"]["layout"]["shapes"]  # evaluations marked too
