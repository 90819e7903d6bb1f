"""HandID-Tiny models (CPU, 64 px) for the model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.model.backbone import create_clip
from core.model.handid import HandIDModel
from core.model.prompts import identity_prompts


def _tiny_model(num_classes: int = 3, prompts: bool = True, size: tuple[int, int] = (64, 64)) -> HandIDModel:
    clip, tokenizer = create_clip("HandID-Tiny", "", size)
    names = [f"{i:07d}" for i in range(num_classes)]
    return HandIDModel(clip, tokenizer, num_classes, identity_prompts(names, "dorsal_r") if prompts else None)


@pytest.fixture
def make_model() -> Callable[..., HandIDModel]:
    """make_model(num_classes=3, prompts=True, size=(64, 64)) -> HandIDModel with random weights."""
    return _tiny_model


@pytest.fixture
def model() -> HandIDModel:
    return _tiny_model()
