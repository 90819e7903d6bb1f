"""Studies over the queue on constructed run folders (no training): queued runs labelled with the
study, the study file, summaries where arms truly differ or are identical, runs left out, cancel."""

from __future__ import annotations

import json

import pytest

from core.config import load_config
from core.errors import ConfigError, DataError
from core.runs import RecordError, RunDir
from core.stats import spans_zero
from jobs import api, study_runs
from jobs.queue import JobError, Queue
from jobs.studies import new_study
from tests.study_folders import DEMO, constructed_study, seeded_values


@pytest.fixture(autouse=True)
def no_scheduler(monkeypatch):
    """Listing runs while some wait would start a scheduler; here queued runs stay queued."""
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)


def test_create_queues_arms_x_seeds_labelled_with_the_study(root):
    study = study_runs.create(new_study("lr", DEMO, [("base", {}), ("fast", {"optim.lr": 1e-2})], 3,
                                        overrides={"train.epochs": 2}), start_scheduler=False)
    assert [(r["arm"], r["seed"]) for r in study.runs] == [
        ("base", 0), ("fast", 0), ("base", 1), ("fast", 1), ("base", 2), ("fast", 2)]
    assert len(Queue().all()) == 6
    for run in study.runs:
        folder = RunDir.at(root / run["run_id"])
        status, config = folder.read_status(), folder.read_config()
        assert (status.study_id, status.arm, status.seed, status.state) == (study.id, run["arm"], run["seed"], "queued")
        assert status.name == f"lr {run['arm']} seed {run['seed']}"
        assert (config.train.seed, config.train.epochs) == (run["seed"], 2)
        assert config.optim.lr == (1e-2 if run["arm"] == "fast" else load_config(DEMO).optim.lr)
    assert study_runs.read_study(study.id) == study
    assert (root / "studies" / f"{study.id}.json").exists()
    assert [s.id for s in study_runs.list_studies()] == [study.id]
    assert sorted(api.runs_of(api.list_runs(), study_id=study.id)) == sorted(r["run_id"] for r in study.runs)


@pytest.mark.parametrize("bad, error, needle", [
    ({"optim.lr": -1}, ConfigError, "optim.lr=-1"),
    ({"data.dataset": "folder", "data.root": "/nonexistent/hands"}, DataError, "/nonexistent/hands"),
])
def test_an_invalid_arm_queues_nothing(root, bad, error, needle):
    with pytest.raises(error, match=rf"^arm 'bad': .*{needle}") as err:
        study_runs.create(new_study("s", DEMO, [("ok", {}), ("bad", bad)], 2), start_scheduler=False)
    assert "\n" not in str(err.value)
    assert Queue().all() == [] and study_runs.list_studies() == []


def test_arms_that_truly_differ_give_p_below_005(root):
    study = constructed_study(root, seeded_values(effect=0.03, seeds=5), seeds=5)
    comparison = next(c for c in study_runs.summary(study)["comparisons"] if c["metric"] == "mAP")
    assert comparison["n_pairs"] == 5 and comparison["p"] < 0.05 and comparison["ci95"][0] > 0


def test_identical_arms_give_an_interval_spanning_zero(root):
    ce = seeded_values(effect=0.0, seeds=4)["CE"]
    summary = study_runs.summary(constructed_study(root, {"CE": ce, "TRI": dict(ce)}, seeds=4))
    assert summary["arms"]["TRI"]["metrics"]["mAP"]["values"] == [ce[s] for s in range(4)]
    for comparison in summary["comparisons"]:
        assert comparison["n_pairs"] == 4 and spans_zero(comparison["ci95"]) and comparison["p"] == 1.0


def test_unfinished_failed_and_missing_runs_are_listed_and_left_out(root):
    values = {"CE": {0: 0.40, 1: 0.42, 2: 0.41}, "TRI": {0: 0.45, 1: 0.46}}
    study = constructed_study(root, values, seeds=3, left={("TRI", 2): "failed"})
    ce_2 = next(r["run_id"] for r in study.runs if (r["arm"], r["seed"]) == ("CE", 2))
    RunDir.at(root / ce_2).update_status(state="running", pid=None)  # settled as failed (no process)
    tri = next(r["run_id"] for r in study.runs if (r["arm"], r["seed"]) == ("TRI", 1))
    (root / tri / "status.json").unlink()
    (root / tri / "config.yaml").unlink()
    summary = study_runs.summary(study)
    by_seed = {(r["arm"], r["seed"]): r["run_id"] for r in study.runs}
    assert summary["arms"]["CE"]["runs"] == [by_seed["CE", 0], by_seed["CE", 1]]
    assert summary["arms"]["CE"]["failed"] == [ce_2]
    assert sorted(summary["arms"]["TRI"]["failed"]) == sorted([tri, by_seed["TRI", 2]])
    assert summary["arms"]["TRI"]["n"] == 1 and summary["comparisons"][0]["n_pairs"] == 1


def test_pending_runs_are_listed_and_cancel_stops_the_study(root):
    study = constructed_study(root, {"CE": {0: 0.4}, "TRI": {0: 0.5}}, seeds=2)
    summary = study_runs.summary(study)
    assert [len(summary["arms"][a]["pending"]) for a in ("CE", "TRI")] == [1, 1]
    left = study_runs.cancel(study)
    assert sorted(left) == sorted(r["run_id"] for r in study.runs if r["seed"] == 1)
    assert set(left.values()) == {"cancelled"}
    after = study_runs.summary(study)
    assert [len(after["arms"][a]["failed"]) for a in ("CE", "TRI")] == [1, 1]


def test_bad_ids_and_damaged_study_files_are_one_line_errors(root):
    with pytest.raises(JobError, match="is not a study id"):
        study_runs.read_study("../queue")
    with pytest.raises(JobError, match="no study study-x in"):
        study_runs.read_study("study-x")
    (root / "studies").mkdir(parents=True)
    for name, text in [("study-a.json", "{"), ("study-b.json", json.dumps({"id": "study-b"})),
                       ("study-c.json", json.dumps([1]))]:
        (root / "studies" / name).write_text(text)
        with pytest.raises(RecordError, match=rf"{name}: ") as err:
            study_runs.read_study(name.removesuffix(".json"))
        assert "\n" not in str(err.value)
        (root / "studies" / name).unlink()
    study = study_runs.create(new_study("ok", DEMO, [("CE", {})], 1), start_scheduler=False)
    (root / "studies" / "study-broken.json").write_text("{")
    with pytest.raises(RecordError, match="study-broken.json: not valid JSON"):
        study_runs.list_studies()
    damaged = []
    assert study_runs.list_studies(on_damaged=damaged.append) == [study]
    broken = root / "studies" / "study-broken.json"
    assert [str(e) for e in damaged] == [f"{broken}: not valid JSON (damaged or half-written)"]
