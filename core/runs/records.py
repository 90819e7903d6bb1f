"""The typed records of a run folder: one schema each, read and written only through here.

- `Status` (status.json): the run's lifecycle state and where it stands.
- `EvalRecord` (eval.json): its evaluations: `epoch0` (before training), `final` (the last
  epoch), `selected` (the epoch with the best validation mAP: model selection never looks at the
  test side), each a `Result` with its test and validation figures, and `cross` results on
  other protocols keyed `dataset/protocol`.
- `CheckpointMeta`: what a checkpoint needs to be rebuilt and evaluated without its run.
- `Embeddings` (embeddings.npz): query and gallery features with each image's label, path,
  identity and aspect.

A file that exists but does not hold its record (bad JSON, wrong types, truncated) raises
`RecordError` naming the file and the field, so one damaged run never hides the others.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.errors import DataError

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "stopped")
FINAL_STATES = ("succeeded", "failed", "cancelled", "stopped")
ACTIVE_STATES = ("queued", "running")
KINDS = ("train", "evaluate")
FEATURES = ("pre_bn", "post_bn")
Metrics = dict[str, float | None]


class RecordError(DataError):
    """A run-folder file that exists but does not hold its record."""


def _fail(path: Path | str, what: str) -> RecordError:
    return RecordError(f"{path}: {what}")


def read_json(path: Path) -> Any | None:
    """A JSON file's value; None when the file is missing; RecordError when it is not JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _fail(path, f"unreadable ({exc.strerror or exc})") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(path, "not valid JSON (damaged or half-written)") from None


def _mapping(value: Any, path: Path | str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _number(value: Any, path: Path | str, what: str, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"{what} must be a number, got {value!r}")
    return float(value)


def _typed(value: Any, kind: type, path: Path | str, what: str) -> Any:
    if kind is float:
        return _number(value, path, what)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise _fail(path, f"{what} must be a whole number, got {value!r}")
        return int(value)
    if kind is str:
        if not isinstance(value, str):
            raise _fail(path, f"{what} must be text, got {value!r}")
        return value
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(path, f"{what} must be a list of text, got {value!r}")
        return list(value)
    raise TypeError(kind)


def metrics(value: Any, path: Path | str, what: str) -> Metrics:
    """A {name: number or null} mapping (non-finite numbers become null)."""
    out: Metrics = {}
    for key, number in _mapping(value, path, what).items():
        number = _number(number, path, f"{what}.{key}")
        out[str(key)] = None if number is None or not math.isfinite(number) else number
    return out


def _curve(value: Any, path: Path | str, what: str) -> dict[str, list[float]]:
    """A curve: {axis: [numbers]} (e.g. fpr and tpr of a ROC)."""
    out = {}
    for axis, values in _mapping(value, path, what).items():
        if not isinstance(values, list):
            raise _fail(path, f"{what}.{axis} must be a list of numbers")
        out[str(axis)] = [_number(v, path, f"{what}.{axis}", optional=False) for v in values]
    return out


def finite(values: dict[str, Any]) -> Metrics:
    """Numbers of a dict as floats, non-finite ones as None (JSON has no NaN)."""
    return {k: (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in values.items()}


def _fields_of(cls: type, data: dict[str, Any], path: Path | str, what: str) -> dict[str, Any]:
    """The known fields of `cls` in `data`, type-checked by their annotations' plain kinds."""
    kinds = {f.name: f.metadata.get("kind") for f in dataclasses.fields(cls)}
    out = {}
    for name, kind in kinds.items():
        if name not in data or kind is None:
            continue
        value = data[name]
        optional = name in cls.OPTIONAL if hasattr(cls, "OPTIONAL") else False
        out[name] = None if value is None and optional else _typed(value, kind, path, f"{what}{name}")
    return out


def _kind(kind: type, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})


@dataclass
class Status:
    """status.json: where a run's life stands. The folder, not the queue, is the record of it."""

    OPTIONAL = ("created", "started", "ended", "updated", "pid", "error", "sweep_id", "study_id", "arm",
                "after", "target", "seed")

    state: str = _kind(str, "queued")
    kind: str = _kind(str, "train")
    name: str = _kind(str, "")
    created: float | None = _kind(float)
    started: float | None = _kind(float)
    ended: float | None = _kind(float)
    updated: float | None = _kind(float)
    pid: int | None = _kind(int)
    attempt: int = _kind(int, 0)
    epoch: float = _kind(float, 0.0)  # epochs completed
    epochs: int = _kind(int, 0)
    start_epoch: float = _kind(float, 0.0)  # where this attempt started (for its pace)
    error: str | None = _kind(str)
    sweep_id: str | None = _kind(str)
    study_id: str | None = _kind(str)
    arm: str | None = _kind(str)
    seed: int | None = _kind(int)
    after: str | None = _kind(str)
    target: str | None = _kind(str)  # an evaluation job: the run it evaluates

    @classmethod
    def from_json(cls, data: Any, path: Path | str) -> "Status":
        status = cls(**_fields_of(cls, _mapping(data, path, "status"), path, ""))
        if status.state not in STATES:
            raise _fail(path, f"state {status.state!r} is not one of {', '.join(STATES)}")
        if status.kind not in KINDS:
            raise _fail(path, f"kind {status.kind!r} is not one of {', '.join(KINDS)}")
        return status

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def progress(self) -> float:
        """0..1: 1 once succeeded, else epochs completed over epochs."""
        if self.state == "succeeded":
            return 1.0
        return min(self.epoch / self.epochs, 1.0) if self.epochs else 0.0


@dataclass
class Result:
    """One evaluation: figures on the test side (mean/std over the protocol's runs) and on the
    validation split, optional re-ranked figures beside the plain ones, and curves (ROC, DET)."""

    epoch: int = 0
    test: Metrics = field(default_factory=dict)
    val: Metrics = field(default_factory=dict)
    rerank: Metrics = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, path: Path | str, what: str) -> "Result":
        data = _mapping(data, path, what)
        epoch = _typed(data.get("epoch", 0), int, path, f"{what}.epoch")
        curves = {name: _curve(curve, path, f"{what}.curves.{name}")
                  for name, curve in _mapping(data.get("curves", {}), path, f"{what}.curves").items()}
        return cls(epoch, *(metrics(data.get(k, {}), path, f"{what}.{k}") for k in ("test", "val", "rerank")), curves)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CrossResult(Result):
    """A checkpoint evaluated on another protocol (`python -m core.evaluate`)."""

    dataset: str = ""
    root: str = ""
    protocol: str = ""
    runs: int = 0
    flip: bool = True
    checkpoint: str = ""

    @classmethod
    def from_json(cls, data: Any, path: Path | str, what: str) -> "CrossResult":
        base = Result.from_json(data, path, what)
        data = _mapping(data, path, what)
        extra = {k: _typed(data.get(k, ""), str, path, f"{what}.{k}") for k in ("dataset", "root", "protocol", "checkpoint")}
        extra["runs"] = _typed(data.get("runs", 0), int, path, f"{what}.runs")
        flip = data.get("flip", True)
        if not isinstance(flip, bool):
            raise _fail(path, f"{what}.flip must be true or false")
        return cls(**dataclasses.asdict(base), **extra, flip=flip)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.protocol}"


