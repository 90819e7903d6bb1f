"""open_clip backbones by name, with weights from a tag, a local file or random init.

`create_clip(backbone, pretrained, image_size)` builds the model at the requested
(height, width) and returns it with its tokenizer:

- `pretrained=""`: random init; `pretrained=<tag>` (`openai`, `laion2b_s34b_b88k`, ...): the
  open_clip weights, taken from the local caches only (a hub call can hang or fail on a
  machine without network); set `HANDID_ALLOW_DOWNLOAD=1` to let open_clip download them;
  `pretrained=<path>`: an open_clip state dict (`.safetensors`, or `.bin`/`.pt`/`.pth` loaded
  with `weights_only=True`); an `open_clip_config.json` beside it (as Hugging Face repositories
  ship one) gives the model's preprocessing (core.model.preprocess).
- OpenAI weights were trained with QuickGELU: the `openai` tag (or a file whose name says
  openai) forces it, so activations never silently mismatch the weights.
- ViT position embeddings are resized by open_clip when weights are loaded. open_clip does not
  resize the attention-pool position embedding of its ModifiedResNet (RN50, ...), and only
  builds it square: `resize_attention_pool` builds it for any (h/32, w/32) grid and resizes
  loaded weights to it (`resize_pool_embedding`, bicubic, class-token row kept).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.model import get_model_preprocess_cfg, set_model_preprocess_cfg
from open_clip.modified_resnet import AttentionPool2d, ModifiedResNet
from open_clip.pretrained import download_pretrained, get_pretrained_cfg, list_pretrained_tags_by_model
from open_clip.transform import merge_preprocess_dict

import core.model.tiny  # noqa: F401  (registers HandID-Tiny)
from core.errors import ModelError

ALLOW_DOWNLOAD_ENV = "HANDID_ALLOW_DOWNLOAD"
SIBLING_CONFIG = "open_clip_config.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_COMMON = ("RN50", "ViT-B-16", "ViT-B-32", "ViT-L-14", core.model.tiny.NAME)


def create_clip(
    backbone: str, pretrained: str = "", image_size: tuple[int, int] = (224, 224), load_weights: bool = True
) -> tuple[torch.nn.Module, object]:
    """open_clip model `backbone` at `image_size` (height, width) and its tokenizer.

    `load_weights=False` builds the architecture `pretrained` implies (QuickGELU for OpenAI
    weights) without needing the weights: for checkpoints that carry all of them.
    """
    name = _known_name(backbone)
    if load_weights:
        tag_cfg, weights = _resolve_weights(name, pretrained)
    else:
        tag_cfg, weights = get_pretrained_cfg(name, pretrained.strip()) if pretrained.strip() else {}, None
    named_openai = not tag_cfg and "openai" in Path(weights or pretrained).name.lower()
    quick_gelu = bool(tag_cfg.get("quick_gelu")) or named_openai
    size = (int(image_size[0]), int(image_size[1]))
    resnet = isinstance(open_clip.get_model_config(name)["vision_cfg"].get("layers"), (list, tuple))
    with _quiet_open_clip():  # it warns "initialized randomly" although weights may follow
        model = open_clip.create_model(
            name,
            pretrained=None,
            force_quick_gelu=quick_gelu,
            # ModifiedResNet only builds square attention pools: build one, then resize it.
            force_image_size=size[0] if resnet else size,
        )
    if resnet:
        resize_attention_pool(model.visual, size)
    if weights is not None:
        _load_weights(model, weights, name)
    preprocess = tag_cfg or _sibling_preprocess(weights or pretrained.strip())
    if preprocess:
        set_model_preprocess_cfg(model, merge_preprocess_dict(get_model_preprocess_cfg(model), preprocess))
    return model, open_clip.get_tokenizer(name)


def _sibling_preprocess(weights: str) -> dict:
    """`preprocess_cfg` of the open_clip_config.json beside a local weights file ({} without one)."""
    if not weights or not os.path.isfile(weights):
        return {}
    path = Path(weights).with_name(SIBLING_CONFIG)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{path}: not a readable open_clip config (JSON)") from None
    cfg = data.get("preprocess_cfg", {}) if isinstance(data, dict) else {}
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: preprocess_cfg must be a JSON object")
    return cfg


def check_weights(backbone: str, pretrained: str = "") -> None:
    """Raise ModelError if `backbone` is unknown or its weights are not on this machine.

    The same checks create_clip runs first, without building the model (for forms).
    """
    _resolve_weights(_known_name(backbone), pretrained)


def resize_attention_pool(visual: ModifiedResNet, image_size: tuple[int, int]) -> None:
    """Fit a ModifiedResNet's attention pool to `image_size` (h, w), a (h/32, w/32) grid.

    A changed grid gets a fresh embedding drawn as open_clip initialises it; weights loaded
    afterwards (state dicts saved at any square size) are resized by a load hook.
    """
    pool: AttentionPool2d = visual.attnpool
    grid = (image_size[0] // 32, image_size[1] // 32)
    old = pool.positional_embedding
    if old.shape[0] != grid[0] * grid[1] + 1:
        fresh = torch.randn(grid[0] * grid[1] + 1, old.shape[1]) / old.shape[1] ** 0.5
        pool.positional_embedding = torch.nn.Parameter(fresh.to(old))
    visual.image_size = tuple(image_size)
    if not hasattr(pool, "handid_grid"):
        pool.register_load_state_dict_pre_hook(_resize_on_load)
    pool.handid_grid = grid


def resize_pool_embedding(embedding: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[1 + g*g, D] attention-pool position embedding -> [1 + grid_h*grid_w, D].

    The first row (the mean-pooled query token) is kept; the square spatial grid is resized
    bicubically, as open_clip does for ViT position embeddings.
    """
    token, spatial = embedding[:1], embedding[1:]
    side = math.isqrt(spatial.shape[0])
    if side * side != spatial.shape[0]:
        raise ModelError(f"cannot resize an attention-pool embedding of {spatial.shape[0]} positions: not a square grid")
    if (side, side) == tuple(grid):
        return embedding.clone()
    image = spatial.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    image = F.interpolate(image, size=tuple(grid), mode="bicubic", align_corners=False, antialias=True)
    spatial = image.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(embedding.dtype)
    return torch.cat([token, spatial], dim=0)


