"""Typed run configuration: nested dataclasses loaded from YAML presets plus dotted overrides.

Every knob is a dotted key (`loss.triplet.margin`); `--set KEY=VALUE` values are parsed as
YAML scalars. Each knob declares its own checks (`knob(..., check="fraction", at_most=...)`),
so unknown keys and bad values raise ConfigError with one line naming the key and what is
valid, before any work starts. The `loss` section has one entry per registered loss
(core.losses.registry), and `data.dataset` takes the registered layouts (core.data.layouts):
both registries are looked up when a config is built, not when this module is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from core.data.target import Target
from core.errors import ConfigError

Size = tuple[int, int]
MAX_IMAGE_SIDE = 2048
CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "it must be positive"),
    "non_negative": (lambda v: v >= 0, "it must be zero or more"),
    "fraction": (lambda v: 0 <= v <= 1, "it must lie in [0, 1]"),
}


def knob(default: Any, *, check: str | None = None, at_most: float | None = None,
         choices: Callable[[], list[str]] | None = None, label: str = "",
         aliases: dict[bool, Any] | None = None) -> Any:
    """A config field with its checks: a range (`CHECKS`), an upper bound, or choices looked up at
    validation time (a registry); `label` names it in forms; `aliases` map the booleans YAML reads
    (for `off`, `on`, or an older boolean form of the key) to the value they mean."""
    if check is not None and check not in CHECKS:
        raise ValueError(f"unknown check {check!r}")
    return field(default=default, metadata={"check": check, "at_most": at_most, "choices": choices, "label": label,
                                            "aliases": aliases or {}})


def _dataset_names() -> list[str]:
    from core.data.layouts import dataset_names

    return dataset_names()


def _synthetic_layouts() -> list[str]:
    from core.data.layouts import synthetic_layouts

    return synthetic_layouts()


@dataclass
class DataConfig:
    dataset: str = knob("synthetic", choices=_dataset_names)
    root: str = "data/synthetic-11k"
    protocol: str = "dorsal_r"
    image_size: Size = knob((224, 224), at_most=MAX_IMAGE_SIDE)  # (height, width)
    cache_dir: str = ".cache/images"
    # Synthetic data is generated into `root` when it is missing (demo, tests).
    synth_layout: str = knob("11k", choices=_synthetic_layouts)
    synth_identities: int = knob(24, check="positive", at_most=5000)
    synth_size: Size = knob((300, 400), at_most=MAX_IMAGE_SIDE)  # (height, width) of the generated photos
    synth_images_per_aspect: int = knob(4, check="positive", at_most=1000)  # photos per person and aspect
    synth_seed: int = knob(0, check="non_negative")


@dataclass
class ModelConfig:
    backbone: str = "ViT-B-16"
    pretrained: str = ""  # open_clip tag, local weight file, or "" for random init
    init_from: str = ""  # run folder (its best checkpoint) or a .safetensors file
    feature: Literal["pre_bn", "post_bn"] = "pre_bn"  # the retrieval feature
    prompt: str = "a photo of the {aspect} hand of person {identity}"


def loss_config_class() -> type:
    """The `loss` section's dataclass: one field per registered loss, rebuilt when the registry grows."""
    from core.losses import registry

    entries = registry.entries()
    names = tuple(entries)
    if _LOSS_CLASS.get("names") != names:
        fields = [(name, entry.config, field(default_factory=entry.config)) for name, entry in entries.items()]
        _LOSS_CLASS.update(names=names, cls=dataclasses.make_dataclass("LossConfig", fields))
    return _LOSS_CLASS["cls"]


_LOSS_CLASS: dict[str, Any] = {}


def LossConfig() -> Any:  # noqa: N802  (reads as the class it builds)
    """A default loss section (every registered loss at its defaults)."""
    return loss_config_class()()


