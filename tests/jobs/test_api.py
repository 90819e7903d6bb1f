from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.errors import ConfigError, HandIDError, ModelError
from core.runs import FINAL_STATES, RunDir
from jobs import api
from jobs.queue import JobError, Queue
from jobs.scheduler import scheduler_pid

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")
RUN_S = 240  # generous bound for a tiny run on a busy 2-core machine


def ended(run_id: str):
    info = api.get_run(run_id)
    return info if info.state in FINAL_STATES else None


def test_invalid_config_is_rejected_and_nothing_is_queued(root):
    with pytest.raises(ConfigError, match="optim.lr=-1"):
        api.submit(DEMO, ["optim.lr=-1"], start_scheduler=False)
    with pytest.raises(ConfigError, match="unknown config key 'optim.nope'"):
        api.sweep(DEMO, {"optim.lr": [1e-4, 5e-5], "optim.nope": [1]}, start_scheduler=False)
    with pytest.raises(ConfigError, match="optim.name='rmsprop' is not valid"):
        api.sweep(DEMO, {"optim.name": ["adam", "rmsprop"]}, start_scheduler=False)
    assert Queue().all() == []
    assert not root.exists() or not any(p.is_dir() for p in root.iterdir())


def test_unwritable_checkpoints_folder_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(JobError) as err:
        api.submit(DEMO, root=blocker / "checkpoints", start_scheduler=False)
    assert str(blocker / "checkpoints") in str(err.value) and "\n" not in str(err.value)


def test_a_queue_that_cannot_be_written_leaves_no_half_run(root):
    (root / "queue.sqlite").mkdir(parents=True)  # the database file cannot be opened
    with pytest.raises(JobError, match="queue.sqlite") as err:
        api.submit(DEMO, start_scheduler=False)
    assert "\n" not in str(err.value)
    assert [p.name for p in root.iterdir()] == ["queue.sqlite"]


def test_submit_writes_the_resolved_config_and_a_queued_status(root):
    overrides = {"optim.lr": 5e-4, "train.epochs": 20, "loss.triplet.weight": 1.0, "loss.center.weight": 0.0}
    run_id = api.submit(DEMO, overrides, name="mine", start_scheduler=False)
    run = RunDir.at(root / run_id)
    assert run.read_config().optim.lr == 5e-4 and run.read_config().model.backbone == "HandID-Tiny"
    assert (run.read_status().state, run.read_status().name) == ("queued", "mine")
    info = api.get_run(run_id)
    assert (info.name, info.state, info.kind, info.progress, info.epochs) == ("mine", "queued", "train", 0.0, 20)
    assert info.losses == "ce+triplet" and info.backbone == "HandID-Tiny"


def test_cancelling_a_queued_parent_cancels_its_chained_child(root):
    parent = api.submit(DEMO, start_scheduler=False)
    child = api.submit(DEMO, after=parent, start_scheduler=False)
    assert RunDir.at(root / child).read_config().model.init_from == str(root / parent)
    api.cancel(parent)
    assert api.get_run(parent).state == "cancelled"
    info = api.get_run(child)
    assert (info.state, info.error) == ("cancelled", f"parent {parent} cancelled")
    assert RunDir.at(root / child).read_status().state == "cancelled"
    with pytest.raises(JobError, match="already cancelled"):
        api.cancel(parent)
    with pytest.raises(JobError, match="only a failed, cancelled or stopped run can be resumed"):
        api.resume(api.submit(DEMO, start_scheduler=False))


def test_shipped_presets_are_checked_up_front(root):
    with pytest.raises(HandIDError, match="dataset root not found: data/11k"):
        api.sweep_preset(REPO / "configs" / "sweeps" / "stage1_variants.yaml", start_scheduler=False)
    assert Queue().all() == []


def test_shipped_presets_queue_named_runs(root, tiny):
    on_disk = {"data.dataset": "synthetic", "data.root": tiny["data.root"], "model.pretrained": ""}
    ids = api.sweep_preset(REPO / "configs" / "sweeps" / "stage1_variants.yaml", start_scheduler=False,
                           overrides=on_disk)
    runs = [api.get_run(i) for i in ids]
    assert len({r.sweep_id for r in runs}) == 1 and runs[0].sweep_id
    assert runs[0].name == "stage1_variants lr=0.0001 name=adam"
    assert sorted(r.name.split(" ", 1)[1] for r in runs) == sorted(
        f"lr={lr} name={o}" for lr in ("0.0001", "5e-05", "5e-06") for o in ("adam", "adamw"))
    first, second = api.chain_preset(REPO / "configs" / "chains" / "stage1_stage2.yaml", start_scheduler=False,
                                     overrides=on_disk)
    assert api.get_run(second).after == first
    assert RunDir.at(root / second).read_config().model.init_from == str(root / first)
    assert RunDir.at(root / second).read_config().loss.center.weight == 5e-4


