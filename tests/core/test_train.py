"""`python -m core.train`: the run folder contract, every loss combination, resume, SIGTERM,
init_from, the frozen text encoder, and errors. Tiny runs (HandID-Tiny, 32 px) on the
session's synthetic dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core.config import to_dict
from core.errors import ConfigError, DataError
from core.losses import registry
from core.model.checkpoint import load_metadata, load_model_state, load_training_state
from core.model.handid import is_text_encoder_key
from core.runs import RunDir
from core.train import main, train
from core.training.lifecycle import CancelFlag
from core.training.model import build_model
from core.training.trainer import Trainer

from .conftest import DEMO, REPO

METRIC_KEYS = {"rank1", "rank5", "rank10", "rank20", "mAP", "mAP_trapezoid", "mINP"}
STAT_KEYS = {"intra", "inter", "ratio", "silhouette", "spread_pre_bn"}
EMBEDDING_KEYS = {f"{side}_{key}" for side in ("query", "gallery")
                  for key in ("features", "labels", "paths", "identities", "aspects")}


def cli_args(overrides: dict, run_dir: Path) -> list[str]:
    sets = [a for key, value in overrides.items() for a in ("--set", f"{key}={json.dumps(value) if isinstance(value, list) else value}")]
    return ["--config", str(DEMO), *sets, "--run-dir", str(run_dir)]


def train_lines(run: RunDir) -> list[dict]:
    return [m for m in run.read_metrics() if m["kind"] == "train"]


def eval_lines(run: RunDir, split: str = "test") -> list[dict]:
    return [m for m in run.read_metrics() if m["kind"] == "eval" and m["split"] == split]


def test_cli_writes_the_whole_run_folder(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert main(cli_args(tiny_overrides, run_dir)) == 0
    run = RunDir.at(run_dir)

    assert run.read_config().data.root == tiny_overrides["data.root"]
    assert run.read_config().train.epochs == 2
    status = run.read_status()
    assert status.state == "succeeded" and status.pid == os.getpid()
    assert status.epoch == status.epochs == 2 and status.error is None
    assert status.ended >= status.started and run.heartbeat_age() is not None

    trains = train_lines(run)
    assert {"epoch", "step", "loss", "ce", "center", "center_weighted", "lr", "images_per_s"} <= set(trains[0])
    assert [m["step"] for m in trains] == list(range(1, len(trains) + 1))  # log_every=1
    tests = eval_lines(run, "test")
    assert [m["epoch"] for m in tests] == [0, 1, 2]  # before any update, every epoch, end
    assert METRIC_KEYS | {k + "_std" for k in METRIC_KEYS} | STAT_KEYS <= set(tests[0])
    vals = eval_lines(run, "val")
    assert [m["epoch"] for m in vals] == [0, 1, 2] and {"rank1", "mAP", "mAP_trapezoid", "id_accuracy"} <= set(vals[0])

    ev = run.read_eval()
    assert (ev.protocol, ev.runs, ev.selection) == ("dorsal_r", 2, "val mAP")
    assert ev.epoch0.test["mAP"] == tests[0]["mAP"] and ev.final.test["mAP"] == tests[-1]["mAP"]
    assert ev.final.epoch == 2 and ev.final.val["mAP"] == vals[-1]["mAP"]
    best_val = max(vals[1:], key=lambda m: m["mAP"])  # selection is among trained epochs, on validation
    assert ev.selected.epoch == min(m["epoch"] for m in vals[1:] if m["mAP"] == best_val["mAP"])
    assert ev.selected.test["mAP"] == next(m["mAP"] for m in tests if m["epoch"] == ev.selected.epoch)

    meta = load_metadata(run.last_path)
    assert meta.epoch == 2 and meta.backbone == "HandID-Tiny" and meta.image_size == (32, 32)
    assert meta.num_classes == len(meta.class_names) == 4 and meta.mean == run_model_mean()
    assert load_metadata(run.best_path).epoch == ev.selected.epoch
    assert load_training_state(run.last_path)["epoch"] == 2  # weights and resume state: one file

    emb = run.read_embeddings()
    assert emb.query_features.shape[1] == 64 and emb.query_paths.dtype.kind == "U"
    assert np.allclose(np.linalg.norm(emb.gallery_features, axis=1), 1, atol=1e-5)
    assert set(emb.query_aspects) == {"dorsal_r"} and len(emb.gallery_labels) == 16  # 4 per subset
    assert "eval epoch 2" in run.log_path.read_text()


def run_model_mean() -> tuple[float, float, float]:
    from core.model.preprocess import Preprocess

    return Preprocess().mean  # HandID-Tiny, random init: open_clip's defaults


def test_the_checkpoint_selected_is_the_best_on_validation_not_on_test(tiny_config, tmp_path, monkeypatch):
    """Validation and test disagree by construction: val is best at epoch 1, test at epoch 2."""
    from core import evaluation

    val_by_epoch, test_by_epoch = {0: 0.1, 1: 0.9, 2: 0.5}, {0: 0.1, 1: 0.3, 2: 0.8}
    epochs = iter([0, 1, 2])
    real = evaluation.evaluate

    def scripted(*args, **kwargs):
        result, epoch = real(*args, **kwargs), next(epochs)
        result.val["mAP"], result.test["mAP"] = val_by_epoch[epoch], test_by_epoch[epoch]
        return result

    monkeypatch.setattr("core.training.trainer.evaluate", scripted)
    assert train(tiny_config(), str(tmp_path / "run")) == 0
    ev = RunDir.at(tmp_path / "run").read_eval()
    assert (ev.selected.epoch, ev.selected.val["mAP"], ev.selected.test["mAP"]) == (1, 0.9, 0.3)
    assert (ev.final.epoch, ev.final.test["mAP"]) == (2, 0.8)
    assert load_metadata(RunDir.at(tmp_path / "run").best_path).epoch == 1


STAGE2 = {
    "ce_triplet": {"loss.triplet.weight": 1.0},
    "ce_center": {"loss.triplet.weight": 0.0, "loss.center.weight": 5e-4},
    "ce_triplet_center": {"loss.triplet.weight": 1.0, "loss.center.weight": 5e-4},
    "ce_triplet_center_arcface": {"loss.triplet.weight": 1.0, "loss.center.weight": 5e-4, "loss.arcface.weight": 1.0},
    "margin0.2": {"loss.triplet.weight": 1.0, "loss.triplet.margin": 0.2},
    "margin0.5": {"loss.triplet.weight": 1.0, "loss.triplet.margin": 0.5},
    "hard_mining": {"loss.triplet.weight": 1.0, "loss.triplet.mining": "batch_hard"},
    "semihard": {"loss.triplet.weight": 1.0, "loss.triplet.mining": "semihard"},
    "pk": {"loss.triplet.weight": 1.0, "sampler.kind": "pk", "sampler.p": 2, "sampler.k": 2},
    "i2t": {"loss.triplet.weight": 1.0, "loss.i2t.weight": 1.0},
    "sgd_step_clip": {"optim.name": "sgd", "optim.schedule": "step", "optim.step_size": 1, "optim.grad_clip": 1.0},
    "adamw_smoothing": {"optim.name": "adamw", "loss.ce.label_smoothing": 0.1},
}


@pytest.mark.parametrize("overrides", STAGE2.values(), ids=STAGE2.keys())
def test_every_stage2_combination_trains(tiny_config, tmp_path, overrides):
    cfg = tiny_config({**overrides, "eval.every": 0})
    assert train(cfg, str(tmp_path / "run")) == 0
    run = RunDir.at(tmp_path / "run")
    components = set(registry.active(cfg.loss))
    for line in train_lines(run):
        assert components <= set(line) and all(np.isfinite(line[c]) for c in components)
    assert [m["epoch"] for m in eval_lines(run)] == [0, 2]


def test_centres_train_on_their_own_sgd(tiny_config, tmp_path):
    cfg = tiny_config({"loss.center.weight": 5e-4, "loss.center.lr": 0.5, "train.epochs": 1, "eval.every": 0})
    trainer = Trainer(cfg, RunDir.at(tmp_path).create(), CancelFlag())
    trainer.setup(resume=False)
    centres = trainer.loss.components["center"].centers
    before = centres.detach().clone()
    trainer.train_epoch(1)
    assert trainer.loss_optimizers["center"].param_groups[0]["lr"] == 0.5
    assert not torch.equal(before, centres.detach())
    assert all(p is not centres for g in trainer.optimizer.param_groups for p in g["params"])


def test_backbone_and_heads_get_their_own_learning_rates(tiny_config, tmp_path):
    cfg = tiny_config({"optim.lr": 1e-4, "optim.head_lr": 1e-2, "optim.warmup_epochs": 0,
                       "optim.schedule": "constant", "loss.arcface.weight": 1.0})
    trainer = Trainer(cfg, RunDir.at(tmp_path).create(), CancelFlag())
    trainer.setup(resume=False)
    trainer.train_epoch(1)
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == {"backbone": 1e-4, "heads": 1e-2, "arcface": 1e-2}


def test_the_frozen_text_encoder_stays_bit_identical(tiny_config, tmp_path):
    cfg = tiny_config({"loss.i2t.weight": 1.0, "loss.triplet.weight": 1.0})
    trainer = Trainer(cfg, RunDir.at(tmp_path).create(), CancelFlag())
    trainer.setup(resume=False)
    state = trainer.model.state_dict()
    text = {k: v.clone() for k, v in state.items() if is_text_encoder_key(k) or k.startswith("text_classifier.")}
    visual = {k: v.clone() for k, v in state.items() if k.startswith("clip.visual.")}
    assert text and visual
    trainer.fit()
    after = trainer.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in text.items())
    assert any(not torch.equal(after[k], v) for k, v in visual.items())


def test_resume_continues_at_the_next_epoch_and_appends(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert main(cli_args(tiny_overrides, run_dir)) == 0
    run = RunDir.at(run_dir)
    before = run.read_metrics()
    epoch0 = run.read_eval().epoch0
    assert main(["--resume", "--set", "train.epochs=3", "--run-dir", str(run_dir)]) == 0
    after = run.read_metrics()
    assert after[:len(before)] == before
    assert (after[len(before)]["kind"], after[len(before)]["epoch"]) == ("resume", 2)  # marked for the curves
    new = after[len(before) + 1:]
    assert {m["epoch"] for m in new} == {3}  # no epoch-0 evaluation, no repeated epochs
    assert [m["kind"] for m in new][-1] == "eval"
    steps = [m["step"] for m in train_lines(run)]
    assert steps == list(range(1, len(steps) + 1))  # the global step carries on (log_every=1)
    ev = run.read_eval()
    assert ev.epoch0 == epoch0 and ev.final.epoch == 3
    assert load_metadata(run.last_path).epoch == 3
    assert run.read_status().state == "succeeded" and run.read_config().train.epochs == 3


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the trainer catches it, nothing is cleaned up."""


