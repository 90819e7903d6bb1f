"""Static-shape triplet and ArcFace losses: pytorch-metric-learning's values and gradients, no host sync."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ArcFaceLoss, TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from core.losses.functional import MININGS, arcface_loss, lp_distances, supcon_loss, triplet_loss
from tests.sync_counter import count_host_syncs, cuda_syncs_raise

SIZES = (2, 8, 24, 32, 64)  # cdist takes its exact path up to 25 rows, its matmul path above
MARGINS = (0.1, 0.3, 0.5)


def labels_of(size: int, per_identity: int, gen: torch.Generator) -> torch.Tensor:
    """`size` shuffled labels, each identity holding 1..per_identity rows."""
    counts = torch.randint(1, per_identity + 1, (size,), generator=gen)
    labels = torch.repeat_interleave(torch.arange(size), counts)[:size]
    return labels[torch.randperm(size, generator=gen)]


def batches(dim: int = 16):
    """(embeddings, labels, gradient atol) over batch sizes, 1..k rows per identity, one identity, and
    one collapsed point (where both gradients are rounding noise of cdist's matmul path around 0)."""
    gen = torch.Generator().manual_seed(0)
    for size in SIZES:
        for per_identity in (1, 2, 4):
            for _ in range(2):
                yield torch.randn(size, dim, generator=gen), labels_of(size, per_identity, gen), 1e-6
        labels = labels_of(size, 3, gen)
        yield torch.randn(1, dim, generator=gen).expand(size, dim).clone(), labels, 1e-3
        yield torch.randn(size, dim, generator=gen), torch.zeros(size, dtype=torch.int64), 1e-6


def value_and_grad(fn, embeddings: torch.Tensor, *params: torch.Tensor) -> list[torch.Tensor]:
    """[loss, d loss / d embeddings, d loss / d each param] of fn(embeddings, *params)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (embeddings, *params)]
    loss = fn(*leaves)
    loss.backward()
    return [loss.detach(), *(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves)]


def pml_triplet(embeddings, labels, margin, mining, normalize, smooth):
    distance = LpDistance(normalize_embeddings=normalize)
    miner = (BatchHardMiner(distance=distance) if mining == "batch_hard"
             else TripletMarginMiner(margin=margin, type_of_triplets=mining, distance=distance))
    loss = TripletMarginLoss(margin=margin, smooth_loss=smooth, distance=distance)
    return loss(embeddings, labels, miner(embeddings, labels))


@pytest.mark.parametrize("normalize", [True, False])
def test_distances_equal_pml_lp_distance(normalize):
    for embeddings, _, _ in batches():
        expected = LpDistance(normalize_embeddings=normalize)(embeddings)
        torch.testing.assert_close(lp_distances(embeddings, normalize), expected, rtol=0, atol=0)


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("mining", ["batch_hard", "semihard", "all"])
def test_triplet_values_and_gradients_equal_pml(mining, normalize, smooth):
    nonzero = 0
    for embeddings, labels, grad_atol in batches():
        for margin in MARGINS:
            ours = value_and_grad(lambda e: triplet_loss(e, labels, margin, mining, normalize, smooth), embeddings)
            ref = value_and_grad(lambda e: pml_triplet(e, labels, margin, mining, normalize, smooth), embeddings)
            torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(ours[1], ref[1], rtol=1e-5, atol=grad_atol)
            nonzero += bool(ref[0] > 0)
    assert nonzero > 20  # most batches do mine triplets: the comparison is not only of zeros


# 1-D points, not normalised: labels 0 at 0 and 1, labels 1 at 1.2 and 3; margin 0.5. Triplets
# (d_ap - d_an + 0.5): a=0: (0,1,2) 0.3 [semihard], (0,1,3) -1.5; a=1: (1,0,2) 1.3 [hard],
# (1,0,3) -0.5; a=2: (2,3,0) 1.1, (2,3,1) 2.1 [hard]; a=3: (3,2,0) -0.7, (3,2,1) 0.3 [semihard].
POINTS = torch.tensor([[0.0], [1.0], [1.2], [3.0]])
POINT_LABELS = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("mining, expected", [
    ("all", (0.3 + 1.3 + 1.1 + 2.1 + 0.3) / 5),  # every triplet with d_an - d_ap <= margin and a loss > 0
    ("semihard", (0.3 + 0.3) / 2),
    ("batch_hard", (0.3 + 1.3 + 2.1 + 0.3) / 4),  # farthest positive, nearest negative per anchor
])
def test_triplet_by_hand_on_a_line(mining, expected):
    value = triplet_loss(POINTS, POINT_LABELS, 0.5, mining, normalize=False)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_smooth_batch_hard_by_hand_and_unit_sphere_default():
    value = triplet_loss(POINTS, POINT_LABELS, 0.5, "batch_hard", normalize=False, smooth=True)
    expected = sum(math.log1p(math.exp(v)) for v in (0.3, 1.3, 2.1, 0.3)) / 4
    assert value.item() == pytest.approx(expected, rel=1e-5)
    feat = torch.tensor([[3.0, 0.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 0.0]])  # as test_combined: normalised
    expected = (math.sqrt(0.8) - math.sqrt(0.4) + 0.3 + math.sqrt(2.0) - math.sqrt(0.4) + 0.3) / 2
    assert triplet_loss(feat, POINT_LABELS, 0.3).item() == pytest.approx(expected, rel=1e-5)


def test_no_triplet_is_zero_with_zero_gradients():
    embeddings = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.zeros(4, dtype=torch.int64), torch.arange(4)):  # no negative / no positive
        for mining in ("batch_hard", "semihard", "all"):
            value = triplet_loss(embeddings, labels, 0.3, mining)
            value.backward()
            assert value.item() == 0.0 and torch.equal(embeddings.grad, torch.zeros(4, 3))


def test_unknown_mining_is_a_value_error():
    with pytest.raises(ValueError, match="mining='hard' is not one of batch_hard, semihard, all"):
        triplet_loss(torch.randn(4, 2), POINT_LABELS, 0.3, "hard")


def arcface_cases(classes: int = 7, dim: int = 16):
    """(embeddings, labels, W) at random, and near the antipode of their class (pml's other branch)."""
    gen = torch.Generator().manual_seed(1)
    for size in SIZES:
        weight = torch.randn(dim, classes, generator=gen)
        labels = torch.randint(0, classes, (size,), generator=gen)
        yield torch.randn(size, dim, generator=gen), labels, weight
        yield -weight[:, labels].t() + 0.05 * torch.randn(size, dim, generator=gen), labels, weight


@pytest.mark.parametrize("margin_degrees, scale", [(28.6, 64.0), (math.degrees(0.3), 30.0), (5.0, 16.0)])
def test_arcface_values_and_gradients_equal_pml(margin_degrees, scale):
    for embeddings, labels, weight in arcface_cases():
        pml = ArcFaceLoss(weight.shape[1], weight.shape[0], margin=margin_degrees, scale=scale)
        with torch.no_grad():
            pml.W.copy_(weight)
        reference = value_and_grad(lambda e: pml(e, labels), embeddings)
        ours = value_and_grad(lambda e, w: arcface_loss(e, labels, w, margin_degrees, scale), embeddings, weight)
        torch.testing.assert_close(ours, [*reference, pml.W.grad], rtol=1e-5, atol=1e-5)


def test_arcface_by_hand_on_both_sides_of_pi_minus_margin():
    weight = torch.eye(2)  # column c is class c's direction
    for angle in (0.7, 3.0):  # 3.0 > pi - 0.5: the logit continues as cos(theta) - m sin(m)
        feat = torch.tensor([[2 * math.cos(angle), 2 * math.sin(angle)]])
        value = arcface_loss(feat, torch.tensor([0]), weight, math.degrees(0.5), 30.0)
        target = math.cos(angle + 0.5) if angle <= math.pi - 0.5 else math.cos(angle) - 0.5 * math.sin(0.5)
        other = math.sin(angle)
        expected = -30 * target + math.log(math.exp(30 * target) + math.exp(30 * other))
        assert value.item() == pytest.approx(expected, rel=1e-4)


def test_losses_make_no_host_sync_forward_and_backward():
    embeddings = torch.randn(16, 8, requires_grad=True)
    labels = torch.arange(16) // 4
    weight = torch.randn(8, 4, requires_grad=True)
    for mining in ("batch_hard", "semihard", "all"):
        assert count_host_syncs(lambda: triplet_loss(embeddings, labels, 0.3, mining).backward()) == Counter()
    assert count_host_syncs(lambda: arcface_loss(embeddings, labels, weight, 28.6, 64.0).backward()) == Counter()


def test_pml_does_sync_so_the_counter_sees_real_syncs():
    embeddings = torch.randn(16, 8, requires_grad=True)
    labels = torch.arange(16) // 4
    counts = count_host_syncs(lambda: pml_triplet(embeddings, labels, 0.3, "batch_hard", True, False).backward())
    assert counts["aten::nonzero"] >= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_losses_make_no_cuda_sync_and_equal_the_cpu_values():
    cpu = [torch.randn(64, 32), torch.arange(64) // 4, torch.randn(32, 16)]
    embeddings, labels, weight = (t.cuda().requires_grad_(t.is_floating_point()) for t in cpu)
    losses = [lambda m=m: triplet_loss(embeddings, labels, 0.3, m) for m in MININGS]
    losses.append(lambda: arcface_loss(embeddings, labels, weight, 28.6, 64.0))
    values = [fn() for fn in losses]  # warm-up: kernels loaded, allocator primed
    with cuda_syncs_raise():
        for fn in losses:
            fn().backward()
    expected = [triplet_loss(cpu[0], cpu[1], 0.3, m) for m in MININGS] + [arcface_loss(*cpu, 28.6, 64.0)]
    torch.testing.assert_close([v.detach().cpu() for v in values], expected, rtol=1e-4, atol=1e-5)


def test_supcon_by_hand():
    anchors = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    contrasts = torch.tensor([[1.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    # anchor 0 (label 0): logits [1, 0, 1], positives 0 and 2; anchor 1 (label 1): [0, 1, 0], positive 1;
    # anchor 2 (label 5) has no positive and does not count.
    expected = (math.log(2 * math.e + 1) - 1 + math.log(math.e + 2) - 1) / 2
    loss = supcon_loss(anchors, contrasts, torch.tensor([0, 1, 5]), torch.tensor([0, 1, 0]), 1.0)
    assert loss.item() == pytest.approx(expected)
    scaled = supcon_loss(anchors[:2], contrasts, torch.tensor([0, 1]), torch.tensor([0, 1, 0]), 10.0)
    assert scaled.item() == pytest.approx((math.log(2 * math.exp(10) + 1) - 10 + math.log(math.exp(10) + 2) - 10) / 2)
    assert supcon_loss(anchors, contrasts, torch.tensor([7, 8, 9]), torch.tensor([0, 1, 0]), 1.0).item() == 0