@pytest.mark.slow
def test_submitted_run_finishes_with_results_and_the_scheduler_leaves(root, tiny, wait_for):
    run_id = api.submit(DEMO, tiny, name="tiny")
    info = wait_for(lambda: ended(run_id), RUN_S, "the run to end")
    assert info.state == "succeeded", info.error
    assert (info.epoch, info.epochs, info.progress) == (1, 1, 1.0)
    record = RunDir.at(root / run_id).read_eval()
    assert info.final == record.final.test and info.selected == record.selected.test and info.selected_epoch == 1
    assert info.started >= info.created and info.ended >= info.started
    assert [r.run_id for r in api.list_runs()] == [run_id]
    assert (root / run_id / "train.log").exists() and (root / run_id / "last.safetensors").exists()

    job = api.evaluate(run_id, "synthetic", tiny["data.root"], "palmar_l")
    evaluation = wait_for(lambda: ended(job), RUN_S, "the evaluation to end")
    assert (evaluation.state, evaluation.kind) == ("succeeded", "evaluate"), evaluation.error
    cross = RunDir.at(root / run_id).read_eval().cross["synthetic/palmar_l"]
    assert evaluation.final == cross.test and evaluation.target == run_id
    assert sorted(r.kind for r in api.list_runs()) == ["evaluate", "train"]
    wait_for(lambda: scheduler_pid(root) is None, 60, "the idle scheduler to exit")


@pytest.mark.slow
def test_cancel_stops_a_running_run_and_keeps_its_checkpoint(root, tiny, wait_for):
    run_id = api.submit(DEMO, {**tiny, "train.epochs": 50})
    run = RunDir.at(root / run_id)
    wait_for(lambda: run.last_path.exists(), RUN_S, "the first checkpoint")
    assert api.cancel(run_id) == "running"
    info = wait_for(lambda: ended(run_id), 60, "the run to stop")
    assert info.state == "cancelled" and info.epoch < 50
    assert run.read_status().state == "cancelled"
    assert run.last_path.exists()
    assert "it resumes after epoch" in run.log_path.read_text()


@pytest.mark.slow
def test_sweep_of_four_runs_finishes_with_one_row_each(root, tiny, wait_for, monkeypatch):
    monkeypatch.setenv("HANDID_CPU_SLOTS", "2")
    ids = api.sweep(DEMO, {"optim.lr": [1e-3, 5e-4], "loss.triplet.margin": [0.2, 0.5]}, tiny, name="grid")
    assert len(ids) == 4
    infos = [wait_for(lambda i=i: ended(i), 2 * RUN_S, "the sweep to end") for i in ids]
    assert [i.state for i in infos] == ["succeeded"] * 4, [i.error for i in infos]
    rows = [r for r in api.list_runs() if r.sweep_id == infos[0].sweep_id]
    assert sorted(r.run_id for r in rows) == sorted(ids)
    assert sorted(r.name for r in rows) == ["grid lr=0.0005 margin=0.2", "grid lr=0.0005 margin=0.5",
                                            "grid lr=0.001 margin=0.2", "grid lr=0.001 margin=0.5"]
    margins = {RunDir.at(root / i).read_config().loss.triplet.margin for i in ids}
    assert margins == {0.2, 0.5}


@pytest.mark.slow
def test_chain_runs_in_order_and_the_second_starts_from_the_first(root, tiny, wait_for):
    first, second = api.submit_chain([(DEMO, {**tiny, "loss.triplet.weight": 0.0}),
                                      (DEMO, {**tiny, "loss.triplet.weight": 1.0})], name="chain")
    two = wait_for(lambda: ended(second), 2 * RUN_S, "the second stage to end")
    one = api.get_run(first)
    assert (one.state, two.state) == ("succeeded", "succeeded"), (one.error, two.error)
    assert two.started >= one.ended
    assert RunDir.at(root / second).read_config().model.init_from == str(root / first)
    assert f"from {root / first / 'best.safetensors'}" in RunDir.at(root / second).log_path.read_text()
    train_records = [m for m in RunDir.at(root / second).read_metrics() if m["kind"] == "train"]
    assert train_records and all("triplet" in m for m in train_records)
    assert (one.losses, two.losses) == ("ce", "ce+triplet")


@pytest.mark.slow
def test_a_failed_parent_blocks_its_chained_child(root, tiny, wait_for, tmp_path):
    (tmp_path / "one-person" / "a").mkdir(parents=True)  # a folder dataset with one identity: fails on reading
    parent = api.submit(DEMO, {**tiny, "data.dataset": "folder", "data.root": str(tmp_path / "one-person")})
    child = api.submit(DEMO, tiny, after=parent)
    info = wait_for(lambda: ended(child), RUN_S, "the child to be settled")
    assert api.get_run(parent).state == "failed"
    assert (info.state, info.error, info.attempt) == ("failed", f"parent {parent} failed", 0)
    assert not (root / child / "process.log").exists()


def test_an_unknown_backbone_is_refused_within_seconds_before_any_data(root, tmp_path):
    data = tmp_path / "not-generated"
    start = time.monotonic()
    with pytest.raises(ModelError, match="unknown backbone 'ViT-X-99'"):
        api.submit(DEMO, {"model.backbone": "ViT-X-99", "data.root": str(data)}, start_scheduler=False)
    assert time.monotonic() - start < 30 and not data.exists()  # generous: imports take seconds on a busy machine
    with pytest.raises(ModelError, match="weights file not found"):
        api.sweep(DEMO, {"model.pretrained": ["", "/no/such/weights.safetensors"]}, start_scheduler=False)
    assert Queue().all() == []


def test_run_ids_are_checked_before_they_name_a_folder(root, tmp_path):
    for call in (lambda: api.get_run("../other/20260101-000000-00000000"),
                 lambda: api.evaluate("../x", "11k", str(tmp_path), "dorsal_r"),
                 lambda: api.cancel("a/b")):
        with pytest.raises(JobError, match="is not a run id"):
            call()
