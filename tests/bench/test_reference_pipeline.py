"""The published pipeline's mimic: its transform chain and one training epoch over real JPEG files."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.reference_pipeline import ReferenceLoop, encoder_with_head, make_loader, reference_transform
from core.model.preprocess import Preprocess


def test_transform_resizes_crops_and_normalises_like_the_published_code():
    grey = Image.fromarray(np.full((120, 160, 3), 128, dtype=np.uint8))
    out = reference_transform((64, 64))(grey)
    assert out.shape == (3, 64, 64)
    expected = [(128 / 255 - m) / s for m, s in zip(Preprocess().mean, Preprocess().std)]
    assert out.mean(dim=(1, 2)).tolist() == pytest.approx(expected, abs=1e-5)


def test_a_reference_epoch_decodes_every_file_and_trains_the_model(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    model = encoder_with_head("HandID-Tiny", (32, 32), num_classes=3)
    before = [p.detach().clone() for p in model.parameters()]
    loop = ReferenceLoop(model, make_loader(paths, [0, 1, 2, 0, 1], (32, 32), batch_size=2, workers=0), torch.device("cpu"))
    seen, seconds = loop.epoch()
    assert seen == 5 and seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
