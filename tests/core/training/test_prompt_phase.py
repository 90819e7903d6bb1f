"""The prompt phase: identity tokens learned with both encoders frozen, then the fixed classifier."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from core.config import load_config
from core.data.split import Split
from core.errors import ConfigError
from core.model.backbone import create_clip
from core.model.handid import HandIDModel
from core.model.prompts import identity_prompts
from core.runs import RunDir
from core.training.prompt_phase import check_prompts, learn_prompts

from ..conftest import DEMO

CLASSES, PER_CLASS = 4, 8


def _split() -> Split:
    """Each identity a colour of its own (with noise), so that frozen random features tell them apart."""
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(CLASSES, 1, 1, 3))
    images = np.concatenate([np.clip(c + rng.normal(0, 8, (PER_CLASS, 32, 32, 3)), 0, 255) for c in colours])
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    return Split(pd.DataFrame({"label": labels}), torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels))


def _model() -> HandIDModel:
    torch.manual_seed(0)
    clip, tokenizer = create_clip("HandID-Tiny", "", (32, 32))
    return HandIDModel(clip, tokenizer, CLASSES, identity_prompts([f"{i:07d}" for i in range(CLASSES)], "dorsal_r"))


@pytest.fixture
def one_thread():
    """One CPU thread, as the tiny runs use (several threads on a loaded 2-core machine are 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_learned_prompts_replace_the_fixed_ones_and_score_their_identities(tmp_path, one_thread):
    model, train = _model(), _split()
    cfg = load_config(DEMO, {"loss.i2t.weight": 1.0, "prompts.epochs": 8, "prompts.lr": 0.05,
                             "prompts.warmup_epochs": 1, "prompts.batch_size": 16, "train.device": "cpu"})
    fixed = model.text_classifier.text.clone()
    frozen = {k: v.clone() for k, v in model.clip.state_dict().items()}
    run = RunDir.at(tmp_path / "run").create()
    learn_prompts(model, train, cfg, run)
    lines = [m for m in run.read_metrics() if m["kind"] == "prompt"]
    assert [m["prompt_epoch"] for m in lines] == list(range(1, 9)) and {m["epoch"] for m in lines} == {0}
    assert lines[-1]["image_to_text"] < lines[0]["image_to_text"] and lines[-1]["text_to_image"] < lines[0]["text_to_image"]
    assert all(torch.equal(v, model.clip.state_dict()[k]) for k, v in frozen.items())  # both encoders frozen
    text = model.text_classifier.text
    torch.testing.assert_close(text.norm(dim=1), torch.ones(CLASSES))
    assert not torch.allclose(text, fixed)
    model.eval()
    with torch.no_grad():
        from core.data.augment import eval_batch

        logits = model(eval_batch(train.images, model.preprocess))["text_logits"]
    chance = 1 / CLASSES
    assert (logits.argmax(1) == train.labels).float().mean() > 2 * chance
    assert torch.nn.functional.cross_entropy(logits, train.labels).item() < math.log(CLASSES)


def test_prompt_settings_are_checked_before_any_work():
    base = {"prompts.epochs": 2}
    with pytest.raises(ConfigError, match="no loss reads"):
        check_prompts(load_config(DEMO, {**base, "loss.i2t.weight": 0.0}))
    with pytest.raises(ConfigError, match="prompts.template"):
        check_prompts(load_config(DEMO, {**base, "loss.i2t.weight": 1.0, "prompts.template": "a hand"}))
    check_prompts(load_config(DEMO, {**base, "loss.i2t.weight": 1.0}))


def test_a_run_with_learned_prompts_logs_its_prompt_phase_first(tiny_config, tmp_path):
    from core.train import train

    cfg = tiny_config({"loss.i2t.weight": 1.0, "prompts.epochs": 2, "train.epochs": 1, "eval.every": 0})
    assert train(cfg, str(tmp_path / "run")) == 0
    kinds = [m["kind"] for m in RunDir.at(tmp_path / "run").read_metrics()]
    assert kinds[:2] == ["prompt", "prompt"] and "train" in kinds and kinds.count("prompt") == 2
