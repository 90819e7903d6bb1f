from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jobs import api
from jobs.__main__ import main
from jobs.process import child_env
from jobs.queue import Queue

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True, env=child_env(),
                          timeout=120)


def test_bad_input_is_one_error_line_with_exit_code_2(root):
    for args in (["submit", "--config", DEMO, "--set", "loss.triplet.margin=-1"],
                 ["sweep", "--config", DEMO, "--grid", "optim.nope=1,2"],
                 ["sweep", "--config", DEMO, "--grid", "optim.lr="],
                 ["show", "20260101-000000-000000"],
                 ["show", "../other/20260101-000000-000000"],
                 ["submit", "--config", DEMO, "--set", "model.backbone=ViT-X-99"],
                 ["submit", "--config", DEMO, "--after", "20260101-000000-000000"]):
        done = _cli(*args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert Queue().all() == []


def test_list_show_and_cancel(root, capsys):
    first = api.submit(DEMO, {"train.epochs": 3}, name="alpha", start_scheduler=False)
    second = api.sweep(DEMO, {"optim.lr": [1e-3]}, start_scheduler=False)[0]
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["name"], r["state"]) for r in rows] == [(second, "demo lr=0.001", "queued"),
                                                                   (first, "alpha", "queued")]
    assert main(["list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "name", "state", "progress", "rank1", "mAP", "sel", "mAP", "sel", "epoch",
                                "created", "ended", "sweep"]
    assert first in table[2] and "0/3" in table[2]
    assert main(["cancel", first]) == 0
    assert main(["show", first]) == 0
    assert "state: cancelled" in capsys.readouterr().out.splitlines()


def test_a_whole_sweep_is_cancelled_at_once(root, capsys):
    ids = api.sweep(DEMO, {"optim.lr": [1e-3, 5e-4, 1e-4]}, start_scheduler=False)
    sweep_id = api.get_run(ids[0]).sweep_id
    assert main(["cancel", "--sweep", sweep_id]) == 0
    assert sorted(capsys.readouterr().out.split()) == sorted([f"{i}:" for i in ids] + ["cancelled"] * 3)
    assert {api.get_run(i).state for i in ids} == {"cancelled"}


def test_a_closed_pipe_is_not_an_error(root):
    api.submit(DEMO, start_scheduler=False)
    api.submit(DEMO, start_scheduler=False)
    done = subprocess.run(f"{sys.executable} -m jobs list | head -1", shell=True, capture_output=True, text=True,
                          env=child_env(), timeout=120)
    assert done.stdout.startswith("id ") and done.stderr == ""


def test_tag_and_note_set_the_run_folders_meta(root, capsys):
    run_id = api.submit(DEMO, name="alpha", start_scheduler=False)
    assert main(["tag", run_id, "--add", "baseline", "--add", "lr"]) == 0
    assert capsys.readouterr().out.strip() == "baseline, lr"
    assert main(["tag", run_id, "--remove", "baseline"]) == 0
    assert capsys.readouterr().out.strip() == "lr"
    assert main(["note", run_id, "the CE-only reference"]) == 0
    assert capsys.readouterr().out.strip() == f"{run_id}: note saved"
    info = api.get_run(run_id)
    assert (info.tags, info.note, info.state) == (["lr"], "the CE-only reference", "queued")
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["tags"] == ["lr"]
    done = _cli("tag", run_id, "--add", "a,b")
    assert done.returncode == 2 and done.stderr.startswith("error: tag 'a,b' is not valid")