@dataclass
class SamplerConfig:
    kind: Literal["random", "pk"] = "random"
    p: int = knob(16, check="positive", at_most=4096)
    k: int = knob(4, check="positive", at_most=1024)


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = knob(5e-6, check="non_negative", at_most=10.0)  # backbone
    head_lr: float = knob(5e-4, check="non_negative", at_most=10.0)  # BNNeck classifier, ArcFace
    weight_decay: float = knob(1e-4, check="non_negative", at_most=10.0)
    momentum: float = knob(0.9, check="fraction")
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = knob(1, check="non_negative")
    step_size: int = knob(20, check="positive")
    gamma: float = knob(0.1, check="fraction")
    grad_clip: float = knob(0.0, check="non_negative")  # 0 = off


@dataclass
class AugmentConfig:
    crop: Literal["resized", "pad", "none"] = "pad"
    crop_scale: float = knob(0.6, check="fraction")  # smallest area fraction of random resized crop
    pad: int = knob(10, check="non_negative", at_most=MAX_IMAGE_SIDE)
    flip: float = knob(0.5, check="fraction")
    color_jitter: float = knob(0.2, check="fraction")
    erasing: float = knob(0.5, check="fraction")


@dataclass
class TrainConfig:
    epochs: int = knob(50, check="positive", at_most=100_000)
    batch_size: int = knob(64, check="positive", at_most=65_536)
    seed: int = knob(0, check="non_negative")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA
    # torch.compile: off, model (the forward only) or step (augmentation, forward, losses, backward
    # and updates; CUDA graphs on CUDA); core.training.step. YAML's false/true read as off/model.
    compile: Literal["off", "model", "step"] = knob("off", aliases={False: "off", True: "model"})
    compile_backend: Literal["inductor", "aot_eager", "eager"] = "inductor"
    channels_last: bool = True  # for convolutional backbones
    log_every: int = knob(10, check="positive")  # steps
    checkpoint_every: int = knob(1, check="positive")  # epochs between last.safetensors saves (resume points)
    # CPU threads for torch; 0 = torch's default (1 is fastest for tiny models on a busy CPU)
    threads: int = knob(0, check="non_negative", at_most=1024)


@dataclass
class EvalConfig:
    every: int = knob(5, check="non_negative")  # epochs; 0 = only at epoch 0 and the end
    runs: int = knob(10, check="positive", at_most=1000)
    flip: bool = True
    seed: int = knob(0, check="non_negative")
    batch_size: int = knob(256, check="positive", at_most=65_536)
    # k-reciprocal re-ranking (core.rerank): also report re-ranked metrics, beside the plain ones.
    rerank: bool = False
    rerank_k1: int = knob(20, check="positive", at_most=1000)
    rerank_k2: int = knob(6, check="positive", at_most=1000)
    rerank_lambda: float = knob(0.3, check="fraction")
    # Cross protocols: evaluate on another dataset/protocol than the one trained on.
    dataset: str = ""
    root: str = ""
    protocol: str = ""


@dataclass
class PromptsConfig:
    """Learned identity prompts (CLIP-ReID's first stage): with both encoders frozen, per-identity
    tokens in `template` are learned for `epochs` before the image encoder trains, and replace the
    fixed prompts (model.prompt) of the image-to-text loss. 0 epochs = fixed prompts. Defaults:
    CLIP-ReID's stage 1 (4 tokens, Adam at 3.5e-4, 5 warm-up epochs, batch 64; it runs 120 epochs)."""

    epochs: int = knob(0, check="non_negative", at_most=100_000, label="prompt epochs")
    tokens: int = knob(4, check="positive", at_most=32, label="tokens per identity")
    template: str = "a photo of a {tokens} hand."
    lr: float = knob(3.5e-4, check="positive", at_most=10.0, label="prompt learning rate")
    weight_decay: float = knob(1e-4, check="non_negative", at_most=10.0)
    warmup_epochs: int = knob(5, check="non_negative")
    batch_size: int = knob(64, check="positive", at_most=65_536)


@dataclass
class Config:
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Any = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


BASE_KEY = "base"  # a preset's top-level key naming the preset it extends


def train_target(cfg: Config) -> Target:
    """The dataset, root and protocol a run trains (and validates) on."""
    return Target(cfg.data.dataset, cfg.data.root, cfg.data.protocol)


