import math

import pytest
import torch

from core.losses.arcface import ArcFace, ArcFaceConfig


def test_arcface_margin_in_radians_and_value():
    loss = ArcFace(ArcFaceConfig(weight=1.0, margin=0.5, scale=30.0), 2, 2)
    with torch.no_grad():
        loss.W.copy_(torch.eye(2))  # W[:, c] is class c's direction
    feat = torch.tensor([[2 * math.cos(0.7), 2 * math.sin(0.7)]])
    value = loss({"feat": feat}, torch.tensor([0]))
    target, other = 30 * math.cos(0.7 + 0.5), 30 * math.sin(0.7)
    assert value.item() == pytest.approx(-target + math.log(math.exp(target) + math.exp(other)), rel=1e-4)


def test_class_weights_start_as_unit_columns_and_train_at_the_head_rate():
    loss = ArcFace(ArcFaceConfig(weight=1.0), 3, 16)
    torch.testing.assert_close(loss.W.norm(dim=0), torch.ones(3))
    groups = loss.param_groups(head_lr=0.1)
    assert [g["lr"] for g in groups] == [0.1] and groups[0]["params"] == [loss.W]


def test_arcface_may_read_the_bnneck_feature():
    loss = ArcFace(ArcFaceConfig(weight=1.0, feature="feat_bn"), 2, 2)
    assert loss.reads == "feat_bn"
