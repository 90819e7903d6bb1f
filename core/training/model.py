"""Building the hand-identity model for a run, and the metadata its checkpoints carry."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from open_clip.modified_resnet import ModifiedResNet

from core.config import Config
from core.errors import ModelError
from core.losses.combined import needs_outputs
from core.model.backbone import create_clip
from core.model.checkpoint import init_from, load_model_state
from core.model.handid import HandIDModel
from core.model.prompts import identity_prompts
from core.runs import CheckpointMeta, RunDir

log = logging.getLogger(__name__)
PROMPT_OUTPUT = "text_logits"  # the model output of the frozen text-prompt classifier


def build_model(cfg: Config, class_names: list[str], aspects: list[str]) -> HandIDModel:
    """The configured backbone with heads for `class_names`; the text-prompt classifier only when
    a loss reads its logits (the frozen text encoder then encodes one prompt per class, once)."""
    clip, tokenizer = create_clip(cfg.model.backbone, cfg.model.pretrained, cfg.data.image_size)
    wants_prompts = PROMPT_OUTPUT in needs_outputs(cfg.loss)
    prompts = identity_prompts(class_names, aspects, cfg.model.prompt) if wants_prompts else None
    model = HandIDModel(clip, tokenizer, len(class_names), prompts)
    if cfg.model.init_from:
        source = init_source(cfg.model.init_from)
        loaded, skipped = init_from(model, load_model_state(source))
        log.info("initialised %d tensors from %s (%d skipped: other identities or text side)",
                 len(loaded), source, len(skipped))
    return model


def init_source(spec: str) -> Path:
    """model.init_from: a run folder (its best checkpoint, else its last) or a .safetensors file."""
    path = Path(spec).expanduser()
    if path.is_dir():
        path = RunDir.at(path).checkpoint("best")
    if not path.is_file():
        raise ModelError(f"model.init_from={spec}: no checkpoint found at {path}")
    return path


def memory_format(model: HandIDModel, cfg: Config) -> torch.memory_format:
    """channels_last for convolutional image encoders (RN50 ...) when train.channels_last is on."""
    if cfg.train.channels_last and isinstance(model.clip.visual, ModifiedResNet):
        return torch.channels_last
    return torch.contiguous_format


def class_aspects(train: pd.DataFrame, class_names: list[str]) -> list[str]:
    """The most common aspect of each class's training images, in class order (for its prompt)."""
    common = train.groupby("identity")["aspect"].agg(lambda s: s.value_counts().index[0])
    return [str(common.get(name, "")) for name in class_names]


def checkpoint_meta(cfg: Config, model: HandIDModel, class_names: list[str], aspects: list[str],
                    epoch: int) -> CheckpointMeta:
    """What a checkpoint needs to be rebuilt and evaluated without its run's config."""
    pre = model.preprocess
    return CheckpointMeta(
        backbone=cfg.model.backbone, image_size=tuple(cfg.data.image_size), class_names=list(class_names),
        feature=cfg.model.feature, pretrained=cfg.model.pretrained, aspects=list(aspects), prompt=cfg.model.prompt,
        epoch=epoch, mean=pre.mean, std=pre.std, interpolation=pre.interpolation,
    )
