"""Run page over runs made by real tiny trainings: curves, metrics, config, log, cross evaluation."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import yaml

from pathlib import Path

from core.runs import EvalRecord, Result, RunDir
from dashboard.views.run import gains_table, mean_std, metrics_table
from jobs import api as jobs

REPO = Path(__file__).resolve().parents[2]


def test_finished_run_shows_curves_metrics_config_and_log(checkpoints, open_page):
    at = open_page("run", run="done")
    assert not at.exception
    assert at.selectbox(key="pick_run").value == "done"
    figures = {json.loads(chart.proto.spec)["layout"]["title"]["text"]: json.loads(chart.proto.spec)
               for chart in at.get("plotly_chart")}
    assert set(figures) == {"Losses", "Learning rate", "Throughput", "Test retrieval per evaluation",
                            "Validation (model selection)", "Feature statistics (test)", "ROC", "DET"}
    assert {trace["name"] for trace in figures["Losses"]["data"]} == {"total (weighted sum)", "Cross-entropy × 1",
                                                                  "Triplet × 1"}
    assert {trace["name"] for trace in figures["Test retrieval per evaluation"]["data"]} == {
        "rank-1", "mAP", "mAP (papers' convention)"}
    epochs = figures["Test retrieval per evaluation"]["data"][0]["x"]  # plotly's binary array encoding
    assert np.frombuffer(base64.b64decode(epochs["bdata"]), dtype=epochs["dtype"]).tolist() == [0, 1, 2]
    record = RunDir(checkpoints / "done").read_eval()
    cards = {m.label: m for m in at.metric}
    assert cards["rank-1"].value == f"{100 * record.final.test['rank1']:.2f}"
    gain = record.final.test["mAP"] - record.epoch0.test["mAP"]
    assert cards["mAP"].delta == f"{100 * gain:+.2f}"
    results = at.dataframe[0].value
    assert results["result"].tolist() == [f"synthetic/dorsal_r · final (epoch 2)",
                                          f"synthetic/dorsal_r · selected on val mAP (epoch {record.selected.epoch})"]
    config = yaml.safe_load(at.code[0].value)
    assert config["train"]["epochs"] == 2 and config["model"]["backbone"] == "HandID-Tiny"
    assert "succeeded" in at.code[1].value


def test_cross_evaluations_are_listed(checkpoints, open_page):
    at = open_page("run", run="done")
    results = [list(frame.value["result"]) for frame in at.dataframe if "result" in frame.value.columns]
    assert any(rows and rows[0].startswith("synthetic/palmar_r · best (epoch") for rows in results)


def test_failed_run_shows_its_error(checkpoints, open_page):
    at = open_page("run", run="broken")
    assert not at.exception
    assert any("at least 2 are needed" in e.value for e in at.error)


def test_evaluate_form_queues_a_background_job(checkpoints, open_page, monkeypatch):
    calls = []
    monkeypatch.setattr("jobs.api.evaluate", lambda *args, **kwargs: calls.append((args, kwargs)) or "job1")
    at = open_page("run", run="done")
    at.selectbox(key="run_eval_dataset").set_value("hd").run()
    at.text_input(key="run_eval_root").set_value("/data/hd")
    at.selectbox(key="run_eval_protocol").set_value("hd")
    at.button(key="run_eval_submit").click().run()
    assert not at.exception
    assert calls == [(("done", "hd", "/data/hd", "hd", "best"), {"root": checkpoints})]
    assert "job1" in at.success[0].value


def test_metrics_table_shows_mean_and_std_in_percent():
    table = metrics_table({"11k/dorsal_r": {"rank1": 0.9123, "rank1_std": 0.0105, "mAP": 0.5}, "empty": {}})
    assert table["result"].tolist() == ["11k/dorsal_r"]
    assert table.loc[0, "rank-1"] == "91.23 ± 1.05"
    assert table.loc[0, "mAP"] == "50.00"
    assert table.loc[0, "rank-5"] == ""
    assert mean_std({}, "rank1") == ""


def test_gains_table_is_final_minus_epoch0():
    record = EvalRecord(epoch0=Result(0, {"rank1": 0.25, "mAP": 0.5}), final=Result(2, {"rank1": 0.75}))
    table = gains_table(record).set_index("metric")
    assert table.loc["rank-1", ["epoch 0", "final", "gain"]].tolist() == pytest.approx([25.0, 75.0, 50.0])
    assert table.loc["mAP", "epoch 0"] == pytest.approx(50.0)
    assert table["gain"].isna().tolist() == [False, True]


def test_a_queued_run_shows_its_state_without_metrics(empty_checkpoints, open_page, monkeypatch):
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)  # queued, never started
    run_id = jobs.submit(str(REPO / "configs" / "demo.yaml"), {"train.epochs": 1}, root=empty_checkpoints)
    at = open_page("run", run=run_id)
    assert not at.exception
    assert "**queued**" in at.markdown[0].value
    assert [i.value for i in at.info] == ["No metrics yet.", "No final evaluation yet."]


def test_a_run_on_a_real_protocol_sits_beside_the_published_results_and_shows_its_prompt_phase(
        own_checkpoints, open_page):
    """A finished run relabelled as trained and evaluated on 11k dorsal right, with a prompt phase."""
    import shutil

    real = own_checkpoints / "real"
    shutil.copytree(own_checkpoints / "done", real)
    run = RunDir.at(real)
    config = yaml.safe_load(run.config_path.read_text())
    config["data"].update(dataset="11k", root="data/11k")
    run.config_path.write_text(yaml.safe_dump(config))
    run.update_eval(lambda record: setattr(record, "dataset", "11k"))
    lines = run.metrics_path.read_text()
    prompt = "".join(json.dumps({"kind": "prompt", "epoch": 0, "prompt_epoch": e, "loss": 6 - e, "image_to_text": 3 - e / 2,
                                 "text_to_image": 3 - e / 2, "lr": 1e-3}) + "\n" for e in (1, 2, 3))
    run.metrics_path.write_text(prompt + lines)
    at = open_page("run", run="real")
    assert not at.exception
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
    assert "Prompt learning (both encoders frozen)" in titles
    table = next(frame.value for frame in at.dataframe if "method" in frame.value.columns)
    record = run.read_eval()
    assert table["method"].tolist()[:3] == ["ABD-Net", "GPA-Net", "MBA-Net"]
    assert table["mAP (papers' convention)"].tolist()[:3] == [96.76, 95.72, 97.98]
    final = table[table["method"] == f"final (epoch {record.final.epoch})"]
    assert final["mAP (papers' convention)"].item() == pytest.approx(100 * record.final.test["mAP_trapezoid"], abs=0.01)
    assert any("papers' convention" in c.value and "mINP" in c.value for c in at.caption)
    plain = open_page("run", run="done")
    assert not any("method" in frame.value.columns for frame in plain.dataframe)  # synthetic: nothing published
