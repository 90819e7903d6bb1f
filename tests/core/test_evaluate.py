"""`python -m core.evaluate` / evaluate_checkpoint: a checkpoint on its own and other protocols.

core.evaluate imports nothing of the trainer (core/training): evaluation works from a checkpoint alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from core.errors import ConfigError, ModelError
from core.evaluate import checkpoint_thresholds, evaluate_checkpoint, main
from core.runs import RunDir

METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mAP_trapezoid", "mINP")


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A private copy of the session's trained run (evaluations write into its eval.json)."""
    return shutil.copytree(trained_run, tmp_path / "run")


def test_the_last_checkpoint_on_its_own_protocol_reproduces_the_final_evaluation(run_copy):
    run = RunDir.at(run_copy)
    final = run.read_eval().final
    result = evaluate_checkpoint(run_copy, "last")
    assert result.epoch == 2 and result.dataset == "synthetic" and result.protocol == "dorsal_r"
    for key in (*METRICS, "intra", "inter"):
        assert result.test[key] == pytest.approx(final.test[key], abs=1e-5)
    assert run.read_eval().cross["synthetic/dorsal_r"].test["mAP"] == result.test["mAP"]
    assert run.read_eval().final == final  # the training record is left alone


def test_best_is_the_checkpoint_selected_on_validation(run_copy):
    selected = RunDir.at(run_copy).read_eval().selected
    result = evaluate_checkpoint(run_copy, record=False)
    assert result.checkpoint == "best" and result.epoch == selected.epoch
    assert result.test["mAP"] == pytest.approx(selected.test["mAP"], abs=1e-5)


def test_cross_aspect_is_recorded_under_its_key(run_copy):
    result = evaluate_checkpoint(run_copy, "best", protocol="palmar_r", runs=3, flip=False)
    assert (result.protocol, result.runs, result.flip, result.checkpoint) == ("palmar_r", 3, False, "best")
    assert all(0 <= result.test[k] <= 1 for k in METRICS) and f"{METRICS[0]}_std" in result.test
    evaluate_checkpoint(run_copy, "last", protocol="dorsal_l")
    cross = RunDir.at(run_copy).read_eval().cross
    assert set(cross) == {"synthetic/palmar_r", "synthetic/dorsal_l"}
    assert cross["synthetic/palmar_r"].test["mAP"] == result.test["mAP"]


def test_cross_dataset_needs_a_root_and_evaluates_hd(run_copy, synth_hd_root):
    with pytest.raises(ConfigError, match="give --root"):
        evaluate_checkpoint(run_copy, dataset="hd")
    result = evaluate_checkpoint(run_copy, dataset="synthetic", root=str(synth_hd_root), protocol="hd", runs=2)
    assert result.protocol == "hd" and result.root == str(synth_hd_root)
    assert "synthetic/hd" in RunDir.at(run_copy).read_eval().cross


def test_flip_tta_changes_the_features(run_copy):
    with_flip = evaluate_checkpoint(run_copy, "last", flip=True, record=False)
    without = evaluate_checkpoint(run_copy, "last", flip=False, record=False)
    assert with_flip.test["intra"] != without.test["intra"]
    assert not RunDir.at(run_copy).read_eval().cross


def test_cli_prints_json_and_records(run_copy, capsys):
    assert main(["--run-dir", str(run_copy), "--checkpoint", "last", "--protocol", "palmar_l", "--runs", "2",
                 "--no-flip", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["protocol"] == "palmar_l" and printed["flip"] is False and printed["runs"] == 2
    assert RunDir.at(run_copy).read_eval().cross["synthetic/palmar_l"].to_json() == printed


def test_cli_prints_a_readable_table(run_copy, capsys):
    assert main(["--run-dir", str(run_copy), "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthetic/dorsal_r (2 runs, flip off, checkpoint best")  # the demo evaluates without flip
    assert "mAP (papers' convention)" in out and "±" in out


def test_a_missing_checkpoint_is_a_model_error(run_copy):
    with pytest.raises(ModelError, match="checkpoint not found"):
        evaluate_checkpoint(run_copy, str(run_copy / "nope.safetensors"))


def test_a_folder_without_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config.yaml not found"):
        evaluate_checkpoint(tmp_path)


def test_evaluation_imports_nothing_of_the_trainer():
    code = "import sys, core.evaluate; print(sorted(m for m in sys.modules if m.startswith('core.training')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_verification_figures_come_with_every_evaluation(run_copy):
    result = evaluate_checkpoint(run_copy, "last", record=False)
    assert 0 <= result.test["eer"] <= 1 and "tar@far=1e-3_std" in result.test
    assert result.curves["thresholds"]["far_target"] == [1e-2, 1e-3]
    assert len(result.curves["roc"]["far"]) <= 200 and len(result.curves["det"]["fnmr"]) <= 200
    assert not result.rerank
    assert [p["far_target"] for p in checkpoint_thresholds(run_copy, "last")] == [1e-2, 1e-3]


def test_the_training_records_verification_for_its_checkpoints(run_copy):
    record = RunDir.at(run_copy).read_eval()
    assert record.final.curves["thresholds"]["threshold"] and "eer" in record.final.test
    recorded = checkpoint_thresholds(run_copy, "last")  # read back, not evaluated again
    assert [p["threshold"] for p in recorded] == record.final.curves["thresholds"]["threshold"]


def test_rerank_is_reported_beside_the_plain_metrics(run_copy, capsys):
    plain = evaluate_checkpoint(run_copy, "last", record=False)
    assert main(["--run-dir", str(run_copy), "--checkpoint", "last", "--rerank", "--k1", "5", "--k2", "2",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {k: result["test"][k] for k in METRICS} == {k: plain.test[k] for k in METRICS}  # untouched
    rerank = result["rerank"]
    assert all(0 <= rerank[k] <= 1 for k in METRICS if k in rerank) and "mAP_std" in rerank
    assert main(["--run-dir", str(run_copy), "--checkpoint", "last", "--lambda", "0.5"]) == 0
    assert "re-ranked (k-reciprocal)" in capsys.readouterr().out


def test_rerank_parameters_are_checked_like_config_values(run_copy):
    with pytest.raises(ConfigError, match="eval.rerank_lambda"):
        main(["--run-dir", str(run_copy), "--lambda", "2"])