def test_a_resume_after_a_kill_replays_the_lost_epochs_once_and_exactly(tiny_overrides, tmp_path, monkeypatch):
    """A kill during epoch 3 leaves the epoch-2 checkpoint, part of epoch 3's records and a torn
    write; the resume drops those records and replays epoch 3 exactly as an uninterrupted run did."""
    overrides = {**tiny_overrides, "train.epochs": 3, "eval.every": 1}
    assert main(cli_args(overrides, tmp_path / "whole")) == 0
    whole = RunDir.at(tmp_path / "whole").read_metrics()

    real_log = Trainer._log_train

    def killed_in_epoch_3(self, epoch, step, meter):
        real_log(self, epoch, step, meter)
        if epoch == 3:
            raise Killed()

    monkeypatch.setattr(Trainer, "_log_train", killed_in_epoch_3)
    cut = RunDir.at(tmp_path / "cut")
    with pytest.raises(Killed):
        main(cli_args(overrides, cut.path))
    monkeypatch.setattr(Trainer, "_log_train", real_log)
    assert cut.read_status().state == "running" and any(m["epoch"] == 3 for m in cut.read_metrics())
    assert load_training_state(cut.last_path)["epoch"] == 2
    (cut.path / ".last.safetensors.123.tmp").write_bytes(b"half a checkpoint")

    assert main(["--resume", "--run-dir", str(cut.path)]) == 0
    replayed = [m for m in cut.read_metrics() if m["kind"] != "resume"]
    key = lambda m: (m["kind"], m.get("split"), m["epoch"], m.get("step"))
    assert [key(m) for m in replayed] == [key(m) for m in whole]  # every record once, in order
    timing = ("images_per_s", "time")
    assert [{k: v for k, v in m.items() if k not in timing} for m in replayed] == [
        {k: v for k, v in m.items() if k not in timing} for m in whole]
    assert not list(cut.path.glob(".*.tmp"))


