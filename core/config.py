"""Typed run configuration: nested dataclasses loaded from YAML presets plus dotted overrides.

Every knob is a dotted key (`loss.triplet.margin`); `--set KEY=VALUE` values are parsed as
YAML scalars. Unknown keys and bad values raise ConfigError with one line that lists what is
valid, before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from core.errors import ConfigError

Size = tuple[int, int]


@dataclass
class DataConfig:
    dataset: Literal["11k", "hd", "folder", "csv", "synthetic"] = "synthetic"
    root: str = "data/synthetic-11k"
    protocol: str = "dorsal_r"
    image_size: Size = (224, 224)  # (height, width)
    cache_dir: str = ".cache/images"
    # Synthetic data is generated into `root` when it is missing (demo, tests).
    synth_layout: Literal["11k", "hd"] = "11k"
    synth_identities: int = 24
    synth_size: Size = (300, 400)  # (height, width) of the generated photos
    synth_images_per_aspect: int = 4  # photos per person and aspect
    synth_seed: int = 0


@dataclass
class ModelConfig:
    backbone: str = "ViT-B-16"
    pretrained: str = ""  # open_clip tag, local weight file, or "" for random init
    init_from: str = ""  # run folder (its best checkpoint) or a .safetensors file
    feature: Literal["pre_bn", "post_bn"] = "pre_bn"  # the retrieval feature
    prompt: str = "a photo of the {aspect} hand of person {identity}"


@dataclass
class CEConfig:
    weight: float = 1.0
    label_smoothing: float = 0.0


@dataclass
class I2TConfig:
    weight: float = 0.0


@dataclass
class TripletConfig:
    weight: float = 0.0
    margin: float = 0.3
    mining: Literal["batch_hard", "semihard", "all"] = "batch_hard"


@dataclass
class CenterConfig:
    weight: float = 0.0
    lr: float = 0.5  # SGD learning rate of the centres


@dataclass
class ArcFaceConfig:
    weight: float = 0.0
    margin: float = 0.5  # radians
    scale: float = 30.0


@dataclass
class LossConfig:
    ce: CEConfig = field(default_factory=CEConfig)
    i2t: I2TConfig = field(default_factory=I2TConfig)
    triplet: TripletConfig = field(default_factory=TripletConfig)
    center: CenterConfig = field(default_factory=CenterConfig)
    arcface: ArcFaceConfig = field(default_factory=ArcFaceConfig)


@dataclass
class SamplerConfig:
    kind: Literal["random", "pk"] = "random"
    p: int = 16
    k: int = 4


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 5e-6  # backbone
    head_lr: float = 5e-4  # BNNeck classifier, ArcFace
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = 1
    step_size: int = 20
    gamma: float = 0.1
    grad_clip: float = 0.0  # 0 = off


@dataclass
class AugmentConfig:
    crop: Literal["resized", "pad", "none"] = "pad"
    crop_scale: float = 0.6  # smallest area fraction of random resized crop
    pad: int = 10
    flip: float = 0.5
    color_jitter: float = 0.2
    erasing: float = 0.5


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool = False
    channels_last: bool = True  # for convolutional backbones
    log_every: int = 10  # steps
    threads: int = 0  # CPU threads for torch; 0 = torch's default (1 is fastest for tiny models on a busy CPU)


@dataclass
class EvalConfig:
    every: int = 5  # epochs; 0 = only at epoch 0 and the end
    runs: int = 10
    flip: bool = True
    seed: int = 0
    batch_size: int = 256
    # k-reciprocal re-ranking (core.rerank): also report re-ranked metrics, beside the plain ones.
    rerank: bool = False
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    # Cross protocols: evaluate on another dataset/protocol than the one trained on.
    dataset: str = ""
    root: str = ""
    protocol: str = ""


@dataclass
class Config:
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_POSITIVE = {
    "data.synth_identities", "data.synth_images_per_aspect", "sampler.p", "sampler.k", "train.epochs", "train.batch_size",
    "train.log_every", "eval.runs", "eval.batch_size", "eval.rerank_k1", "eval.rerank_k2", "optim.step_size",
}
_NON_NEGATIVE = {
    "optim.lr", "optim.head_lr", "optim.weight_decay", "optim.momentum", "optim.warmup_epochs",
    "optim.grad_clip", "loss.ce.weight", "loss.i2t.weight", "loss.triplet.weight",
    "loss.triplet.margin", "loss.center.weight", "loss.center.lr", "loss.arcface.weight",
    "loss.arcface.margin", "loss.arcface.scale", "augment.pad", "eval.every", "train.threads",
}
_FRACTIONS = {"loss.ce.label_smoothing", "augment.flip", "augment.erasing", "augment.crop_scale",
              "augment.color_jitter", "eval.rerank_lambda"}


BASE_KEY = "base"  # a preset's top-level key naming the preset it extends


def keys(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every dotted key of a config class mapped to its type annotation."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(keys(hints[f.name], key + "."))
        else:
            out[key] = hints[f.name]
    return out


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Value converted to the annotated type, or ConfigError naming what is valid."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")
        return value
    if tp is Size or origin is tuple:
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        elif isinstance(value, str) and "x" in value:
            value = value.lower().split("x", 1)  # "256x128" reads as HEIGHTxWIDTH, as in re-id papers
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"{key}={value!r} is not valid; give one number, [height, width] or HEIGHTxWIDTH")
        size = tuple(_int(key, v) for v in value)
        if min(size) <= 0:
            raise ConfigError(f"{key}={value!r} is not valid; sizes must be positive")
        return size
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={value!r} is not valid; expected true or false")
    if tp is int:
        return _int(key, value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key}={value!r} is not valid; expected a number")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not valid; expected a number") from None
    if tp is str:
        return "" if value is None else str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
        raise ConfigError(f"{key}={value!r} is not valid; expected a whole number")
    return int(value)


def _check_ranges(flat: dict[str, Any]) -> None:
    for key, value in flat.items():
        if key in _POSITIVE and value <= 0:
            raise ConfigError(f"{key}={value} is not valid; it must be positive")
        if key in _NON_NEGATIVE and value < 0:
            raise ConfigError(f"{key}={value} is not valid; it must be zero or more")
        if key in _FRACTIONS and not 0 <= value <= 1:
            raise ConfigError(f"{key}={value} is not valid; it must lie in [0, 1]")
    loss_weights = [flat[f"loss.{name}.weight"] for name in ("ce", "i2t", "triplet", "center", "arcface")]
    if sum(loss_weights) <= 0:
        raise ConfigError("loss: every loss weight is 0; give at least one of loss.ce/i2t/triplet/center/arcface a weight")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted.key: value}."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} is not valid; expected KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def from_flat(flat: dict[str, Any]) -> Config:
    """Config from {dotted.key: value}; unknown keys and bad values raise ConfigError."""
    valid = keys()
    unknown = sorted(set(flat) - set(valid))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}")
    values = {k: _coerce(k, valid[k], v) for k, v in flat.items()}
    cfg = Config()
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = getattr(node, p)
        setattr(node, leaf, value)
    _check_ranges(flatten(to_dict(cfg)))
    return cfg


def read_preset(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A preset file as {dotted.key: value}, its `base:` preset (relative to the file) merged under it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: `base:` presets form a cycle ({' -> '.join(p.name for p in _seen)} -> {path.name})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    base = data.pop(BASE_KEY, None)
    flat: dict[str, Any] = {}
    if base:
        flat = read_preset(path.parent / str(base), (*_seen, path.resolve()))
    flat.update(flatten(data))
    return flat


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Preset YAML (optional, may name a `base:` preset) + overrides (`KEY=VALUE` strings or a dotted dict) -> Config."""
    flat: dict[str, Any] = read_preset(path) if path is not None else {}
    if isinstance(overrides, dict):
        flat.update(overrides)
    else:
        flat.update(parse_override(o) for o in overrides or [])
    return from_flat(flat)


def to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain dict (tuples as lists), the form written to config.yaml."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, tuple):
            return list(v)
        return v
    return plain(dataclasses.asdict(cfg))


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