def _resize_on_load(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
    """load_state_dict pre-hook: fit an incoming square attention-pool embedding to this pool."""
    key = prefix + "positional_embedding"
    incoming = state_dict.get(key)
    own = module.positional_embedding
    if incoming is not None and incoming.shape != own.shape and incoming.shape[1:] == own.shape[1:]:
        state_dict[key] = resize_pool_embedding(incoming, module.handid_grid)


@contextlib.contextmanager
def _quiet_open_clip():
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _known_name(backbone: str) -> str:
    name = backbone.strip().replace("/", "-")
    models = open_clip.list_models()
    if name in models:
        return name
    close = difflib.get_close_matches(name, models, n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelError(
        f"unknown backbone {backbone!r}; {hint}open_clip knows {len(models)} names, e.g. {', '.join(_COMMON)}"
    )


def _resolve_weights(name: str, pretrained: str) -> tuple[dict, str | None]:
    """(open_clip tag config or {}, local weight file or None) for `pretrained`."""
    pretrained = pretrained.strip()
    if not pretrained:
        return {}, None
    if os.path.isfile(pretrained):
        return {}, pretrained
    tags = list_pretrained_tags_by_model(name)
    cfg = get_pretrained_cfg(name, pretrained)
    if cfg:
        return cfg, _cached_weights(name, pretrained, cfg)
    if pretrained.lower().endswith(_WEIGHT_SUFFIXES) or os.sep in pretrained:
        raise ModelError(f"weights file not found: {pretrained}")
    valid = ", ".join(tags) if tags else "none (use a local file or random init)"
    raise ModelError(f"unknown pretrained tag {pretrained!r} for {name}; valid tags: {valid}")


def _cached_weights(name: str, tag: str, cfg: dict) -> str:
    """Path of the tag's weights in the Hugging Face or OpenAI cache, never touching the network."""
    from huggingface_hub import try_to_load_from_cache

    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        candidates = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
        if filename.endswith((".bin", ".pth")):
            candidates.append(filename[:-4] + ".safetensors")
        for candidate in [*candidates, filename]:
            found = try_to_load_from_cache(repo, candidate)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        found = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        if found.is_file():
            return str(found)
    if os.environ.get(ALLOW_DOWNLOAD_ENV) == "1":
        try:
            return download_pretrained(cfg)
        except Exception as exc:  # network, hub and HTTP errors of every kind
            raise ModelError(f"downloading the {tag} weights of {name} failed: {exc}") from None
    raise ModelError(
        f"the {tag} weights of {name} are not available offline; pass a local file via "
        f"model.pretrained=/path/to/weights, put them in the Hugging Face cache (HF_HUB_CACHE), "
        f"or set {ALLOW_DOWNLOAD_ENV}=1 to download them"
    )


def _load_weights(model: torch.nn.Module, path: str, name: str) -> None:
    """Load a state dict strictly; a file that is not one, or does not fit, is a one-line ModelError."""
    try:
        open_clip.load_checkpoint(model, path, strict=True, weights_only=True)
    except Exception as exc:  # torch.load and safetensors raise many kinds for foreign files
        text = str(exc).strip()
        if "weights_only" in text or "pickle" in text.lower():
            raise ModelError(f"{path}: not a plain weights file (it holds pickled objects, which could run "
                             "code and are never loaded); save a state dict as .safetensors") from None
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        if isinstance(exc, (AssertionError, KeyError)) or (
                isinstance(exc, RuntimeError) and ("state_dict" in text or "size mismatch" in text)):
            raise ModelError(f"{path}: weights do not fit backbone {name} ({first})") from None
        raise ModelError(f"{path}: not an open_clip weights file for {name} ({first})") from None
