"""`python -m jobs study`: create (arms or a preset), list, show (text and --json), cancel, bad input;
and a real 2 arms x 3 seeds study of tiny demo runs whose `show --json` is computed again by hand."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from core.cli import run_cli
from core.errors import ConfigError
from core.runs import FINAL_STATES, RunDir
from jobs import api, study_runs
from jobs.__main__ import main
from jobs.queue import Queue
from jobs.studies import KEYS, SELECTED, to_csv, to_markdown
from tests.stats_by_hand import mean_std_ci, paired_by_hand
from tests.study_folders import DEMO, finish

RUN_S = 240  # generous bound for a tiny run on a busy 2-core machine
PRESET = str(Path(DEMO).parent / "studies" / "demo.yaml")


@pytest.fixture
def no_scheduler(monkeypatch):
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)


def created(capsys, *args: str) -> str:
    """Run `study create ARGS` in-process; the study id (its last line)."""
    assert main(["study", "create", *args]) == 0
    return capsys.readouterr().out.splitlines()[-1]


def test_create_list_show_and_cancel(root, capsys, no_scheduler):
    study_id = created(capsys, "lr", "--base", DEMO, "--arm", "base:", "--arm", "fast:optim.lr=0.01,train.epochs=2",
                       "--seeds", "2", "--set", "train.epochs=1", "--reference", "fast")
    study = study_runs.read_study(study_id)
    assert (study.name, study.reference, study.seeds, len(study.runs)) == ("lr", "fast", [0, 1], 4)
    assert study.arms == {"base": {}, "fast": {"optim.lr": 1e-2, "train.epochs": 2}}
    for run, value in zip(study.runs, (0.40, 0.45, 0.42, 0.46)):
        finish(RunDir.at(root / run["run_id"]), value)
    assert main(["study", "show", study_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == study_runs.summary(study)
    assert main(["study", "show", study_id]) == 0
    text = capsys.readouterr().out
    assert "| fast | 2 | 0 | 0 |" in text and "No detectable difference between base and fast in mAP" in text
    assert main(["study", "show", study_id, "--csv", "comparisons"]) == 0
    assert capsys.readouterr().out == to_csv(study_runs.summary(study), "comparisons")
    assert main(["study", "show", study_id, "--markdown", "arms"]) == 0
    assert capsys.readouterr().out == to_markdown(study_runs.summary(study), "arms")
    assert main(["study", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:5] == [study_id, "lr", "2", "2", "4/4"]
    assert main(["study", "cancel", study_id]) == 0
    assert capsys.readouterr().out.splitlines() == ["0 runs cancelled or stopping; runs already ended are kept"]


def test_create_from_a_preset_with_fewer_seeds_and_pending_runs_listed(root, capsys, no_scheduler):
    study_id = created(capsys, "--preset", PRESET, "--seeds", "2", "--set", "train.epochs=1")
    study = study_runs.read_study(study_id)
    assert (study.name, list(study.arms), study.seeds) == ("demo_study", ["CE", "CE+triplet"], [0, 1])
    assert study.overrides == {"loss.center.weight": 0.0, "train.epochs": 1}
    assert main(["study", "show", study_id]) == 0
    assert "CE+triplet: 2 queued or running (left out): " in capsys.readouterr().out
    assert main(["study", "cancel", study_id]) == 0
    assert capsys.readouterr().out.count(": cancelled") == 4
    assert {api.get_run(r["run_id"]).state for r in study.runs} == {"cancelled"}


@pytest.mark.parametrize("args, needle", [
    (["x", "--base", DEMO, "--arm", "CE:", "--arm", "TRI:loss.triplet.wieght=1", "--seeds", "2"],
     "arm 'TRI': unknown config key 'loss.triplet.wieght'"),
    (["x", "--base", DEMO, "--arm", "CE:"], "needs NAME, --arm"),
    (["--preset", PRESET, "--arm", "CE:"], "either --preset or --base"),
    (["x", "--base", DEMO, "--arm", "CE:", "--seeds", "2", "--set", "train.seed=3"], "--set train.seed=3 conflicts"),
])
def test_bad_studies_queue_nothing(root, args, needle):
    with pytest.raises(ConfigError, match=needle):
        main(["study", "create", *args])
    assert Queue().all() == [] and study_runs.list_studies() == []


@pytest.mark.parametrize("args, start", [
    (["create", "x", "--base", DEMO, "--arm", "CE", "--seeds", "2"], "error: --arm 'CE' is not valid"),
    (["show", "../queue"], "error: '../queue' is not a study id"),
    (["cancel", "study-none"], "error: no study study-none in "),
])
def test_bad_input_is_one_error_line_with_exit_code_2(root, capsys, args, start):
    with pytest.raises(SystemExit) as done:
        run_cli(main, ["study", *args])
    stderr = capsys.readouterr().err
    assert done.value.code == 2 and stderr.startswith(start) and stderr.count("\n") == 1, stderr


# a real study

def hand_summary(values: list[float]) -> dict:
    mean, std, ci = mean_std_ci(values) if statistics.pstdev(values) else (values[0], 0.0, [values[0]] * 2)
    return {"n": len(values), "mean": mean, "std": std, "ci95": ci, "values": values}


def hand_paired(a: list[float], b: list[float]) -> dict:
    diffs = [x - y for x, y in zip(a, b)]
    if statistics.pstdev(diffs) == 0:  # the documented limits of a spread of 0
        return {"diff": diffs[0], "ci95": [diffs[0]] * 2, "p": 1.0 if diffs[0] == 0 else 0.0, "n_pairs": len(a)}
    return paired_by_hand(a, b)


def by_hand(root: Path, study: dict) -> dict:
    """Arms' figures and the comparison of TRI with CE, from each run's eval.json read as plain JSON."""
    def value(run_id: str, key: str) -> float:
        record = json.loads((root / run_id / "eval.json").read_text())
        section = "selected" if key.startswith(SELECTED) else "final"
        return record[section]["test"][key.removeprefix(SELECTED)]
    runs = {arm: [r["run_id"] for r in sorted(study["runs"], key=lambda r: r["seed"]) if r["arm"] == arm]
            for arm in ("CE", "TRI")}
    arms = {arm: {key: hand_summary([value(i, key) for i in ids]) for key in KEYS} for arm, ids in runs.items()}
    comparisons = {key: hand_paired([value(i, key) for i in runs["TRI"]], [value(i, key) for i in runs["CE"]])
                   for key in KEYS}
    return {"runs": runs, "arms": arms, "comparisons": comparisons}


def close(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.slow
def test_a_study_of_two_arms_and_three_seeds_runs_and_shows_what_a_hand_computation_gives(
        root, tiny, wait_for, monkeypatch, capsys):
    monkeypatch.setenv("HANDID_CPU_SLOTS", "3")  # the runs' time is mostly imports: 3 at once on 2 cores is fastest
    sets = [arg for key, value in tiny.items() for arg in ("--set", f"{key}={value}")]
    study_id = created(capsys, "cli", "--base", DEMO, "--arm", "CE:loss.triplet.weight=0",
                       "--arm", "TRI:loss.triplet.weight=1", "--seeds", "3", *sets)
    study = json.loads((root / "studies" / f"{study_id}.json").read_text())
    ids = [r["run_id"] for r in study["runs"]]
    infos = [wait_for(lambda i=i: (info := api.get_run(i)).state in FINAL_STATES and info, 3 * RUN_S,
                      "the study's runs to end") for i in ids]
    assert [i.state for i in infos] == ["succeeded"] * 6, [i.error for i in infos]
    assert main(["study", "show", study_id, "--json"]) == 0
    summary, hand = json.loads(capsys.readouterr().out), by_hand(root, study)
    for arm in ("CE", "TRI"):
        assert summary["arms"][arm]["runs"] == hand["runs"][arm] and summary["arms"][arm]["n"] == 3
        for key in KEYS:
            got, want = summary["arms"][arm]["metrics"][key], hand["arms"][arm][key]
            assert got["n"] == 3 and all(close(got[k], want[k]) for k in ("mean", "std", "ci95", "values")), key
    for comparison in summary["comparisons"]:
        want = hand["comparisons"][comparison["metric"]]
        assert (comparison["arm"], comparison["reference"], comparison["n_pairs"]) == ("TRI", "CE", 3)
        assert all(close(comparison[k], want[k]) for k in ("diff", "ci95", "p")), comparison["metric"]
        assert comparison["p_holm"] == comparison["p"]  # one comparison per metric: Holm changes nothing
