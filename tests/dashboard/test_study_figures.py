"""Study and sweep figures on constructed inputs: what each trace holds, resampling, PNG export
through the installed chromium (and the reason given when no browser can be started)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.study_figures import (arm_curves_figure, forest_figure, parallel_figure, parameter_scatter, resample,
                                     to_png)

SUMMARY = {"reference": "CE", "comparisons": [
    {"arm": "TRI", "reference": "CE", "metric": "mAP", "diff": 0.03, "ci95": [0.01, 0.05], "p": 0.01, "p_holm": 0.02,
     "n_pairs": 3, "seeds": [0, 1, 2], "diffs": [0.02, 0.03, 0.04]},
    {"arm": "CEN", "reference": "CE", "metric": "mAP", "diff": 0.005, "ci95": None, "p": None, "p_holm": None,
     "n_pairs": 1, "seeds": [0], "diffs": [0.005]},
    {"arm": "TRI", "reference": "CE", "metric": "rank1", "diff": 0.0, "ci95": [0.0, 0.0], "p": 1.0, "p_holm": 1.0,
     "n_pairs": 3, "seeds": [0, 1, 2], "diffs": [0.0, 0.0, 0.0]},
]}


def test_forest_plot_rows_intervals_points_and_zero_line():
    fig = forest_figure(SUMMARY, "mAP")
    seeds, mean = fig.data[:2], fig.data[-1]
    assert [list(t.x) for t in seeds] == [[0.02, 0.03, 0.04], [0.005]]
    assert list(mean.x) == [0.03, 0.005] and list(mean.y) == [0, 1]
    assert list(mean.error_x.array) == pytest.approx([0.02, 0])
    assert list(mean.error_x.arrayminus) == pytest.approx([0.02, 0])
    assert list(fig.layout.yaxis.ticktext) == ["TRI − CE", "CEN − CE"]
    assert fig.layout.shapes[0].x0 == 0
    assert len(forest_figure(SUMMARY, "rank1").data) == 2


def test_resample_puts_runs_on_every_x_without_extrapolating():
    a = pd.DataFrame({"x": [0, 10, 20], "y": [0.1, 0.3, 0.5]})
    b = pd.DataFrame({"x": [0, 5, 10], "y": [0.2, 0.3, 0.4]})  # unfinished: stops at 10
    grid, ys = resample([a, b])
    assert list(grid) == [0, 5, 10, 20]
    np.testing.assert_allclose(ys, [[0.1, 0.2, 0.3, 0.5], [0.2, 0.3, 0.4, np.nan]])


def test_arm_curves_mean_band_and_runs():
    curves = {"CE": [pd.DataFrame({"x": [0, 10], "y": [0.1, 0.3]}), pd.DataFrame({"x": [0, 10], "y": [0.3, 0.5]})],
              "TRI": [pd.DataFrame({"x": [0, 10], "y": [0.2, 0.6]})], "empty": [pd.DataFrame({"x": [], "y": []})]}
    fig = arm_curves_figure(curves)
    band, run1, run2, mean = fig.data[:4]
    assert list(mean.y) == pytest.approx([0.2, 0.4]) and "2 runs" in mean.name
    std = np.std([0.1, 0.3], ddof=1)
    assert list(band.y) == pytest.approx([0.2 + std, 0.4 + std, 0.4 - std, 0.2 - std])
    assert list(run1.y) == [0.1, 0.3] and list(run2.y) == [0.3, 0.5]
    tri_band, _, tri_mean = fig.data[4:]
    assert len(tri_band.x) == 0 and list(tri_mean.y) == [0.2, 0.6]  # one run: no band


RUNS = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "optim.lr": ["1e-4", "5e-5", "5e-6", "1e-4"],
                     "optim.name": ["adam", "sgd", "adam", "adamw"], "mAP": [0.4, 0.3, 0.5, 0.45]})


def test_parallel_coordinates_encode_categorical_keys():
    fig = parallel_figure(RUNS, ["optim.lr", "optim.name"], "mAP")
    lr, name, metric = fig.data[0].dimensions
    assert lr.label == "optim.lr (log)" and list(lr.values) == pytest.approx(np.log10([1e-4, 5e-5, 5e-6, 1e-4]))
    assert list(lr.ticktext) == ["5e-06", "5e-05", "0.0001"]
    assert list(lr.tickvals) == pytest.approx(np.log10([5e-6, 5e-5, 1e-4]))
    assert list(name.ticktext) == ["adam", "adamw", "sgd"] and list(name.values) == [0, 2, 0, 1]
    assert list(metric.values) == [0.4, 0.3, 0.5, 0.45] and list(fig.data[0].line.color) == [0.4, 0.3, 0.5, 0.45]


def test_parallel_coordinates_keep_narrow_numbers_linear():
    dimension = parallel_figure(RUNS.assign(margin=[0.2, 0.3, 0.5, 0.3]), ["margin"], "mAP").data[0].dimensions[0]
    assert dimension.label == "margin" and list(dimension.values) == [0.2, 0.3, 0.5, 0.3]
    assert list(dimension.ticktext) == ["0.2", "0.3", "0.5"]


def test_parameter_scatter_one_panel_per_key_log_axis_for_rates():
    fig = parameter_scatter(RUNS, ["optim.lr", "optim.name"], "mAP")
    assert [list(t.y) for t in fig.data] == [[0.4, 0.3, 0.5, 0.45]] * 2
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "category"
    assert list(fig.data[0].marker.symbol) == ["circle"] * 4
    marked = parameter_scatter(RUNS.assign(state=["succeeded", "stopped", "succeeded", "stopped"]), ["optim.lr"], "mAP")
    assert list(marked.data[0].marker.symbol) == ["circle", "x", "circle", "x"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")
def test_png_export_through_the_installed_chromium():
    png, reason = to_png(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), width=300, height=200, scale=1)
    assert reason is None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_export_without_a_browser_says_why(tmp_path):
    png, reason = to_png(go.Figure(), browser=str(tmp_path / "no-chrome"))
    assert png is None and reason.startswith("PNG export is not available here:") and "no-chrome" in reason
