"""Checkpoints as safetensors only: loading one can never run code.

- `save_model` / `load_model_state` / `load_metadata`: model weights plus their metadata record
  (core.runs.CheckpointMeta: backbone, image size, class names, preprocessing, ...). The frozen
  text encoder is left out: it is never trained, its work is kept in the prompt classifier's
  buffer, and it is a large share of a CLIP model. `HandIDModel.load_state_dict` accepts such a
  state strictly. `save_model(..., state=...)` stores a training state (optimizer, epoch) in the
  same file, so weights and the state to resume them are one unit that a kill cannot tear;
  `load_training_state` reads it back.
- `load_checkpoint_model`: a model rebuilt from a checkpoint alone, for evaluation and export.
- `init_from`: start a model from another run's weights (image encoder and the heads that fit).
- `save_tensors` / `load_tensors`: any nested dict/list/tuple of tensors and plain values (an
  optimizer or scheduler state_dict) as flat dotted tensor keys plus a JSON skeleton, so resume
  never unpickles.

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.errors import HandIDError, ModelError
from core.model.handid import is_text_encoder_key
from core.runs.records import CheckpointMeta

_META_KEY = "handid"
_STRUCTURE_KEY = "structure"
_STATE_PREFIX = "__state__."
_HEAD_PREFIXES = ("neck.",)
TEXT_CLASSIFIER_PREFIX = "text_classifier."


def save_model(model: torch.nn.Module, path: str | Path, meta: CheckpointMeta, state: Any = None) -> None:
    """Weights of `model` (without the frozen text encoder), their metadata and, optionally, a
    training state (tensors and plain values) to one .safetensors file."""
    tensors = {k: v for k, v in model.state_dict().items() if not is_text_encoder_key(k)}
    header = {_META_KEY: json.dumps(meta.to_json())}
    if state is not None:
        state_tensors: dict[str, torch.Tensor] = {}
        header[_STRUCTURE_KEY] = json.dumps(_encode(state, [], state_tensors))
        tensors.update({_STATE_PREFIX + k: v for k, v in state_tensors.items()})
    _write(tensors, path, header)


def load_model_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The model weights stored by `save_model`, on the CPU (a training state stored beside them is not read)."""
    return _load(path, lambda key: not key.startswith(_STATE_PREFIX))


def load_training_state(path: str | Path) -> Any | None:
    """The training state stored by `save_model(..., state=...)`, None when it holds none."""
    header = _header(path)
    if _STRUCTURE_KEY not in header:
        return None
    tensors = _load(path, lambda key: key.startswith(_STATE_PREFIX))
    return _decode(json.loads(header[_STRUCTURE_KEY]), {k[len(_STATE_PREFIX):]: v for k, v in tensors.items()})


def _load(path: str | Path, wanted) -> dict[str, torch.Tensor]:
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys() if wanted(key)}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelError(f"{path}: not a readable safetensors checkpoint ({exc})") from None


def load_metadata(path: str | Path) -> CheckpointMeta:
    """The metadata record stored by `save_model` (reads the header only)."""
    header = _header(path)
    try:
        data = json.loads(header.get(_META_KEY, "{}"))
    except json.JSONDecodeError:
        raise ModelError(f"{path}: checkpoint metadata is not valid JSON") from None
    try:
        return CheckpointMeta.from_json(data, path)
    except HandIDError as exc:
        raise ModelError(str(exc)) from None


def load_checkpoint_model(path: str | Path) -> tuple[torch.nn.Module, CheckpointMeta]:
    """A model rebuilt from a checkpoint's metadata with its weights (without the text classifier,
    which retrieval does not use), and the metadata. Its preprocessing is the checkpoint's."""
    from core.model.backbone import create_clip
    from core.model.handid import HandIDModel
    from core.model.preprocess import Preprocess

    meta = load_metadata(path)
    clip, tokenizer = create_clip(meta.backbone, meta.pretrained, meta.image_size,
                                  load_weights=False)  # the checkpoint holds every image-side weight
    model = HandIDModel(clip, tokenizer, meta.num_classes, None)
    model.preprocess = Preprocess(meta.mean, meta.std, meta.interpolation)
    state = {k: v for k, v in load_model_state(path).items() if not k.startswith(TEXT_CLASSIFIER_PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {meta.backbone} ({str(exc).splitlines()[0]})") from None
    return model, meta


def init_from(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy the image encoder (`clip.visual.*`) and the BNNeck tensors whose shapes match.

    The text encoder and the prompt classifier are never touched (they belong to this model's
    identities); a classifier for other identities (other shape) keeps its fresh init.
    Returns (loaded keys, skipped keys).
    """
    own = model.state_dict()
    loaded, skipped = [], []
    for key, value in state.items():
        wanted = key.startswith("clip.visual.") or key.startswith(_HEAD_PREFIXES)
        fits = key in own and own[key].shape == value.shape
        (loaded if wanted and fits else skipped).append(key)
    if not any(k.startswith("clip.visual.") for k in loaded):
        raise ModelError("init_from: none of the checkpoint's image-encoder weights fit this model (another backbone?)")
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    return loaded, skipped


def save_tensors(obj: Any, path: str | Path) -> None:
    """A nested structure of tensors and JSON values (e.g. optimizer.state_dict()) to safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(obj, [], tensors)
    _write(tensors, path, {_STRUCTURE_KEY: json.dumps(skeleton)})


def load_tensors(path: str | Path) -> Any:
    """The structure stored by `save_tensors`, tensors on the CPU, int keys and tuples restored."""
    header = _header(path)
    if _STRUCTURE_KEY not in header:
        raise ModelError(f"{path}: not a tensor-state file written by save_tensors")
    return _decode(json.loads(header[_STRUCTURE_KEY]), _load(path, lambda key: True))


def _encode(obj: Any, where: list[str], tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = ".".join(where) or "value"
        while key in tensors:
            key += "_"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        items = [(k, _encode(v, [*where, str(k)], tensors)) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k, _ in items):
            return dict(items)
        return {"__items__": [[k, v] for k, v in items]}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, [*where, str(i)], tensors) for i, v in enumerate(obj)]
        return {"__tuple__": values} if isinstance(obj, tuple) else values
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {'.'.join(where) or 'top level'} in safetensors")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _write(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """save_file with CPU, contiguous tensors (shared storage cloned), renamed into place."""
    plain: dict[str, torch.Tensor] = {}
    storages: set[tuple[str, int]] = set()
    for key, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        storage = (str(tensor.device), tensor.untyped_storage().data_ptr())
        if storage in storages and tensor.numel():
            tensor = tensor.clone()
        storages.add((str(tensor.device), tensor.untyped_storage().data_ptr()))
        plain[key] = tensor
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(plain, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except Exception as exc:  # a full disk surfaces as SafetensorError or OSError
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write checkpoint {path}: {exc}") from None


def _check_file(path: str | Path) -> None:
    if not Path(path).is_file():
        raise ModelError(f"checkpoint not found: {path}")


def _header(path: str | Path) -> dict[str, str]:
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
