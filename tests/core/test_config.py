"""Presets, `base:` inheritance, overrides and one-line config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import flatten, from_flat, keys, load_config, to_dict
from core.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_presets_for_the_recipe():
    names = {p.stem for p in PRESETS}
    assert {"demo", "stage1_vitb16_11k", "stage1_lr1e-4", "stage1_lr5e-5", "stage1_lr5e-6", "stage1_adamw",
            "stage1_50ep", "stage1_256px", "stage1_label_smoothing", "stage1_hd", "stage1_rn50",
            "stage2_ce_triplet", "stage2_ce_center", "stage2_ce_triplet_center",
            "stage2_ce_triplet_center_arcface", "stage2_margin0.2", "stage2_margin0.5", "stage2_hard_mining",
            "stage2_pk"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_loads_and_names_itself(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_stage1_baseline_is_the_recipe():
    cfg = load_config(CONFIGS / "stage1_vitb16_11k.yaml")
    assert (cfg.data.dataset, cfg.data.root, cfg.data.protocol) == ("11k", "data/11k", "dorsal_r")
    assert (cfg.model.backbone, cfg.model.pretrained) == ("ViT-B-16", "openai")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.head_lr) == ("adam", 5e-6, 5e-4)
    assert cfg.loss.ce.weight == 1.0 and cfg.loss.triplet.weight == 0.0


def test_a_variant_changes_only_what_its_name_says():
    base = flatten(to_dict(load_config(CONFIGS / "stage2_ce_triplet.yaml")))
    variant = flatten(to_dict(load_config(CONFIGS / "stage2_margin0.2.yaml")))
    changed = {k for k in base if base[k] != variant[k]}
    assert changed == {"name", "loss.triplet.margin"}
    assert variant["loss.triplet.margin"] == 0.2
    assert variant["optim.lr"] == 5e-6  # inherited two levels up


def test_stage2_presets_combine_their_losses():
    cfg = load_config(CONFIGS / "stage2_ce_triplet_center_arcface.yaml")
    weights = {name: getattr(cfg.loss, name).weight for name in ("ce", "triplet", "center", "arcface", "i2t")}
    assert weights == {"ce": 1.0, "triplet": 1.0, "center": 5e-4, "arcface": 0.1, "i2t": 0.0}
    pk = load_config(CONFIGS / "stage2_pk.yaml").sampler
    assert (pk.kind, pk.p, pk.k) == ("pk", 16, 4)
    assert load_config(CONFIGS / "stage2_hard_mining.yaml").loss.triplet.mining == "batch_hard"


STAGE2 = [p for p in PRESETS if p.stem.startswith("stage2_")]


def _stage2_configs():
    """(where, Config) of every Stage 2 preset, every chain stage after the first and every sweep
    combination whose base preset is a Stage 2 one."""
    from jobs.sweeps import expand, load_chain_preset, load_sweep_preset

    out = [(p.stem, load_config(p)) for p in STAGE2]
    for chain in sorted((CONFIGS / "chains").glob("*.yaml")):
        for i, (config, overrides) in enumerate(load_chain_preset(chain).stages[1:], 2):
            out.append((f"{chain.stem} stage {i}", load_config(config, overrides)))
    for sweep in sorted((CONFIGS / "sweeps").glob("*.yaml")):
        preset = load_sweep_preset(sweep)
        if Path(preset.config).stem.startswith("stage2_"):
            out += [(f"{sweep.stem} {combo}", load_config(preset.config, {**preset.overrides, **combo}))
                    for combo in expand(preset.grid)]
    return out


def test_every_stage2_preset_chain_and_sweep_samples_pk_batches():
    found = _stage2_configs()
    assert len(found) >= len(STAGE2) + 3 + 8  # the presets, three chains' Stage 2, the losses sweep
    random = [where for where, cfg in found if cfg.sampler.kind != "pk"]
    assert random == []
    real = [(where, cfg.sampler.p * cfg.sampler.k) for where, cfg in found if cfg.data.dataset != "synthetic"]
    assert {size for _, size in real} == {64}


def test_stage2_base_follows_clip_reid_where_the_recipe_is_silent():
    cfg = load_config(CONFIGS / "stage2_base.yaml")
    assert (cfg.sampler.p, cfg.sampler.k, cfg.loss.ce.label_smoothing, cfg.optim.warmup_epochs) == (16, 4, 0.1, 10)
    assert "CLIP-ReID" in (CONFIGS / "stage2_base.yaml").read_text()


def test_prompt_presets_learn_prompts_that_a_loss_reads():
    from core.training.prompt_phase import check_prompts
    from jobs.sweeps import load_chain_preset

    for name in ("stage1_prompts", "stage2_i2t"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert (cfg.prompts.epochs, cfg.prompts.tokens, cfg.loss.i2t.weight) == (120, 4, 1.0)
        check_prompts(cfg)
    chain = load_chain_preset(CONFIGS / "chains" / "prompts_stage1_stage2.yaml")
    assert [Path(c).name for c, _ in chain.stages] == ["stage1_prompts.yaml", "stage2_i2t.yaml"]


def test_demo_is_cpu_sized_synthetic_data():
    cfg = load_config(CONFIGS / "demo.yaml")
    assert (cfg.data.dataset, cfg.data.root, cfg.model.backbone) == ("synthetic", "data/synthetic-11k", "HandID-Tiny")
    assert max(cfg.data.image_size) <= 128 and cfg.model.pretrained == ""


def test_overrides_win_over_the_preset_and_its_base():
    cfg = load_config(CONFIGS / "stage1_lr1e-4.yaml", ["optim.lr=2e-5", "data.image_size=224x288"])
    assert cfg.optim.lr == 2e-5
    assert cfg.data.image_size == (224, 288)


def test_base_is_resolved_relative_to_the_preset(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("train: {epochs: 7, batch_size: 16}\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../root.yaml\ntrain: {epochs: 3}\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml")
    assert (cfg.train.epochs, cfg.train.batch_size) == (3, 16)


def test_a_base_cycle_is_one_line_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as err:
        load_config(tmp_path / "a.yaml")
    assert "\n" not in str(err.value)


def test_a_missing_base_names_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize("override, expected", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'; valid keys: "),
    ("optim.name=rmsprop", "choose one of adam, adamw, sgd"),
    ("train.epochs=0", "train.epochs=0 is not valid; it must be positive"),
    ("augment.flip=1.5", "must lie in [0, 1]"),
    ("train.threads=-1", "must be zero or more"),
    ("data.synth_images_per_aspect=0", "must be positive"),
])
def test_bad_values_are_one_line_errors_saying_what_is_valid(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "demo.yaml", [override])
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_every_key_survives_a_round_trip_through_the_saved_form():
    cfg = load_config(CONFIGS / "stage2_ce_triplet_center_arcface.yaml")
    again = from_flat(flatten(to_dict(cfg)))
    assert again == cfg
    assert set(flatten(to_dict(cfg))) == set(keys())
