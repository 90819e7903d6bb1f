"""Building the hand-identity model for a run, checkpoint metadata, and models from checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from open_clip.modified_resnet import ModifiedResNet

from core.config import Config
from core.errors import ModelError
from core.model.backbone import create_clip
from core.model.checkpoint import init_from, load_metadata, load_model_state
from core.model.handid import HandIDModel
from core.model.prompts import identity_prompts
from core.runs import RunDir

log = logging.getLogger(__name__)
TEXT_CLASSIFIER_PREFIX = "text_classifier."


def build_model(cfg: Config, class_names: list[str], aspects: list[str]) -> HandIDModel:
    """The configured backbone with heads for `class_names`; the text-prompt classifier only when
    loss.i2t is on (the frozen text encoder then encodes one prompt per class, once)."""
    clip, tokenizer = create_clip(cfg.model.backbone, cfg.model.pretrained, cfg.data.image_size)
    prompts = identity_prompts(class_names, aspects, cfg.model.prompt) if cfg.loss.i2t.weight > 0 else None
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


def metadata(cfg: Config, class_names: list[str], aspects: list[str], epoch: int) -> dict[str, Any]:
    """What a checkpoint needs to be rebuilt and evaluated without its run's config."""
    return {
        "backbone": cfg.model.backbone, "pretrained": cfg.model.pretrained,
        "image_size": list(cfg.data.image_size), "num_classes": len(class_names),
        "class_names": list(class_names), "aspects": list(aspects), "prompt": cfg.model.prompt,
        "feature": cfg.model.feature, "epoch": epoch,
    }


def load_checkpoint_model(path: Path) -> tuple[HandIDModel, dict[str, Any]]:
    """A model rebuilt from a checkpoint's metadata with its weights (without the text classifier,
    which retrieval does not use), and the metadata."""
    meta = load_metadata(path)
    missing = [k for k in ("backbone", "image_size", "class_names") if k not in meta]
    if missing:
        raise ModelError(f"{path}: checkpoint metadata lacks {', '.join(missing)}")
    clip, tokenizer = create_clip(meta["backbone"], meta.get("pretrained", ""), tuple(meta["image_size"]),
                                  load_weights=False)  # the checkpoint holds every image-side weight
    model = HandIDModel(clip, tokenizer, len(meta["class_names"]), None)
    state = {k: v for k, v in load_model_state(path).items() if not k.startswith(TEXT_CLASSIFIER_PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {meta['backbone']} ({str(exc).splitlines()[0]})") from None
    return model, meta
