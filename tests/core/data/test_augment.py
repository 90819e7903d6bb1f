"""Device augmentation: uint8 NHWC in, CLIP-normalised float NCHW out, seeded and batched."""

from __future__ import annotations

import pytest
import torch

from core.config import AugmentConfig
from core.data.augment import DeviceAugment, eval_batch, hflip
from core.model.preprocess import Preprocess

PRE = Preprocess()  # OpenAI CLIP's mean and std
CLIP_MEAN, CLIP_STD = PRE.mean, PRE.std

OFF = dict(crop="none", flip=0.0, color_jitter=0.0, erasing=0.0)


def images(n: int = 6, h: int = 16, w: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def normalised(value: float, channel: int) -> float:
    return (value - CLIP_MEAN[channel]) / CLIP_STD[channel]


def run(cfg: AugmentConfig, batch: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return DeviceAugment(cfg, PRE)(batch, torch.Generator().manual_seed(seed))


def test_eval_batch_is_clip_normalisation_in_nchw():
    batch = torch.zeros(1, 2, 3, 3, dtype=torch.uint8)
    batch[0, 0, 0] = torch.tensor([255, 0, 51], dtype=torch.uint8)
    out = eval_batch(batch, PRE)
    assert out.shape == (1, 3, 2, 3) and out.dtype == torch.float32
    expected = [normalised(1.0, 0), normalised(0.0, 1), normalised(0.2, 2)]
    assert out[0, :, 0, 0].tolist() == pytest.approx(expected, abs=1e-6)
    assert out[0, 1, 1, 2].item() == pytest.approx(normalised(0.0, 1), abs=1e-6)


def test_with_everything_off_training_equals_evaluation():
    batch = images()
    assert torch.allclose(run(AugmentConfig(**OFF), batch), eval_batch(batch, PRE), atol=1e-5)


def test_flip_one_mirrors_every_image():
    batch = images()
    out = run(AugmentConfig(**{**OFF, "flip": 1.0}), batch)
    assert torch.allclose(out, hflip(eval_batch(batch, PRE)), atol=1e-5)
    assert torch.equal(hflip(eval_batch(batch, PRE))[..., 0], eval_batch(batch, PRE)[..., -1])


def test_pad_crop_shifts_by_whole_pixels_filling_black():
    white = torch.full((8, 12, 12, 3), 255, dtype=torch.uint8)
    out = run(AugmentConfig(**{**OFF, "crop": "pad", "pad": 3}), white)
    red = out[:, 0]
    white_value, black_value = normalised(1.0, 0), normalised(0.0, 0)
    is_white = (red - white_value).abs() < 1e-4
    is_black = (red - black_value).abs() < 1e-4
    assert bool((is_white | is_black).all())  # no blended pixels: shifts are whole pixels
    black_cols = is_black.all(dim=1).sum(dim=1)  # fully black columns per image
    black_rows = is_black.all(dim=2).sum(dim=1)
    assert int(black_cols.max()) <= 3 and int(black_rows.max()) <= 3
    assert int((black_cols + black_rows).sum()) > 0  # some image did move


def test_resized_crop_stays_inside_the_image():
    grey = torch.full((8, 16, 16, 3), 128, dtype=torch.uint8)
    out = run(AugmentConfig(**{**OFF, "crop": "resized", "crop_scale": 0.3}), grey)
    assert torch.allclose(out, eval_batch(grey, PRE), atol=1e-4)  # no black border ever appears


def test_random_erasing_zeroes_one_rectangle_of_2_to_33_percent():
    batch = torch.full((10, 20, 20, 3), 200, dtype=torch.uint8)
    out = run(AugmentConfig(**{**OFF, "erasing": 1.0}), batch)
    zero = (out == 0).all(dim=1)  # [N, H, W]
    for mask in zero:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        area = int(mask.sum())
        assert area == len(rows) * len(cols)  # one filled rectangle
        assert 0.02 * 400 - 2 <= area <= 0.34 * 400 + 8
    none = run(AugmentConfig(**OFF), batch)
    assert not bool((none == 0).all(dim=1).any())


def test_colour_jitter_varies_per_sample_within_range():
    batch = torch.full((6, 8, 8, 3), 120, dtype=torch.uint8)
    batch[..., 0] = 180
    out = run(AugmentConfig(**{**OFF, "color_jitter": 0.4}), batch)
    red = out[:, 0, 0, 0]
    assert len(set(red.tolist())) == 6
    low, high = normalised(0.0, 0), normalised(1.0, 0)
    assert bool((out[:, 0] >= low - 1e-5).all() and (out[:, 0] <= high + 1e-5).all())


def test_same_seed_same_batch_other_seed_other_batch():
    cfg = AugmentConfig(crop="resized", flip=0.5, color_jitter=0.3, erasing=0.5)
    batch = images()
    assert torch.equal(run(cfg, batch, seed=3), run(cfg, batch, seed=3))
    assert not torch.equal(run(cfg, batch, seed=3), run(cfg, batch, seed=4))


def test_memory_format_is_honoured():
    out = DeviceAugment(AugmentConfig(), PRE, torch.channels_last)(images(), torch.Generator().manual_seed(0))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert eval_batch(images(), PRE).is_contiguous()


def test_rejects_anything_but_uint8_nhwc():
    with pytest.raises(ValueError, match="uint8"):
        eval_batch(torch.zeros(2, 3, 8, 8), PRE)
