import math

import pytest
import torch

from core.losses.triplet import Triplet, TripletConfig
from core.model.heads import BNNeck


def test_batch_hard_triplet_on_normalised_features():
    loss = Triplet(TripletConfig(weight=1.0, margin=0.3, feature="feat"), 2, 2)
    feat = torch.tensor([[3.0, 0.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 0.0]])  # unit directions after L2 norm
    value = loss({"feat": feat}, torch.tensor([0, 0, 1, 1]))
    # Hardest positive / negative distances per anchor; anchors 0 and 3 satisfy the margin.
    anchor1 = math.sqrt(0.8) - math.sqrt(0.4) + 0.3
    anchor2 = math.sqrt(2.0) - math.sqrt(0.4) + 0.3
    assert value.item() == pytest.approx((anchor1 + anchor2) / 2, rel=1e-5)


def test_raw_distance_and_soft_margin():
    feat = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    raw = Triplet(TripletConfig(weight=1.0, margin=1.0, normalize=False, feature="feat"), 2, 1)
    # anchors 1 and 2: hardest positive at 1, hardest negative at 2 -> 1 - 2 + 1 = 0: no violation; all satisfied
    assert raw({"feat": feat}, labels).item() == 0.0
    soft = Triplet(TripletConfig(weight=1.0, normalize=False, soft=True, feature="feat"), 2, 1)
    # soft margin, margin 0.3: mean of log(1 + exp(d_ap - d_an + 0.3)) over anchors 1-3+0.3, 1-2+0.3, 1-2+0.3, 1-3+0.3
    expected = (2 * math.log1p(math.exp(-1.7)) + 2 * math.log1p(math.exp(-0.7))) / 4
    assert soft({"feat": feat}, labels).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mining", ["semihard", "all"])
def test_other_miners_give_finite_losses_with_gradients(mining):
    loss = Triplet(TripletConfig(weight=1.0, mining=mining, feature="feat"), 4, 4)
    feat = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    value = loss({"feat": feat}, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    value.backward()
    assert torch.isfinite(value) and feat.grad is not None


def test_default_reads_the_bnneck_feature_which_a_collapsed_pre_bn_batch_cannot_fool():
    # A pre-BN batch collapsed to one direction (as batch-hard mining drives a random-init encoder):
    # every distance is ~0 and each triplet sits at the margin whatever the features. The BNNeck
    # feature of the same batch is centred: its distances are O(1), some triplets meet a margin.
    generator = torch.Generator().manual_seed(0)
    feat = (torch.ones(8, 16) + 1e-3 * torch.randn(8, 16, generator=generator)).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert Triplet(TripletConfig(weight=1.0), 4, 16).reads == "feat_bn"
    pre = Triplet(TripletConfig(weight=1.0, margin=0.3, feature="feat"), 4, 16)({"feat": feat}, labels)
    assert pre.item() == pytest.approx(0.3, abs=0.01)
    feat_bn = BNNeck(16, 4)(feat)[0]
    distances = torch.cdist(*[torch.nn.functional.normalize(feat_bn, dim=1)] * 2)
    assert distances[~torch.eye(8, dtype=torch.bool)].min() > 0.3
    value = Triplet(TripletConfig(weight=1.0, margin=0.3), 4, 16)({"feat_bn": feat_bn}, labels)
    assert abs(value.item() - 0.3) > 0.05
