"""The training-throughput benchmark: FLOPs per image by hand, and both paths on the tiny model."""

import pytest
import torch
from torch import nn

from bench.reference_pipeline import EncoderWithHead
from bench.train_throughput import flops_per_image, measure, peak_flops


class LinearEncoder(nn.Module):
    """12 inputs (3x2x2 pixels) -> 5 features: a stand-in image encoder with hand-countable FLOPs."""

    output_dim = 5

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_flops_per_image_counts_forward_and_backward_matmuls():
    model = EncoderWithHead(LinearEncoder(), num_classes=3)
    # forward 2*12*5 + 2*5*3 = 150; backward: encoder weight grad 120 (no input grad), head weight
    # and input grads 30 + 30: 330 per image.
    assert flops_per_image(model, (2, 2), torch.device("cpu"), torch.contiguous_format) == 330


def test_cpu_has_no_peak_so_no_mfu():
    assert peak_flops(torch.device("cpu")) is None


def test_bare_and_full_steps_both_report_on_the_tiny_model():
    result = measure("HandID-Tiny", (32, 32), batch_size=8, steps=2, repeats=1, device="cpu")
    assert not [k for k in result if k.endswith("_error")]
    assert result["full_batch_size"] == 8  # PK: 2 identities x 4 images
    assert result["bare_images_per_s"] > 0 and result["full_images_per_s"] > 0
    assert result["full_over_bare"] == pytest.approx(result["full_images_per_s"] / result["bare_images_per_s"])
    assert result["bare_mfu"] is None and result["gflop_per_image"] > 0


def test_an_unavailable_torch_compile_is_reported_not_raised(monkeypatch):
    def no_compile(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported here\nsecond line")

    monkeypatch.setattr(torch, "compile", no_compile)
    result = measure("HandID-Tiny", (32, 32), batch_size=8, steps=1, repeats=1, compile="model", device="cpu")
    assert result["bare_error"] == "RuntimeError: torch.compile is not supported here"
    assert result["full_error"] == "RuntimeError: torch.compile is not supported here"
    assert "full_over_bare" not in result and result["gflop_per_image"] > 0
