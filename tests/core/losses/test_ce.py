import math

import pytest
import torch

from core.losses.ce import CEConfig, CrossEntropy
from core.losses.i2t import I2TConfig, ImageToText


def test_cross_entropy_with_label_smoothing_matches_formula():
    loss = CrossEntropy(CEConfig(weight=1.0, label_smoothing=0.1), 3, 2)
    value = loss({"logits": torch.tensor([[2.0, 0.0, -1.0]])}, torch.tensor([0]))
    log_z = math.log(math.exp(2) + 1 + math.exp(-1))
    nll = [log_z - 2, log_z, log_z + 1]
    assert value.item() == pytest.approx(0.9 * nll[0] + 0.1 * sum(nll) / 3)


def test_i2t_is_cross_entropy_of_the_text_logits_in_fp32():
    loss = ImageToText(I2TConfig(weight=1.0), 2, 2)
    value = loss({"text_logits": torch.tensor([[0.0, math.log(3)]], dtype=torch.bfloat16)}, torch.tensor([1]))
    assert value.dtype == torch.float32 and value.item() == pytest.approx(-math.log(3 / 4), rel=1e-2)
