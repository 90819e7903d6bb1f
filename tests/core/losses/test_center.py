import pytest
import torch

from core.losses.center import CenterConfig, CenterLoss


def test_mean_squared_distance_to_own_centre():
    loss = CenterLoss(CenterConfig(weight=1.0), num_classes=2, dim=2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    value = loss({"feat": features}, torch.tensor([0, 1, 0]))
    # (1 + 4) + (4 + 9) + 0, over 3 samples
    torch.testing.assert_close(value, torch.tensor(6.0))
    value.backward()
    # d/dc_1 = -2 (x_1 - c_1) / 3 ; centre 0 gets -2 ((1,2) + (0,0)) / 3
    torch.testing.assert_close(loss.centers.grad, torch.tensor([[-2 / 3, -4 / 3], [-4 / 3, -2.0]]))


def test_centres_step_by_their_own_sgd_with_the_weight_undone():
    loss = CenterLoss(CenterConfig(weight=0.25, lr=0.5), num_classes=1, dim=1)
    with torch.no_grad():
        loss.centers.zero_()
    optimizer = loss.own_optimizer()
    (0.25 * loss({"feat": torch.tensor([[2.0]])}, torch.tensor([0]))).backward()  # d/dc = 0.25 * -2 * 2
    loss.before_own_step()
    optimizer.step()
    assert loss.centers.item() == pytest.approx(0.5 * 4.0)  # lr x the unweighted gradient
