"""Damaged run folders: `jobs list` and `jobs show` list each with its problem, every other run as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import load_config, to_dict
from core.runs import RunDir
from jobs import api
from jobs.__main__ import main

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
GOOD_EVAL = {"final": {"epoch": 2, "test": {"rank1": 0.75, "mAP": 0.5}, "val": {}}}
# run id -> (file, bytes written over it, what `jobs list` says: state, a piece of the problem)
DAMAGE = {
    "status-list": ("status.json", b"[1, 2]", "damaged", "status.json: status must be a JSON object"),
    "status-empty": ("status.json", b"", "damaged", "status.json: not valid JSON"),
    "status-state": ("status.json", b'{"state": "exploded"}', "damaged", "status.json"),
    "eval-final": ("eval.json", b'{"final": "x"}', "damaged", "eval.json"),
    "eval-binary": ("eval.json", bytes(range(256)), "damaged", "eval.json"),
    "config-list": ("config.yaml", b"- 1\n- 2\n", "damaged", "config.yaml"),
    "eval-best": ("eval.json", b'{"best": "x"}', "succeeded", None),  # an unknown key: no results, no harm
    "metrics-binary": ("metrics.jsonl", bytes(range(256)) * 8, "succeeded", None),  # only the Run page reads it
    "embeddings-empty": ("embeddings.npz", b"", "succeeded", None),  # only the Errors/Embeddings pages read it
}


def finished_run(root: Path, run_id: str, created: float) -> RunDir:
    run = RunDir.at(root / run_id).create()
    run.write_config(to_dict(load_config(DEMO)))
    run.update_status(state="succeeded", name=run_id, epochs=2, epoch=2, created=created, ended=created + 1)
    run.eval_path.write_text(json.dumps(GOOD_EVAL))
    return run


@pytest.fixture
def damaged_root(root: Path) -> Path:
    finished_run(root, "good", 1.0)
    for i, (run_id, (name, data, _, _)) in enumerate(DAMAGE.items()):
        (finished_run(root, run_id, 10.0 + i).path / name).write_bytes(data)
    return root


def test_list_shows_every_run_and_each_damaged_one_with_its_problem(damaged_root):
    infos = {i.run_id: i for i in api.list_runs(damaged_root, start_scheduler=False)}
    assert set(infos) == {"good", *DAMAGE}
    assert (infos["good"].state, infos["good"].final) == ("succeeded", {"rank1": 0.75, "mAP": 0.5})
    for run_id, (name, _, expected, problem) in DAMAGE.items():
        info = infos[run_id]
        assert info.state == expected, (run_id, info.state, info.error)
        if problem:
            assert problem in info.error and str(damaged_root / run_id) in info.error and "\n" not in info.error


def test_an_empty_status_of_a_finished_run_is_not_listed_as_queued(damaged_root):
    assert api.get_run("status-empty", damaged_root).state == "damaged"


def test_the_cli_lists_and_shows_them_without_a_traceback(damaged_root, capsys):
    assert main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert sorted(r.split()[0] for r in rows) == sorted({"good", *DAMAGE})
    for run_id in ("good", *DAMAGE):
        assert main(["show", run_id]) == 0
        shown = capsys.readouterr().out
        assert f"run_id: {run_id}" in shown
    assert main(["list", "--json"]) == 0
    assert {r["run_id"]: r["state"] for r in json.loads(capsys.readouterr().out)}["status-list"] == "damaged"


def test_a_damaged_run_cannot_be_resumed_or_cancelled_but_says_why(damaged_root):
    from jobs.queue import JobError

    for call in (lambda: api.resume("status-list", damaged_root), lambda: api.cancel("status-list", damaged_root)):
        with pytest.raises(JobError) as caught:
            call()
        assert "status-list" in str(caught.value) and "\n" not in str(caught.value)
