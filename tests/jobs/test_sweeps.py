from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.errors import ConfigError
from jobs.sweeps import expand, label, load_chain_preset, load_sweep_preset, parse_grid

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_grid_strings_parse_as_yaml_scalars():
    grid = parse_grid(["optim.lr=1e-4, 5e-5,5e-6", "loss.triplet.margin=0.2,0.5", "optim.name=adam"])
    assert grid == {"optim.lr": ["1e-4", "5e-5", "5e-6"], "loss.triplet.margin": [0.2, 0.5], "optim.name": ["adam"]}


@pytest.mark.parametrize("item", ["optim.lr=", "optim.lr", "optim.lr=,"])
def test_grid_without_values_is_one_line_error(item):
    with pytest.raises(ConfigError) as err:
        parse_grid([item])
    assert "\n" not in str(err.value)


def test_expand_is_the_product_last_key_fastest():
    combos = expand({"optim.lr": [1, 2], "optim.name": ["adam", "sgd"]})
    assert combos == [{"optim.lr": 1, "optim.name": "adam"}, {"optim.lr": 1, "optim.name": "sgd"},
                      {"optim.lr": 2, "optim.name": "adam"}, {"optim.lr": 2, "optim.name": "sgd"}]


def test_label_shortens_keys_unless_their_last_part_repeats():
    assert label({"optim.lr": "1e-4", "loss.triplet.margin": 0.2}) == "lr=1e-4 margin=0.2"
    assert label({"loss.triplet.weight": 1.0, "loss.center.weight": 0.0, "optim.lr": 1}) == \
        "loss.triplet.weight=1.0 loss.center.weight=0.0 lr=1"


def test_shipped_sweep_presets_expand_to_valid_configs():
    stage1 = load_sweep_preset(CONFIGS / "sweeps" / "stage1_variants.yaml")
    stage2 = load_sweep_preset(CONFIGS / "sweeps" / "stage2_losses.yaml")
    assert len(expand(stage1.grid)) == 6 and len(expand(stage2.grid)) == 8
    for preset in (stage1, stage2):
        for combo in expand(preset.grid):
            cfg = load_config(preset.config, {**preset.overrides, **combo})
            assert cfg.model.backbone == "ViT-B-16"
    assert {load_config(stage1.config, c).optim.lr for c in expand(stage1.grid)} == {1e-4, 5e-5, 5e-6}


def test_shipped_chain_presets_name_existing_configs():
    recipe = load_chain_preset(CONFIGS / "chains" / "stage1_stage2.yaml")
    demo = load_chain_preset(CONFIGS / "chains" / "demo.yaml")
    assert [Path(c).name for c, _ in recipe.stages] == ["stage1_vitb16_11k.yaml", "stage2_ce_triplet_center.yaml"]
    assert [Path(c).name for c, _ in demo.stages] == ["demo.yaml", "demo.yaml"]
    first, second = (load_config(c, o) for c, o in demo.stages)
    assert first.loss.triplet.weight == 0 and second.loss.triplet.weight > 0


def test_preset_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: configs/demo.yaml\ngrid: {optim.lr: []}\n")
    with pytest.raises(ConfigError, match="optim.lr"):
        load_sweep_preset(bad)
    bad.write_text("config: nowhere.yaml\ngrid: {optim.lr: [1]}\n")
    with pytest.raises(ConfigError, match="bad.yaml: config file not found: nowhere.yaml"):
        load_sweep_preset(bad)
    bad.write_text("stages: []\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_chain_preset(bad)
