import math

import pytest
import torch

from core.losses.triplet import Triplet, TripletConfig


def test_batch_hard_triplet_on_normalised_features():
    loss = Triplet(TripletConfig(weight=1.0, margin=0.3), 2, 2)
    feat = torch.tensor([[3.0, 0.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 0.0]])  # unit directions after L2 norm
    value = loss({"feat": feat}, torch.tensor([0, 0, 1, 1]))
    # Hardest positive / negative distances per anchor; anchors 0 and 3 satisfy the margin.
    anchor1 = math.sqrt(0.8) - math.sqrt(0.4) + 0.3
    anchor2 = math.sqrt(2.0) - math.sqrt(0.4) + 0.3
    assert value.item() == pytest.approx((anchor1 + anchor2) / 2, rel=1e-5)


def test_raw_distance_and_soft_margin():
    feat = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    raw = Triplet(TripletConfig(weight=1.0, margin=1.0, normalize=False), 2, 1)
    # anchors 1 and 2: hardest positive at 1, hardest negative at 2 -> 1 - 2 + 1 = 0: no violation; all satisfied
    assert raw({"feat": feat}, labels).item() == 0.0
    soft = Triplet(TripletConfig(weight=1.0, normalize=False, soft=True), 2, 1)
    # soft margin, margin 0.3: mean of log(1 + exp(d_ap - d_an + 0.3)) over anchors 1-3+0.3, 1-2+0.3, 1-2+0.3, 1-3+0.3
    expected = (2 * math.log1p(math.exp(-1.7)) + 2 * math.log1p(math.exp(-0.7))) / 4
    assert soft({"feat": feat}, labels).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mining", ["semihard", "all"])
def test_other_miners_give_finite_losses_with_gradients(mining):
    loss = Triplet(TripletConfig(weight=1.0, mining=mining), 4, 4)
    feat = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    value = loss({"feat": feat}, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    value.backward()
    assert torch.isfinite(value) and feat.grad is not None