def test_sigterm_marks_cancelled_and_keeps_the_last_epochs_checkpoint(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    args = cli_args({**tiny_overrides, "train.epochs": 500, "eval.every": 0}, run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "core.train", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = RunDir.at(run_dir)
    deadline = time.time() + 120
    while (_epoch(run) < 2 or not run.last_path.exists()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    status = run.read_status()
    assert status.state == "cancelled" and status.ended is not None
    meta = load_metadata(run.last_path)
    assert 1 <= meta.epoch < 500 and load_training_state(run.last_path)["epoch"] == meta.epoch
    assert "it resumes after epoch" in run.log_path.read_text()


def _epoch(run: RunDir) -> float:
    try:
        status = run.read_status()
    except Exception:  # half-written while the trainer updates it
        return 0
    return status.epoch if status else 0


def test_init_from_another_run_keeps_the_encoder_and_rebuilds_other_heads(tiny_config, trained_run):
    source = load_model_state(RunDir.at(trained_run).checkpoint("best"))
    cfg = tiny_config({"model.init_from": str(trained_run)})
    palmar = build_model(cfg, ["0000001", "0000002", "0000003"], ["palmar_r"] * 3)  # other identities
    state = palmar.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.items() if k.startswith("clip.visual."))
    assert state["neck.classifier.weight"].shape[0] == 3  # 4 classes in the source: rebuilt
    same = build_model(cfg, [f"{i}" for i in range(4)], ["dorsal_r"] * 4)
    assert torch.equal(same.state_dict()["neck.classifier.weight"], source["neck.classifier.weight"])


def test_init_from_a_missing_checkpoint_is_a_model_error(tiny_config, tmp_path):
    from core.errors import ModelError
    with pytest.raises(ModelError, match="no checkpoint found"):
        build_model(tiny_config({"model.init_from": str(tmp_path)}), ["a", "b"], ["", ""])


def test_a_cross_protocol_run_evaluates_on_the_other_side(tiny_config, tmp_path):
    cfg = tiny_config({"eval.protocol": "palmar_r", "eval.every": 0, "train.epochs": 1})
    assert train(cfg, str(tmp_path / "run")) == 0
    run = RunDir.at(tmp_path / "run")
    assert run.read_eval().protocol == "palmar_r"
    assert set(run.read_embeddings().query_aspects) == {"palmar_r"}


def test_config_errors_are_one_line_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "core.train", "--config", str(DEMO), "--set", "optim.lrr=1",
                             "--run-dir", str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown config key 'optim.lrr'; valid keys: ")
    assert result.stderr.count("\n") == 1 and "optim.head_lr" in result.stderr
    assert not run_dir.exists()


def test_an_unknown_backbone_is_refused_before_any_data_is_generated(tmp_path):
    run_dir, data = tmp_path / "run", tmp_path / "not-generated"
    result = subprocess.run([sys.executable, "-m", "core.train", "--config", str(DEMO), "--set", "model.backbone=ViT-X-99",
                             "--set", f"data.root={data}", "--run-dir", str(run_dir)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown backbone 'ViT-X-99'")
    assert not data.exists() and not run_dir.exists()


def test_an_unavailable_device_fails_the_run_with_one_line(tiny_config, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        train(tiny_config({"train.device": "cuda"}), str(tmp_path))
    assert RunDir.at(tmp_path).read_status().state == "failed"


def test_a_config_error_in_an_existing_run_folder_marks_it_failed(tmp_path):
    with pytest.raises(ConfigError, match="eval.root"):
        main(["--config", str(DEMO), "--set", "eval.dataset=hd", "--run-dir", str(tmp_path)])
    status = RunDir.at(tmp_path).read_status()
    assert status.state == "failed" and "eval.root" in status.error
    assert not RunDir.at(tmp_path).metrics_path.exists()


def test_a_data_error_fails_the_run_with_its_one_line(tiny_overrides, tmp_path):
    with pytest.raises(DataError, match="set sampler.p to at most 4"):
        main(cli_args({**tiny_overrides, "sampler.kind": "pk", "sampler.p": 9}, tmp_path))
    status = RunDir.at(tmp_path).read_status()
    assert status.state == "failed" and status.error.endswith("set sampler.p to at most 4")


def test_an_unexpected_exception_exits_1_with_the_traceback_in_train_log(tiny_config, tmp_path, monkeypatch):
    def boom(self):
        raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(Trainer, "fit", boom)
    assert train(tiny_config(), str(tmp_path)) == 1
    run = RunDir.at(tmp_path)
    assert run.read_status().state == "failed"
    assert run.read_status().error == "RuntimeError: boom"
    assert "Traceback" in run.log_path.read_text() and "RuntimeError: boom" in run.log_path.read_text()


def test_the_saved_config_is_the_full_resolved_config(tiny_config, trained_run):
    assert RunDir.at(trained_run).read_config() == tiny_config()
    assert yaml.safe_load(RunDir.at(trained_run).config_path.read_text()) == to_dict(tiny_config())


@pytest.mark.slow
def test_the_demo_preset_learns(tmp_path):
    """The demo as shipped (its own synthetic data, generated here) ends clearly above epoch 0."""
    run_dir = tmp_path / "demo"
    assert main(["--config", str(DEMO), "--set", f"data.root={tmp_path / 'synthetic-11k'}",
                 "--set", f"data.cache_dir={tmp_path / 'cache'}", "--run-dir", str(run_dir)]) == 0
    ev = RunDir.at(run_dir).read_eval()
    assert ev.final.test["mAP"] - ev.epoch0.test["mAP"] >= 0.2