@dataclass
class EvalRecord:
    """eval.json: every evaluation of a run (see the module docstring)."""

    dataset: str = ""
    root: str = ""
    protocol: str = ""
    runs: int = 0
    selection: str = "val mAP"  # what `selected` maximised
    epoch0: Result | None = None
    final: Result | None = None
    selected: Result | None = None
    cross: dict[str, CrossResult] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, path: Path | str) -> "EvalRecord":
        data = _mapping(data, path, "eval record")
        fields = {k: _typed(data.get(k, ""), str, path, k) for k in ("dataset", "root", "protocol")}
        fields["selection"] = _typed(data.get("selection", "val mAP"), str, path, "selection")
        fields["runs"] = _typed(data.get("runs", 0), int, path, "runs")
        for name in ("epoch0", "final", "selected"):
            fields[name] = None if data.get(name) is None else Result.from_json(data[name], path, name)
        cross = _mapping(data.get("cross", {}), path, "cross")
        fields["cross"] = {str(k): CrossResult.from_json(v, path, f"cross.{k}") for k, v in cross.items()}
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def key(self) -> str:
        """`dataset/protocol` of the run's own evaluation."""
        return f"{self.dataset}/{self.protocol}"


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint needs to be rebuilt and evaluated without its run's config."""

    backbone: str
    image_size: tuple[int, int]  # (height, width)
    class_names: list[str]
    feature: Literal["pre_bn", "post_bn"] = "pre_bn"
    pretrained: str = ""
    aspects: list[str] = field(default_factory=list)
    prompt: str = ""
    epoch: int = 0
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    interpolation: str = "bicubic"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_json(cls, data: Any, path: Path | str, max_side: int = 4096) -> "CheckpointMeta":
        data = _mapping(data, path, "checkpoint metadata")
        missing = [k for k in ("backbone", "image_size", "class_names") if k not in data]
        if missing:
            raise _fail(path, f"checkpoint metadata lacks {', '.join(missing)}")
        size = data["image_size"]
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= max_side for v in size)):
            raise _fail(path, f"checkpoint metadata image_size must be [height, width] in pixels, got {size!r}")
        feature = data.get("feature", "pre_bn")
        if feature not in FEATURES:
            raise _fail(path, f"checkpoint metadata feature {feature!r} is not one of {', '.join(FEATURES)}")
        triples = {k: cls._triple(data, k, path) for k in ("mean", "std") if k in data}
        return cls(
            backbone=_typed(data["backbone"], str, path, "backbone"), image_size=(size[0], size[1]),
            class_names=_typed(data["class_names"], list, path, "class_names"), feature=feature,
            pretrained=_typed(data.get("pretrained", ""), str, path, "pretrained"),
            aspects=_typed(data.get("aspects", []), list, path, "aspects"),
            prompt=_typed(data.get("prompt", ""), str, path, "prompt"),
            epoch=_typed(data.get("epoch", 0), int, path, "epoch"),
            interpolation=_typed(data.get("interpolation", "bicubic"), str, path, "interpolation"), **triples,
        )

    @staticmethod
    def _triple(data: dict, key: str, path: Path | str) -> tuple[float, float, float]:
        value = data[key]
        if not isinstance(value, list) or len(value) != 3:
            raise _fail(path, f"checkpoint metadata {key} must be three numbers, got {value!r}")
        return tuple(_number(v, path, key, optional=False) for v in value)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(image_size=list(self.image_size), mean=list(self.mean), std=list(self.std),
                    num_classes=self.num_classes)
        return data


