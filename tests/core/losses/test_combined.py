import math

import pytest
import torch

from core.config import LossConfig
from core.errors import ConfigError
from core.losses.combined import LossSet


def _cfg(**weights: float) -> LossConfig:
    cfg = LossConfig()
    cfg.ce.weight = 0.0
    for name, weight in weights.items():
        getattr(cfg, name).weight = weight
    return cfg


def test_only_weighted_components_exist():
    assert set(LossSet(LossConfig(), 3, 2).components) == {"ce"}
    both = LossSet(_cfg(triplet=1.0, center=0.5), 3, 2)
    assert set(both.components) == {"triplet", "center"}
    assert both.param_groups(0.1) == [] and LossSet(LossConfig(), 3, 2).center_parameters() == []


def test_cross_entropy_with_label_smoothing_matches_formula():
    cfg = _cfg(ce=1.0)
    cfg.ce.label_smoothing = 0.1
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    total, values = LossSet(cfg, 3, 2)({"logits": logits}, torch.tensor([0]))
    log_z = math.log(math.exp(2) + 1 + math.exp(-1))
    nll = [log_z - 2, log_z, log_z + 1]
    expected = 0.9 * nll[0] + 0.1 * sum(nll) / 3
    assert values == {"ce": pytest.approx(expected)}
    assert total.item() == pytest.approx(expected)


def test_i2t_uses_text_logits_and_needs_them():
    losses = LossSet(_cfg(i2t=1.0), 2, 2)
    _, values = losses({"text_logits": torch.tensor([[0.0, math.log(3)]])}, torch.tensor([1]))
    assert values["i2t"] == pytest.approx(-math.log(3 / 4))
    with pytest.raises(ConfigError, match="loss.i2t.weight > 0 needs the text-prompt classifier"):
        losses({"text_logits": None}, torch.tensor([1]))


def test_batch_hard_triplet_on_normalised_features():
    cfg = _cfg(triplet=1.0)
    cfg.triplet.margin = 0.3
    feat = torch.tensor([[3.0, 0.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 0.0]])  # unit directions after L2 norm
    _, values = LossSet(cfg, 2, 2)({"feat": feat}, torch.tensor([0, 0, 1, 1]))
    # Hardest positive / negative distances per anchor; anchors 0 and 3 satisfy the margin.
    anchor1 = math.sqrt(0.8) - math.sqrt(0.4) + 0.3
    anchor2 = math.sqrt(2.0) - math.sqrt(0.4) + 0.3
    assert values["triplet"] == pytest.approx((anchor1 + anchor2) / 2, rel=1e-5)


@pytest.mark.parametrize("mining", ["semihard", "all"])
def test_other_miners_give_finite_losses(mining):
    cfg = _cfg(triplet=1.0)
    cfg.triplet.mining = mining
    feat = torch.randn(8, 4, requires_grad=True)
    total, _ = LossSet(cfg, 4, 4)({"feat": feat}, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    total.backward()
    assert torch.isfinite(total) and feat.grad is not None


def test_arcface_margin_in_radians_and_value():
    cfg = _cfg(arcface=1.0)
    cfg.arcface.margin, cfg.arcface.scale = 0.5, 30.0
    losses = LossSet(cfg, 2, 2)
    arcface = losses.components["arcface"]
    assert arcface.margin == pytest.approx(0.5)
    with torch.no_grad():
        arcface.W.copy_(torch.eye(2))  # W[:, c] is class c's direction
    feat = torch.tensor([[2 * math.cos(0.7), 2 * math.sin(0.7)]])
    _, values = losses({"feat": feat}, torch.tensor([0]))
    target, other = 30 * math.cos(0.7 + 0.5), 30 * math.sin(0.7)
    expected = -target + math.log(math.exp(target) + math.exp(other))
    assert values["arcface"] == pytest.approx(expected, rel=1e-4)


def test_arcface_weights_train_in_their_param_group():
    losses = LossSet(_cfg(arcface=1.0), 3, 4)
    groups = losses.param_groups(head_lr=0.1)
    assert [g["lr"] for g in groups] == [0.1]
    before = losses.components["arcface"].W.detach().clone()
    optimizer = torch.optim.SGD(groups)
    total, _ = losses({"feat": torch.randn(6, 4)}, torch.tensor([0, 1, 2, 0, 1, 2]))
    total.backward()
    optimizer.step()
    assert not torch.equal(losses.components["arcface"].W, before)


def test_weighted_total_and_center_step_scale():
    losses = LossSet(_cfg(ce=2.0, center=0.5), 2, 2)
    centers = losses.center_parameters()
    assert len(centers) == 1 and centers[0].shape == (2, 2) and losses.center_step_scale == 2.0
    with torch.no_grad():
        centers[0].zero_()
    outputs = {"logits": torch.tensor([[0.0, 0.0]]), "feat": torch.tensor([[3.0, 4.0]])}
    total, values = losses(outputs, torch.tensor([1]))
    assert values == {"ce": pytest.approx(math.log(2)), "center": pytest.approx(25.0)}
    assert total.item() == pytest.approx(2 * math.log(2) + 0.5 * 25)
