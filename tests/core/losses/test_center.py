import torch

from core.losses.center import CenterLoss


def test_mean_squared_distance_to_own_centre():
    loss = CenterLoss(num_classes=2, dim=2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    value = loss(features, torch.tensor([0, 1, 0]))
    # (1 + 4) + (4 + 9) + 0, over 3 samples
    torch.testing.assert_close(value, torch.tensor(6.0))
    value.backward()
    # d/dc_1 = -2 (x_1 - c_1) / 3 ; centre 0 gets -2 ((1,2) + (0,0)) / 3
    torch.testing.assert_close(loss.centers.grad, torch.tensor([[-2 / 3, -4 / 3], [-4 / 3, -2.0]]))
