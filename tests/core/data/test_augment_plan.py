"""Epoch plans of augmentation parameters: today's distribution, seeded, applied with no host sync or copy."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from scipy import stats

from core.config import AugmentConfig
from core.data.augment import DeviceAugment
from core.model.preprocess import Preprocess
from tests.sync_counter import count_host_syncs, cuda_syncs_raise

ALL_ON = AugmentConfig(crop="pad", pad=3, flip=0.5, color_jitter=0.4, erasing=0.5)
SIZE = (16, 20)
PRE = Preprocess()


def images(n: int, h: int = SIZE[0], w: int = SIZE[1], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_an_epoch_plan_is_shaped_by_step_and_seeded():
    augment = DeviceAugment(ALL_ON, PRE)
    plan = augment.draw((5, 6), SIZE, gen(0))
    assert plan.theta.shape == (5, 6, 2, 3) and plan.jitter.shape == (5, 6, 3) and plan.erase.shape == (5, 6, 5)
    assert plan[2].theta.shape == (6, 2, 3) and torch.equal(plan[2].erase, plan.erase[2])
    again, other = augment.draw((5, 6), SIZE, gen(0)), augment.draw((5, 6), SIZE, gen(1))
    for name in ("theta", "jitter", "erase"):
        assert torch.equal(getattr(plan, name), getattr(again, name))
    assert not torch.equal(plan.theta, other.theta)
    off = DeviceAugment(AugmentConfig(color_jitter=0.0, erasing=0.0), PRE).draw((5, 6), SIZE, gen(0))
    assert off.jitter is None and off.erase is None


@pytest.mark.parametrize("cfg", [ALL_ON, AugmentConfig(crop="resized", crop_scale=0.3, color_jitter=0.2, erasing=1.0),
                                 AugmentConfig(crop="none", flip=0.0, color_jitter=0.0, erasing=0.0)])
def test_a_one_step_epoch_is_exactly_the_batch_the_same_seed_gives(cfg):
    augment, batch = DeviceAugment(cfg, PRE), images(6)
    out = augment.apply(batch, augment.draw((1, 6), SIZE, gen(3))[0])
    assert out.shape == (6, 3, *SIZE) and out.dtype == torch.float32
    assert torch.equal(out, augment(batch, gen(3)))


def test_pad_flip_jitter_and_erasing_parameters_follow_the_configuration():
    steps, n, (h, w) = 50, 100, SIZE
    plan = DeviceAugment(ALL_ON, PRE).draw((steps, n), SIZE, gen(0))
    theta, jitter, erase = plan.theta.reshape(-1, 2, 3), plan.jitter.reshape(-1, 3), plan.erase.reshape(-1, 5)
    flips = int((theta[:, 0, 0] < 0).sum())
    assert stats.binomtest(flips, steps * n, 0.5).pvalue > 1e-3
    for shift in (theta[:, 0, 2] * w / 2, theta[:, 1, 2] * h / 2):  # whole pixels, uniform over [-3, 3]
        pixels = shift.round()
        assert torch.allclose(shift, pixels, atol=1e-5)
        assert stats.chisquare(torch.bincount((pixels + 3).long(), minlength=7).numpy()).pvalue > 1e-3
        assert pixels.min() == -3 and pixels.max() == 3
    for factor in jitter.unbind(1):
        assert stats.kstest(factor.numpy(), stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3
    applied = erase[:, 0] > 0
    assert stats.binomtest(int(applied.sum()), steps * n, 0.5).pvalue > 1e-3
    top, bottom, left, right = erase[:, 1:].unbind(1)
    assert bool((top >= 0).all() and (bottom <= h).all() and (left >= 0).all() and (right <= w).all())
    eh, ew = bottom - top, right - left
    rounding = (0.5 * (eh + ew) + 0.25) / (h * w)  # each side is rounded to a whole pixel
    area = eh * ew / (h * w)
    assert bool(((area >= 0.02 - rounding) & (area <= 0.33 + rounding)).all())


def test_resized_crops_lie_inside_the_image_with_uniform_offsets():
    plan = DeviceAugment(AugmentConfig(crop="resized", crop_scale=0.3, flip=0.0), PRE).draw((40, 100), SIZE, gen(0))
    theta = plan.theta.reshape(-1, 2, 3)
    sx, sy, tx, ty = theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2]
    assert bool(((sx * sy >= 0.3 - 1e-6) & (sx <= 1) & (sy <= 1)).all())
    assert bool(((tx.abs() <= 1 - sx + 1e-6) & (ty.abs() <= 1 - sy + 1e-6)).all())
    inner = sx < 0.999
    assert stats.kstest((tx[inner] / (1 - sx[inner])).numpy(), stats.uniform(-1, 2).cdf).pvalue > 1e-3


def per_image_statistics(out: torch.Tensor) -> list[torch.Tensor]:
    """Mean, left-minus-right mean (moved by flips and shifts) and erased fraction of each image."""
    half = out.shape[-1] // 2
    erased = (out == 0).all(dim=1).float().mean((1, 2))
    return [out.mean((1, 2, 3)), out[..., :half].mean((1, 2, 3)) - out[..., half:].mean((1, 2, 3)), erased]


def test_epoch_outputs_have_the_distribution_of_per_batch_outputs():
    steps, n = 40, 50
    batch = torch.linspace(0, 255, SIZE[1]).round().to(torch.uint8).view(1, 1, -1, 1).expand(n, SIZE[0], -1, 3)
    augment = DeviceAugment(ALL_ON, PRE)
    per_batch_gen = gen(0)
    per_batch = torch.cat([augment(batch, per_batch_gen) for _ in range(steps)])
    plan = augment.draw((steps, n), SIZE, gen(1))
    epoch = torch.cat([augment.apply(batch, plan[i]) for i in range(steps)])
    for a, b in zip(per_image_statistics(per_batch), per_image_statistics(epoch)):
        assert stats.ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3


def test_applying_a_step_makes_no_host_sync_or_copy():
    augment, data = DeviceAugment(ALL_ON, PRE, torch.channels_last), images(32)
    rows = torch.randperm(32, generator=gen(0))[:24].view(3, 8)
    plan = augment.draw((3, 8), SIZE, gen(0)).to("cpu")
    augment.apply(data[rows[0]], plan[0])  # builds the constants, once per device
    assert count_host_syncs(lambda: augment.apply(data[rows[1]], plan[1])) == Counter()
    assert augment.apply(data[rows[2]], plan[2]).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_step_makes_no_sync_and_matches_the_cpu():
    augment, data = DeviceAugment(ALL_ON, PRE), images(8)
    plan = augment.draw((2, 8), SIZE, gen(0))
    on_cuda, cuda_data = plan.to("cuda"), data.cuda()
    augment.apply(cuda_data, on_cuda[0])
    with cuda_syncs_raise():
        out = augment.apply(cuda_data, on_cuda[1])
    torch.testing.assert_close(out.cpu(), augment.apply(data, plan[1]), atol=1e-4, rtol=1e-4)
