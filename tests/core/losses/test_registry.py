"""The loss registry's contract, run over every registered loss (as timm's tests run over every model
name), and a throwaway loss registered by a test reaching config validation and the loss set."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from core.config import LossConfig, knob, load_config
from core.errors import ConfigError
from core.losses import registry
from core.losses.base import Loss
from core.losses.combined import LossSet

CLASSES, DIM = 4, 8
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def outputs(seed: int = 0) -> dict[str, torch.Tensor]:
    """Every model output a loss may read, as leaves with gradients."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"feat": (8, DIM), "feat_bn": (8, DIM), "logits": (8, CLASSES), "text_logits": (8, CLASSES)}
    return {k: torch.randn(*shape, generator=gen).requires_grad_(True) for k, shape in shapes.items()}


def only(name: str, weight: float = 0.7):
    section = LossConfig()
    for other in registry.entries():
        getattr(section, other).weight = 0.0
    getattr(section, name).weight = weight
    return section


def test_the_recipe_losses_are_registered_in_display_order():
    assert list(registry.entries())[:5] == ["ce", "i2t", "triplet", "center", "arcface"]
    assert registry.label("ce") == "Cross-entropy" and registry.label("loss") == "loss"


@pytest.mark.parametrize("name", list(registry.entries()))
def test_every_loss_forward_backward_on_what_it_reads(name):
    losses = LossSet(only(name), CLASSES, DIM)
    out = outputs()
    total, parts = losses(out, LABELS)
    assert set(parts) == {name} and torch.isfinite(total)
    assert total.item() == pytest.approx(0.7 * parts[name].item(), rel=1e-6)
    total.backward()
    read = losses.components[name].reads
    assert out[read].grad is not None and out[read].grad.abs().sum() > 0
    assert all(out[k].grad is None for k in out if k != read)


@pytest.mark.parametrize("name", list(registry.entries()))
def test_every_loss_trains_its_own_parameters(name):
    losses = LossSet(only(name), CLASSES, DIM)
    own = list(losses.parameters())
    groups, separate = losses.param_groups(head_lr=0.1), losses.own_optimizers()
    grouped = {id(p) for g in groups for p in g["params"]}
    apart = {id(p) for opt in separate.values() for g in opt.param_groups for p in g["params"]}
    assert {id(p) for p in own} == grouped | apart and not grouped & apart  # each parameter has one optimizer
    if not own:
        return
    before = [p.detach().clone() for p in own]
    main = torch.optim.SGD(groups) if groups else None
    total, _ = losses(outputs(), LABELS)
    total.backward()
    if main:
        main.step()
    losses.step_own(separate)
    assert any(not torch.equal(b, p) for b, p in zip(before, own))


@pytest.mark.parametrize("name", list(registry.entries()))
def test_weight_zero_leaves_a_loss_out(name):
    other = next(n for n in registry.entries() if n != name)
    section = only(other)
    getattr(section, name).weight = 0.0
    assert set(LossSet(section, CLASSES, DIM).components) == {other}


def test_a_missing_model_output_is_one_line_error():
    losses = LossSet(only("i2t"), CLASSES, DIM)
    with pytest.raises(ConfigError, match="loss.i2t.weight > 0 needs the model output 'text_logits'"):
        losses({"feat": torch.zeros(8, DIM), "text_logits": None}, LABELS)


@dataclass
class NormConfig:
    weight: float = knob(0.0, check="non_negative")
    power: float = knob(2.0, check="positive", label="power")


class FeatureNorm(Loss):
    """A throwaway loss: the mean feature norm to a power."""

    reads = "feat"

    def forward(self, outputs, labels):
        return outputs[self.reads].norm(dim=1).pow(self.cfg.power).mean()


@pytest.fixture
def throwaway():
    registry.register("feature_norm", "Feature norm", NormConfig)(FeatureNorm)
    yield "feature_norm"
    registry._ENTRIES.pop("feature_norm")


def test_a_registered_loss_is_a_config_section_with_its_checks(throwaway):
    cfg = load_config(None, {"loss.feature_norm.weight": 0.5, "loss.feature_norm.power": 3})
    assert (cfg.loss.feature_norm.weight, cfg.loss.feature_norm.power) == (0.5, 3.0)
    with pytest.raises(ConfigError, match="loss.feature_norm.power=0.0 is not valid; it must be positive"):
        load_config(None, {"loss.feature_norm.power": 0})
    losses = LossSet(cfg.loss, CLASSES, DIM)
    total, parts = losses({"feat": torch.ones(8, DIM), "logits": torch.zeros(8, CLASSES)}, LABELS)
    assert parts["feature_norm"].item() == pytest.approx(8 ** 1.5)
