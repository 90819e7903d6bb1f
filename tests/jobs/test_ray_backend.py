"""The ray backend on an embedded local Ray (HANDID_RAY_ADDRESS=local, 2 CPUs), started once for
the module and stopped at its end. Every group is submitted at the start, so the trainings share
the two CPUs; each test then waits for its own runs. Plus the checks that need no Ray: options
and search spaces refused up front, and nothing importing Ray without --backend ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.errors import ConfigError
from core.runs import FINAL_STATES, RunDir
from jobs import api, tune
from jobs.queue import JobError, Queue
from tests.jobs.conftest import DEMO, _wait_for, kill_processes_under

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 600.0  # generous: trainings share two CPUs with the rest of a loaded machine
STRONG, WEAK = [1e-9, 2e-9], [1e-2, 5e-3]  # a tiny lr keeps the random init's val mAP; these lose some by epoch 1
LONG = {"train.epochs": 400}  # runs the cancel and kill tests stop half-way
ASHA = {"train.epochs": 30}  # long enough that ASHA's decision at a rung comes before the run's end


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny: dict) -> SimpleNamespace:
    """A local Ray head with 2 CPUs and every group of the module submitted to it."""
    from jobs.backends import ray as ray_backend

    root = tmp_path_factory.mktemp("ray") / "checkpoints"
    env = {"HANDID_CHECKPOINTS": str(root), "HANDID_RAY_ADDRESS": "local", "HANDID_RAY_HEAD_CPUS": "2",
           "HANDID_RAY_PORT": str(_free_port()), "HANDID_RAY_CPUS": "1", "CUDA_VISIBLE_DEVICES": "",
           "HANDID_CANCEL_GRACE": "20", "HANDID_BACKEND": "ray", "HANDID_RAY_RETRIES": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        ray_backend.ensure_head()
        try:
            yield SimpleNamespace(root=root, **_submit_all(root, {**tiny, "train.epochs": 2}))
        finally:
            from jobs.__main__ import main

            main(["ray", "stop"])
            kill_processes_under(root)


def _submit_all(root: Path, tiny: dict) -> dict:
    from jobs.backends import ray as ray_backend

    long = api.sweep(DEMO, {"train.seed": [0, 1]}, {**tiny, **LONG}, name="long")  # first: they free their CPUs early
    # A driver whose trials read another root's marker: what a node without the shared root sees.
    lost = api.submit(DEMO, tiny, name="not shared", start_scheduler=False)
    ray_backend.spawn_driver(root, ray_backend.write_group(Queue(root), [lost]), "another root's marker")
    asha = api.sweep(DEMO, {"optim.lr": STRONG + WEAK}, {**tiny, **ASHA}, name="asha",
                     tune=tune.TuneOptions(early_stop="asha"))
    demo = api.sweep(DEMO, {"train.seed": [0, 1, 2]}, tiny, name="demo")
    space = tune.parse_space(["optim.lr=loguniform:1e-6:1e-4", "loss.triplet.margin=uniform:0.1:0.6"])
    search = tune.search(DEMO, tune.TuneOptions(search="optuna", trials=4, space=space), {**tiny, "train.epochs": 1})
    return {"demo": demo, "long": long, "asha": asha, "search": search, "lost": lost}


def _states(run_ids: list[str], timeout: float = WAIT_S) -> dict[str, api.RunInfo]:
    """The runs once every one has ended."""
    def ended():
        infos = {i: api.get_run(i) for i in run_ids}
        return infos if all(info.state in FINAL_STATES for info in infos.values()) else None
    return _wait_for(ended, timeout, f"runs {run_ids} to end")


def _running_with_checkpoint(run_id: str) -> api.RunInfo:
    run = RunDir.at(api.get_run(run_id).path)
    return _wait_for(lambda: (info := api.get_run(run_id)).state == "running" and info.pid and run.last_path.exists()
                     and info, WAIT_S, f"run {run_id} to save a checkpoint")


@pytest.mark.slow
def test_cancel_stops_the_trainer_which_saves_and_ends_cancelled(cluster):
    run_id = cluster.long[0]
    _running_with_checkpoint(run_id)
    assert api.cancel(run_id) == "running"
    info = _states([run_id])[run_id]
    assert info.state == "cancelled", info.error
    assert RunDir.at(info.path).last_path.exists()
    assert 1 <= info.epoch < LONG["train.epochs"]


def _kill_worker(trainer: int) -> None:
    """SIGKILL the Ray worker running this trainer (its parent process)."""
    os.kill(int(Path(f"/proc/{trainer}/stat").read_text().rsplit(")", 1)[1].split()[1]), signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_worker_is_retried_once_from_its_checkpoint_then_fails_within_30_s(cluster):
    run_id = cluster.long[1]
    run = RunDir.at(api.get_run(run_id).path)
    first = _running_with_checkpoint(run_id).pid
    _kill_worker(first)
    retried = _wait_for(lambda: (s := run.read_status()).state == "running" and s.attempt == 2 and s.pid
                        and s.pid != first and s, WAIT_S, "the retry ($HANDID_RAY_RETRIES=1)")
    assert retried.start_epoch >= 1  # it resumed after its last checkpoint
    _kill_worker(retried.pid)
    info = _states([run_id], timeout=30)[run_id]
    assert info.state == "failed" and "Ray trial failed" in info.error
    for trainer in (first, retried.pid):
        _wait_for(lambda: not Path(f"/proc/{trainer}").exists(), 10, "the trainers to die with their workers")


@pytest.mark.slow
def test_a_root_the_worker_does_not_share_fails_the_run_naming_it(cluster):
    info = _states([cluster.lost])[cluster.lost]
    assert info.state == "failed"
    assert "is not shared" in info.error and str(cluster.root) in info.error


@pytest.mark.slow
def test_asha_stops_weak_trials_early_on_val_map(cluster):
    infos = _states(cluster.asha)
    lrs = {run_id: RunDir.at(infos[run_id].path).read_config().optim.lr for run_id in cluster.asha}
    stopped = [i for i in infos.values() if i.state == "stopped"]
    assert stopped, {i.run_id: (i.state, i.error) for i in infos.values()}
    assert all(lrs[i.run_id] in WEAK and i.epoch < ASHA["train.epochs"] and "ASHA" in i.error for i in stopped)
    assert all(i.state == "succeeded" for i in infos.values() if lrs[i.run_id] in STRONG)
    for info in stopped:  # its figures so far: the epoch selected on the val split
        val = {r["epoch"]: r["mAP"] for r in RunDir.at(info.path).read_metrics() if r.get("split") == "val"}
        assert info.selected_epoch == max((e for e in val if e > 0), key=lambda e: (val[e], -e))


@pytest.mark.slow
def test_demo_runs_succeed_with_complete_run_folders(cluster):
    infos = _states(cluster.demo)
    assert {i.state for i in infos.values()} == {"succeeded"}, {i.run_id: i.error for i in infos.values()}
    for info in infos.values():
        run = RunDir.at(info.path)
        for path in (run.config_path, run.status_path, run.metrics_path, run.eval_path, run.embeddings_path,
                     run.best_path, run.last_path, run.log_path):
            assert path.exists(), path
        assert info.backend == "ray" and info.final["mAP"] is not None and info.selected_epoch is not None
        assert run.read_eval().final.epoch == 2


@pytest.mark.slow
def test_optuna_search_runs_its_trials_with_sampled_values(cluster):
    infos = _states(cluster.search)
    assert {i.state for i in infos.values()} == {"succeeded"}, {i.run_id: i.error for i in infos.values()}
    configs = [RunDir.at(i.path).read_config() for i in infos.values()]
    assert all(1e-6 <= c.optim.lr <= 1e-4 and 0.1 <= c.loss.triplet.margin <= 0.6 for c in configs)
    assert len({c.optim.lr for c in configs}) == 4
    assert len({i.sweep_id for i in infos.values()}) == 1


@pytest.mark.slow
def test_the_dashboard_lists_the_ray_runs(cluster):
    from streamlit.testing.v1 import AppTest

    _states(cluster.demo)

    def app() -> None:
        from dashboard.app import main

        main("runs")

    at = AppTest.from_function(app, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[cluster.demo, "state"].tolist() == ["succeeded"] * 3


# without Ray

def test_nothing_imports_ray_without_the_ray_backend(tmp_path):
    code = ("import sys; from jobs.__main__ import main; main(['list', '--root', sys.argv[1]]); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("text, problem", [
    ("optim.lr=loguniform:0:1e-4", "LOW > 0"), ("optim.lr=normal:0:1", "expected KEY=DIST"),
    ("optim.lr=uniform:1:1", "LOW < HIGH"), ("train.epochs=int:1:2.5", "whole numbers"),
    ("optim.lr=uniform:a:1", "must be numbers"),
])
def test_a_bad_search_axis_is_refused_naming_it(text, problem):
    with pytest.raises(ConfigError, match=problem):
        tune.parse_space([text])


def test_search_checks_every_axis_at_both_ends_before_queueing(tmp_path, tiny):
    root = tmp_path / "checkpoints"
    options = tune.TuneOptions(search="optuna", trials=2, space=tune.parse_space(["optim.lr=uniform:-1:1e-4"]))
    with pytest.raises(ConfigError, match="optim.lr"):
        tune.search(DEMO, options, tiny, root=root, start_scheduler=False)
    options.space = tune.parse_space(["optim.nope=uniform:0:1"])
    with pytest.raises(ConfigError, match="optim.nope"):
        tune.search(DEMO, options, tiny, root=root, start_scheduler=False)
    assert api.list_runs(root, start_scheduler=False) == []


def test_early_stopping_needs_the_ray_backend(tmp_path, tiny):
    with pytest.raises(JobError, match="--backend ray"):
        api.sweep(DEMO, {"optim.lr": [1e-3]}, tiny, root=tmp_path, start_scheduler=False, backend="local",
                  tune=tune.TuneOptions(early_stop="asha"))
    with pytest.raises(ConfigError, match="--trials"):
        tune.TuneOptions(search="optuna")
    with pytest.raises(JobError, match="backend 'slurm'"):
        api.submit(DEMO, tiny, root=tmp_path, start_scheduler=False, backend="slurm")


def test_the_sweep_command_hands_tune_options_to_the_api(tmp_path, tiny):
    from jobs.__main__ import main

    sets = [arg for key, value in tiny.items() for arg in ("--set", f"{key}={value}")]
    base = ["sweep", "--root", str(tmp_path), "--config", DEMO, *sets]
    with pytest.raises(JobError, match="--backend ray"):
        main([*base, "--backend", "local", "--grid", "optim.lr=1e-3,1e-4", "--early-stop", "asha"])
    with pytest.raises(ConfigError, match="optim.nope"):
        main([*base, "--search", "optuna", "--trials", "2", "--space", "optim.nope=uniform:0:1"])
    with pytest.raises(ConfigError, match="not --grid"):
        main([*base, "--search", "optuna", "--trials", "2", "--space", "optim.lr=uniform:0:1", "--grid", "train.seed=1"])
    assert api.list_runs(tmp_path, start_scheduler=False) == []