SPLITS = ("query", "gallery")
FIELDS = ("features", "labels", "paths", "identities", "aspects")


def no_embeddings(path: str | Path) -> DataError:
    """The error for a run without embeddings.npz: it is written by the final evaluation."""
    return DataError(f"{path}: no embeddings file yet (the run writes it after its final evaluation)")


@dataclass(frozen=True)
class Embeddings:
    """Query and gallery features of one evaluation, with each image's label, path, identity and aspect."""

    query_features: np.ndarray
    query_labels: np.ndarray
    query_paths: np.ndarray
    query_identities: np.ndarray
    query_aspects: np.ndarray
    gallery_features: np.ndarray
    gallery_labels: np.ndarray
    gallery_paths: np.ndarray
    gallery_identities: np.ndarray
    gallery_aspects: np.ndarray

    @classmethod
    def from_rows(cls, features: np.ndarray, rows: pd.DataFrame, query: np.ndarray, gallery: np.ndarray) -> "Embeddings":
        """The record of one query/gallery draw: `features` and `rows` (path, identity, aspect, label) of a
        protocol's test side, `query` and `gallery` positions into both."""
        arrays = {}
        for split, positions in zip(SPLITS, (query, gallery)):
            part = rows.iloc[positions]
            arrays[f"{split}_features"] = np.asarray(features[positions], dtype=np.float32)
            arrays[f"{split}_labels"] = part["label"].to_numpy(dtype=np.int64)
            arrays[f"{split}_paths"] = part["path"].to_numpy(dtype=str)
            arrays[f"{split}_identities"] = part["identity"].to_numpy(dtype=str)
            arrays[f"{split}_aspects"] = part["aspect"].to_numpy(dtype=str)
        return cls(**arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Embeddings":
        """Read an embeddings.npz (no pickles); a missing, unreadable or incomplete file raises DataError."""
        path = Path(path)
        names = [f"{split}_{field}" for split in SPLITS for field in FIELDS]
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [n for n in names if n not in data.files]
                if missing:
                    raise RecordError(f"{path}: embeddings file lacks {', '.join(missing)}")
                arrays = {n: data[n] for n in names}
        except FileNotFoundError:
            raise no_embeddings(path) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RecordError(f"{path}: unreadable embeddings file ({exc or type(exc).__name__})") from None
        emb = cls(**arrays)
        emb.check(path)
        return emb

    def check(self, path: str | Path) -> None:
        """RecordError naming `path` unless features are 2-D, per-image arrays match them in length, and the
        gallery is not empty."""
        for split in SPLITS:
            features = getattr(self, f"{split}_features")
            if features.ndim != 2:
                raise RecordError(f"{path}: {split}_features must be 2-D, got shape {features.shape}")
            for name in FIELDS[1:]:
                if len(getattr(self, f"{split}_{name}")) != len(features):
                    raise RecordError(f"{path}: {split}_{name} has {len(getattr(self, f'{split}_{name}'))} entries "
                                      f"for {len(features)} {split} features")
        if len(self.gallery_features) == 0:
            raise RecordError(f"{path}: the gallery is empty")

    def arrays(self) -> dict[str, np.ndarray]:
        """The embeddings.npz arrays by name."""
        return {f"{split}_{name}": np.asarray(getattr(self, f"{split}_{name}")) for split in SPLITS for name in FIELDS}

    @property
    def features(self) -> np.ndarray:
        """Query then gallery features, one row per point of `points()`."""
        return np.concatenate([self.query_features, self.gallery_features]).astype(np.float32, copy=False)

    def points(self) -> pd.DataFrame:
        """One row per image, query rows first: split, index (within its split), label, identity, aspect, path."""
        parts = []
        for split in SPLITS:
            labels = getattr(self, f"{split}_labels")
            parts.append(pd.DataFrame({
                "split": split,
                "index": np.arange(len(labels)),
                "label": labels,
                "identity": getattr(self, f"{split}_identities").astype(str),
                "aspect": getattr(self, f"{split}_aspects").astype(str),
                "path": getattr(self, f"{split}_paths").astype(str),
            }))
        return pd.concat(parts, ignore_index=True)
