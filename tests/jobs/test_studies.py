"""Studies as data: arm parsing, definitions, expansion, presets, aggregation of constructed run
records against hand computations (tests/stats_by_hand.py), exports, identical sweep results."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config, load_config
from core.errors import ConfigError
from core.stats import sentence
from jobs.studies import (KEYS, METRICS, Study, aggregate, check_configs, expand, identical_results,
                          load_study_preset, new_study, parse_arm, to_csv, to_markdown)
from tests.stats_by_hand import mean_std_ci, paired_by_hand
from tests.study_folders import figures, seeded_values

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEMO = str(CONFIGS / "demo.yaml")


# definitions

def test_parse_arm_reads_yaml_scalars_and_keeps_bracketed_lists_whole():
    assert parse_arm("CE+triplet:loss.triplet.weight=1,loss.triplet.margin=0.2, optim.name=adamw") == (
        "CE+triplet", {"loss.triplet.weight": 1, "loss.triplet.margin": 0.2, "optim.name": "adamw"})
    assert parse_arm("tall:data.image_size=[256,128],train.amp=false") == (
        "tall", {"data.image_size": [256, 128], "train.amp": False})
    assert parse_arm("CE:") == ("CE", {})
    assert parse_arm(" base : ") == ("base", {})


@pytest.mark.parametrize("text, needle", [
    ("CE", "expected LABEL:KEY=VALUE"),
    (":loss.ce.weight=1", "empty label"),
    ("CE:loss.ce.weight", "is not KEY=VALUE"),
    ("CE:=1", "is not KEY=VALUE"),
    ("CE:optim.lr=1e-4,optim.lr=5e-5", "optim.lr is set twice"),
])
def test_bad_arms_are_one_line_config_errors(text, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        parse_arm(text)
    assert "\n" not in str(err.value)


def make(arms=(("CE", {}), ("TRI", {"loss.triplet.weight": 1.0})), seeds=3, **kwargs) -> Study:
    return new_study("s", DEMO, list(arms), seeds, **kwargs)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(arms=[("CE", {}), ("CE", {"optim.lr": 1})]), "arm label 'CE' is given twice"),
    (dict(arms=[("CE", {"train.seed": 3})]), "arm 'CE' sets train.seed"),
    (dict(arms=[("CE", {"eval.seed": 3})]), "arm 'CE' sets eval.seed; every arm must see the same"),
    (dict(overrides={"train.seed": 1}), "--set train.seed=1 conflicts"),
    (dict(seeds=0), "--seeds 0 is not valid"),
    (dict(seeds=[1, 1]), "distinct seeds"),
    (dict(seeds=[0, "x"]), "seeds are whole numbers"),
    (dict(reference="nope"), "reference arm 'nope' is not one of the arms: CE, TRI"),
    (dict(arms=[]), "has no arms"),
    (dict(arms=[(" ", {})]), "empty label"),
])
def test_bad_studies_are_one_line_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        make(**kwargs)
    assert "\n" not in str(err.value)


def test_new_study_defaults_and_json_round_trip():
    study = make(overrides={"train": {"epochs": 2}})
    assert study.id.startswith("study-") and study.reference == "CE" and study.seeds == [0, 1, 2]
    assert study.overrides == {"train.epochs": 2} and study.created is not None
    assert Study.from_json(json.loads(json.dumps(study.to_json()))) == study


def test_expand_goes_seed_by_seed_and_arms_override_the_study_set():
    study = make(seeds=[4, 7], overrides={"loss.triplet.weight": 0.0, "train.epochs": 2})
    assert expand(study) == [
        ("CE", 4, {"loss.triplet.weight": 0.0, "train.epochs": 2, "train.seed": 4}),
        ("TRI", 4, {"loss.triplet.weight": 1.0, "train.epochs": 2, "train.seed": 4}),
        ("CE", 7, {"loss.triplet.weight": 0.0, "train.epochs": 2, "train.seed": 7}),
        ("TRI", 7, {"loss.triplet.weight": 1.0, "train.epochs": 2, "train.seed": 7}),
    ]


def test_check_configs_names_the_arm_with_a_bad_key():
    with pytest.raises(ConfigError, match=r"^arm 'TRI': unknown config key 'loss.triplet.wieght'"):
        check_configs(make(arms=[("CE", {}), ("TRI", {"loss.triplet.wieght": 1})]))


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFIGS / "studies").glob("*.yaml")))
def test_shipped_study_presets_load_and_every_arm_is_a_valid_config(name):
    study = load_study_preset(CONFIGS / "studies" / name)
    check_configs(study)  # load_config(base, overrides) of every arm; real datasets need only load
    assert 3 <= len(study.seeds) <= 5 and study.reference == next(iter(study.arms))
    assert len(expand(study)) == len(study.arms) * len(study.seeds)


def test_shipped_presets_cover_the_tables_of_things_to_try():
    assert {p.name for p in (CONFIGS / "studies").glob("*.yaml")} >= {
        "demo.yaml", "stage1_things_to_try.yaml", "stage2_things_to_try.yaml"}
    demo = load_study_preset(CONFIGS / "studies" / "demo.yaml")
    assert list(demo.arms) == ["CE", "CE+triplet"] and demo.seeds == [0, 1, 2]
    stage2 = load_study_preset(CONFIGS / "studies" / "stage2_things_to_try.yaml")
    assert all(c.sampler.kind == "pk" and (c.sampler.p, c.sampler.k) == (16, 4)
               for c in (_config(stage2, arm) for arm in stage2.arms if "random" not in arm))


def _config(study: Study, arm: str) -> Config:
    return load_config(study.config, {**study.overrides, **study.arms[arm]})


@pytest.mark.parametrize("text, needle", [
    ("config: configs/demo.yaml\nseeds: 3\n", "expected `arms:`"),
    ("config: configs/demo.yaml\narms: {CE: }\n", "expected `seeds:`"),
    ("config: configs/demo.yaml\narms: {CE: [1]}\nseeds: 3\n", "expected `arms:`"),
    ("config: configs/nope.yaml\narms: {CE: }\nseeds: 3\n", "config file not found"),
])
def test_bad_study_presets_are_one_line_config_errors(tmp_path, text, needle):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle) as err:
        load_study_preset(path)
    assert "\n" not in str(err.value)


# aggregation

def record(run_id, arm, seed, state="succeeded", final=None, selected=None):
    return {"run_id": run_id, "arm": arm, "seed": seed, "state": state, "final": final, "selected": selected}


MAPS = {  # arm -> seed -> mAP of the final epoch (selected: 0.01 lower)
    "CE": {0: 0.40, 1: 0.43, 2: 0.41},
    "TRI": {0: 0.45, 1: 0.47, 2: 0.44},
    "CEN": {0: 0.42, 1: 0.42},
}


def three_arm_runs() -> list[dict]:
    """Seeds 0-3: CE and TRI succeed on 0-2 (3 pending), CEN on 0-1 (2 failed, 3 cancelled); shuffled."""
    runs = [record(f"{arm}-{seed}", arm, seed, final=figures(v), selected=figures(v - 0.01))
            for arm, by_seed in MAPS.items() for seed, v in by_seed.items()]
    runs += [record("CE-3", "CE", 3, "running"), record("TRI-3", "TRI", 3, "queued"),
             record("CEN-2", "CEN", 2, "failed"), record("CEN-3", "CEN", 3, "cancelled")]
    return runs[::-1]


def hand_summary(values):
    if len(values) == 1:
        return {"n": 1, "mean": values[0], "std": None, "ci95": None, "values": values}
    mean, std, ci = mean_std_ci(values)
    return {"n": len(values), "mean": mean, "std": std, "ci95": ci, "values": values}


def hand_expected(study: Study) -> dict:
    """The whole summary, by hand: t-intervals per arm, paired tests on common seeds, Holm of two."""
    shift = {"rank1": 0.05, "mAP": 0.0, "mAP_trapezoid": 0.025, "mINP": 0.0}
    def value(arm, seed, key):
        metric = key.removeprefix("selected_")
        return MAPS[arm][seed] + shift[metric] - (0.01 if key.startswith("selected_") else 0.0)
    arms = {arm: {"n": len(MAPS[arm]), "seeds": list(MAPS[arm]), "runs": [f"{arm}-{s}" for s in MAPS[arm]],
                  "failed": [], "pending": [], "stopped": [],
                  "metrics": {k: {**hand_summary([value(arm, s, k) for s in MAPS[arm]]), "seeds": list(MAPS[arm])}
                              for k in KEYS}} for arm in MAPS}
    arms["CE"]["pending"], arms["TRI"]["pending"] = ["CE-3"], ["TRI-3"]
    arms["CEN"]["failed"] = ["CEN-3", "CEN-2"]  # in the order the records came
    comparisons = []
    for key in KEYS:
        rows = []
        for arm in ("TRI", "CEN"):
            seeds = list(MAPS[arm])
            a, b = [value(arm, s, key) for s in seeds], [value("CE", s, key) for s in seeds]
            rows.append({"arm": arm, "reference": "CE", "metric": key, **paired_by_hand(a, b), "seeds": seeds,
                         "diffs": [x - y for x, y in zip(a, b)]})
        low, high = sorted(rows, key=lambda r: r["p"])
        low["p_holm"] = min(1.0, 2 * low["p"])
        high["p_holm"] = min(1.0, max(low["p_holm"], high["p"]))
        comparisons += rows
    return {"id": study.id, "name": study.name, "reference": "CE", "seeds": [0, 1, 2, 3], "arms": arms,
            "comparisons": comparisons}


def rounded(obj, digits=10):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj


def test_aggregate_equals_a_hand_computation():
    study = make(arms=[("CE", {}), ("TRI", {}), ("CEN", {})], seeds=4)
    out = aggregate(study, three_arm_runs())
    json.dumps(out, allow_nan=False)
    assert rounded(out) == rounded(hand_expected(study))


def test_failed_and_pending_runs_are_listed_and_left_out():
    out = aggregate(make(arms=[("CE", {}), ("TRI", {}), ("CEN", {})], seeds=4), three_arm_runs())
    assert out["arms"]["CE"]["pending"] == ["CE-3"] and out["arms"]["CE"]["runs"] == ["CE-0", "CE-1", "CE-2"]
    assert out["arms"]["CEN"]["failed"] == ["CEN-3", "CEN-2"] and out["arms"]["CEN"]["metrics"]["mAP"]["n"] == 2
    cen = next(c for c in out["comparisons"] if c["arm"] == "CEN" and c["metric"] == "mAP")
    assert cen["n_pairs"] == 2 and cen["seeds"] == [0, 1]


def test_a_run_without_selected_figures_leaves_only_those_keys():
    study = make(seeds=2)
    runs = [record("a0", "CE", 0, final=figures(0.4), selected=figures(0.39)),
            record("a1", "CE", 1, final=figures(0.5)),
            record("b0", "TRI", 0, final=figures(0.45), selected=figures(0.44)),
            record("b1", "TRI", 1, final=figures(0.52), selected={"mAP": float("nan")})]
    out = aggregate(study, runs)
    json.dumps(out, allow_nan=False)
    assert out["arms"]["CE"]["metrics"]["mAP"]["seeds"] == [0, 1]
    assert out["arms"]["CE"]["metrics"]["selected_mAP"]["seeds"] == [0]
    assert out["arms"]["TRI"]["metrics"]["selected_mAP"]["values"] == [0.44]
    by_key = {c["metric"]: c for c in out["comparisons"]}
    assert by_key["mAP"]["n_pairs"] == 2 and by_key["selected_mAP"]["n_pairs"] == 1
    assert by_key["selected_mAP"]["ci95"] is None and by_key["selected_mAP"]["p_holm"] is None


def seeded_study_runs(effect: float, seeds: int = 5, seed: int = 0) -> tuple[Study, list[dict]]:
    """Two arms over seeds (tests.study_folders.seeded_values): `effect` is the true difference."""
    runs = [record(f"{arm}-{s}", arm, s, final=figures(v), selected=figures(v))
            for arm, by_seed in seeded_values(effect, seeds, seed).items() for s, v in by_seed.items()]
    return make(arms=[("CE", {}), ("TRI", {})], seeds=seeds), runs


def test_arms_that_truly_differ_give_p_below_005():
    study, runs = seeded_study_runs(effect=0.03)
    comparison = next(c for c in aggregate(study, runs)["comparisons"] if c["metric"] == "mAP")
    assert comparison["p"] < 0.05 and comparison["ci95"][0] > 0 and comparison["n_pairs"] == 5
    assert sentence("TRI", "CE", "mAP", comparison).startswith("TRI beats CE by +0.0")


def test_identical_arms_give_an_interval_spanning_zero():
    study, runs = seeded_study_runs(effect=0.0)
    runs = [r for r in runs if r["arm"] == "CE"]
    runs += [{**r, "run_id": r["run_id"] + "-copy", "arm": "TRI"} for r in runs]
    for comparison in aggregate(study, runs)["comparisons"]:
        assert comparison["ci95"][0] <= 0 <= comparison["ci95"][1]
        assert comparison["p"] == 1.0 and comparison["p_holm"] == 1.0
        assert sentence("TRI", "CE", comparison["metric"], comparison).startswith("No detectable difference")


@pytest.mark.parametrize("bad, needle", [
    (record("x", "NOPE", 0), "arm 'NOPE' seed 0 is not part of study"),
    (record("x", "CE", 9), "arm 'CE' seed 9 is not part of study"),
    (record("x", "CE", 0, final=figures(0.4)), "runs CE-0 and x both succeeded as arm 'CE' seed 0"),
])
def test_aggregate_rejects_records_outside_the_study(bad, needle):
    study, runs = seeded_study_runs(effect=0.0, seeds=3)
    with pytest.raises(ValueError, match=needle):
        aggregate(study, [*runs, bad])


# export

def test_csv_holds_the_summary_numbers():
    study = make(arms=[("CE", {}), ("TRI", {}), ("CEN", {})], seeds=4)
    out = aggregate(study, three_arm_runs())
    arms = pd.read_csv(io.StringIO(to_csv(out)))
    assert len(arms) == 3 * len(KEYS)
    row = arms[(arms.arm == "TRI") & (arms.metric == "mAP")].iloc[0]
    assert (row["n"], row["failed"], row["pending"]) == (3, 0, 1)
    assert row["mean"] == out["arms"]["TRI"]["metrics"]["mAP"]["mean"]
    assert row["ci95_hi"] == out["arms"]["TRI"]["metrics"]["mAP"]["ci95"][1]
    comparisons = pd.read_csv(io.StringIO(to_csv(out, "comparisons", metrics=["mAP"])))
    assert list(comparisons.arm) == ["TRI", "CEN"] and list(comparisons.n_pairs) == [3, 2]
    assert comparisons.p_holm.tolist() == [c["p_holm"] for c in out["comparisons"] if c["metric"] == "mAP"]


def test_markdown_tables():
    study = make(seeds=2)
    runs = [record("a0", "CE", 0, final={"mAP": 0.40}), record("a1", "CE", 1, final={"mAP": 0.42}),
            record("b0", "TRI", 0, final={"mAP": 0.45}), record("b1", "TRI", 1, "failed")]
    out = aggregate(study, runs)
    ci = mean_std_ci([0.40, 0.42])[2]
    assert to_markdown(out) == (
        "| arm | n | failed | pending | mAP |\n|---|---|---|---|---|\n"
        f"| CE | 2 | 0 | 0 | 0.410 [{ci[0]:.3f}, {ci[1]:.3f}] |\n| TRI | 1 | 1 | 0 | 0.450 |\n")
    assert to_markdown(out, "comparisons", metrics=["mAP"]) == (
        "| arm | reference | metric | diff | 95% CI | p | Holm p | pairs |\n|---|---|---|---|---|---|---|---|\n"
        "| TRI | CE | mAP | +0.050 | – | – | – | 1 |\n")
    with pytest.raises(ValueError, match="expected one of arms, comparisons"):
        to_csv(out, "runs")


# sweeps

def test_identical_results_groups_bit_identical_runs():
    same = {"rank1": 0.5, "mAP": 0.41}
    runs = [{"run_id": "m0.2", "final": same, "loss": [2.0, 1.5]},
            {"run_id": "m0.3", "final": dict(same), "loss": [2.0, 1.4]},
            {"run_id": "m0.5", "final": dict(same), "loss": [2.0, 1.5]},
            {"run_id": "other", "final": {"rank1": 0.5, "mAP": 0.41 + 1e-12}},
            {"run_id": "running", "final": None}, {"run_id": "also-running", "final": None}]
    assert identical_results(runs) == [["m0.2", "m0.3", "m0.5"]]
    assert identical_results(runs, with_loss=True) == [["m0.2", "m0.5"]]
    assert identical_results([{**runs[0], "selected": {"mAP": 0.3}}, runs[1]]) == []


def test_metric_keys():
    assert METRICS == ("rank1", "mAP", "mAP_trapezoid", "mINP")
    assert KEYS[4:] == ("selected_rank1", "selected_mAP", "selected_mAP_trapezoid", "selected_mINP")