def eval_target(cfg: Config) -> Target:
    """eval.dataset/root/protocol where set (cross protocols), else the training data's."""
    if cfg.eval.dataset and cfg.eval.dataset != cfg.data.dataset and not cfg.eval.root:
        raise ConfigError(f"eval.dataset={cfg.eval.dataset} differs from data.dataset={cfg.data.dataset}; "
                          "set eval.root to its folder too")
    return Target(cfg.eval.dataset or cfg.data.dataset, cfg.eval.root or cfg.data.root,
                  cfg.eval.protocol or cfg.data.protocol)


@dataclass(frozen=True)
class Key:
    """One dotted config key: its type and its declared checks."""

    type: Any
    check: str | None = None
    at_most: float | None = None
    choices: Callable[[], list[str]] | None = None
    label: str = ""
    aliases: dict[bool, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def _type_hints(cls: type) -> dict[str, Any]:
    """A section class's resolved annotations (resolving them dominated reading hundreds of configs)."""
    return typing.get_type_hints(cls)


def _section_fields(section: Any) -> list[tuple[dataclasses.Field, Any]]:
    hints = _type_hints(type(section))
    return [(f, hints[f.name]) for f in dataclasses.fields(section)]


def key_specs(section: Any | None = None, prefix: str = "") -> dict[str, Key]:
    """Every dotted key of a config (default: `Config()`) with its type and checks."""
    section = Config() if section is None else section
    out: dict[str, Key] = {}
    for f, tp in _section_fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            out.update(key_specs(value, f"{prefix}{f.name}."))
        else:
            meta = f.metadata
            out[f"{prefix}{f.name}"] = Key(tp, meta.get("check"), meta.get("at_most"), meta.get("choices"),
                                           meta.get("label", ""), meta.get("aliases", {}))
    return out


def keys() -> dict[str, Any]:
    """Every dotted key of the config mapped to its type annotation."""
    return {key: spec.type for key, spec in key_specs().items()}


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Value converted to the annotated type, or ConfigError naming what is valid."""
    origin = get_origin(tp)
    if origin is Literal:
        return _choice(key, value, list(get_args(tp)))
    if tp is Size or origin is tuple:
        return _size(key, value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={value!r} is not valid; expected true or false")
    if tp is int:
        return _int(key, value)
    if tp is float:
        return _float(key, value)
    if tp is str:
        return "" if value is None else str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def _choice(key: str, value: Any, choices: list) -> Any:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")
    return value


def _size(key: str, value: Any) -> tuple[int, int]:
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


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ConfigError(f"{key}={value!r} is not valid; expected a whole number")
    return int(value)


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}={value!r} is not valid; expected a number")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not valid; expected a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key}={value!r} is not valid; expected a finite number")
    return number


def _check(key: str, spec: Key, value: Any) -> None:
    """The key's declared range, bound and choices."""
    if spec.choices is not None:
        _choice(key, value, spec.choices())
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if spec.check is not None:
            ok, rule = CHECKS[spec.check]
            if not ok(number):
                raise ConfigError(f"{key}={_shown(value)} is not valid; {rule}")
        if spec.at_most is not None and number > spec.at_most:
            raise ConfigError(f"{key}={_shown(value)} is not valid; it must be at most {spec.at_most:g}")


def _shown(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _check_losses(cfg: Config) -> None:
    from core.losses import registry

    if not registry.active(cfg.loss):
        names = "/".join(registry.entries())
        raise ConfigError(f"loss: every loss weight is 0; give at least one of loss.{names} a weight")


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
    cfg = Config()
    specs = key_specs(cfg)
    unknown = sorted(set(flat) - set(specs))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; valid keys: {', '.join(sorted(specs))}")
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = getattr(node, p)
        if isinstance(value, bool) and value in specs[key].aliases:
            value = specs[key].aliases[value]
        setattr(node, leaf, _coerce(key, specs[key].type, value))
    for key, value in flatten(to_dict(cfg)).items():
        _check(key, specs[key], tuple(value) if isinstance(value, list) else value)
    _check_losses(cfg)
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
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
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
