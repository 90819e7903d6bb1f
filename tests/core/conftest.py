"""Session-wide synthetic datasets and tiny training configs for the trainer and evaluator tests.

One small synthetic 11k-layout dataset (and one HD-layout dataset for cross-dataset checks) is
generated once per test session; every tiny run reads it through the real readers and cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from core.config import Config, load_config
from core.data.cache import decode_image
from core.data.synth import write_dataset
from core.model.backbone import create_clip
from core.model.handid import HandIDModel
from core.runs import CheckpointMeta

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """11k layout: 8 people x 4 aspects x 3 photos (4 train / 4 test identities per subset)."""
    return write_dataset("11k", tmp_path_factory.mktemp("data") / "synthetic-11k", 8, seed=0, size=(64, 48),
                         images_per_aspect=3, workers=1)


@pytest.fixture(scope="session")
def synth_hd_root(tmp_path_factory) -> Path:
    """HD layout: 6 subjects in 1-501 (3 photos each) plus a few 502-712 distractor subjects."""
    return write_dataset("hd", tmp_path_factory.mktemp("data") / "synthetic-hd", 6, seed=1, size=(64, 48),
                         images_per_aspect=3, workers=1)


@pytest.fixture(scope="session")
def tiny_overrides(synth_root, tmp_path_factory) -> dict:
    """The demo preset shrunk to seconds: 32 px, 2 epochs, 2 evaluation runs, one CPU thread."""
    return {
        "data.root": str(synth_root), "data.image_size": 32,
        "data.cache_dir": str(tmp_path_factory.mktemp("cache")),
        "train.epochs": 2, "train.batch_size": 4, "train.log_every": 1, "train.threads": 1, "train.device": "cpu",
        "sampler.kind": "random", "eval.every": 1, "eval.runs": 2, "eval.batch_size": 16,
    }


@pytest.fixture(scope="session")
def tiny_config(tiny_overrides) -> Callable[..., Config]:
    """tiny_config(**{"dotted.key": value}) -> the tiny demo Config with those overrides."""
    def make(overrides: dict | None = None) -> Config:
        return load_config(DEMO, {**tiny_overrides, **(overrides or {})})
    return make


@pytest.fixture(scope="session")
def trained_run(tiny_config, tmp_path_factory) -> Path:
    """One finished tiny run (2 epochs on dorsal_r), shared by the evaluate and init_from tests."""
    from core.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "trained"
    assert train(tiny_config(), str(run_dir)) == 0
    return run_dir


TINY_RN = "HandID-TinyRN"
TINY_RN_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Callable[..., tuple]:
    """tiny_model("vit" | "rn", size=(64, 48)) -> (HandIDModel in eval mode, checkpoint-style metadata).

    "vit" is HandID-Tiny; "rn" a ModifiedResNet (layers [1, 1, 1, 1], width 16) registered here
    as HandID-TinyRN. Random weights, seeded; BNNeck running statistics made non-trivial so the
    post_bn feature differs from pre_bn.
    """
    if TINY_RN not in open_clip.list_models():
        path = tmp_path_factory.mktemp("configs") / f"{TINY_RN}.json"
        path.write_text(json.dumps(TINY_RN_CONFIG))
        open_clip.add_model_config(path)

    def make(kind: str = "vit", size: tuple[int, int] = (64, 48), feature: str = "post_bn") -> tuple:
        backbone = {"vit": "HandID-Tiny", "rn": TINY_RN}[kind]
        torch.manual_seed(0)
        clip, tokenizer = create_clip(backbone, "", size)
        model = HandIDModel(clip, tokenizer, 5, None)
        model.neck.bn.running_mean.normal_(0, 0.1)
        model.neck.bn.running_var.uniform_(0.5, 2.0)
        meta = CheckpointMeta(backbone=backbone, image_size=tuple(size), class_names=[str(i) for i in range(5)],
                              feature=feature, epoch=3)
        return model.eval(), meta
    return make


@pytest.fixture(scope="session")
def hand_images(synth_root) -> Callable[..., np.ndarray]:
    """hand_images(n, size=(64, 48)) -> the first n synthetic hand photos as uint8 [n, h, w, 3]."""
    paths = sorted(Path(synth_root).rglob("*.jpg"))

    def load(n: int = 16, size: tuple[int, int] = (64, 48)) -> np.ndarray:
        return np.stack([decode_image(p, size) for p in paths[:n]])
    return load
