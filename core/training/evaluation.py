"""Retrieval evaluation of a model on a protocol's test side, R query/gallery runs.

Test features are extracted once per evaluation over `protocol.test` (with the flip
test-time augmentation: the features of an image and of its mirror image summed, then
L2-normalised) and sliced per run. Metrics are averaged over runs (mean and `_std`), and the
feature statistics (intra, inter, ratio, silhouette) describe the whole test set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.config import DataConfig
from core.data.augment import eval_batch, hflip
from core.data.protocols import Protocol
from core.metrics import feature_statistics, mean_std, retrieval_metrics
from core.training.data import Split, load_protocol, load_split
from core.training.targets import EvalTarget

RANKS = (1, 5, 10, 20)
TEXT_COLUMNS = {"paths": "path", "identities": "identity", "aspects": "aspect"}  # embeddings.npz key -> column


@dataclass
class EvalSet:
    """A protocol's test side with its images on the device."""

    target: EvalTarget
    protocol: Protocol
    test: Split


@dataclass
class Evaluation:
    """One evaluation: averaged metrics and the test features they came from."""

    metrics: dict
    features: np.ndarray  # [len(test), dim], L2-normalised


def load_eval_set(data: DataConfig, target: EvalTarget, seed: int, runs: int, device: torch.device) -> EvalSet:
    protocol = load_protocol(data, target, seed, runs)
    return EvalSet(target, protocol, load_split(protocol.test, data, device))


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when amp is on; a no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: torch.Tensor, feature: str, batch_size: int, flip: bool,
                     amp: bool = True, memory_format: torch.memory_format = torch.contiguous_format,
                     between_batches: Callable[[], None] = lambda: None) -> torch.Tensor:
    """L2-normalised features [N, dim] (float32, on the images' device) of uint8 NHWC images."""
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            x = eval_batch(images[start:start + batch_size], memory_format)
            with autocast(images.device, amp):
                f = model.embed(x, feature).float()
                if flip:
                    f = f + model.embed(hflip(x), feature).float()
            chunks.append(F.normalize(f, dim=1))
            between_batches()
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def score(features: torch.Tensor, protocol: Protocol) -> dict:
    """Mean/std retrieval metrics over the protocol's runs plus the test set's feature statistics."""
    labels = protocol.test["label"].to_numpy()
    per_run = []
    for query, gallery in protocol.runs:
        q, g = torch.as_tensor(query, device=features.device), torch.as_tensor(gallery, device=features.device)
        per_run.append(retrieval_metrics(features[q], labels[query], features[g], labels[gallery], RANKS))
    metrics = {k: v for k, v in mean_std(per_run).items() if k != "skipped_queries_std"}
    metrics.update(feature_statistics(features, labels))
    return {k: _finite(float(v)) for k, v in metrics.items()}


def evaluate(model: torch.nn.Module, eval_set: EvalSet, feature: str, batch_size: int, flip: bool, amp: bool = True,
             memory_format: torch.memory_format = torch.contiguous_format,
             between_batches: Callable[[], None] = lambda: None) -> Evaluation:
    """Extract the test features once, then score every run."""
    features = extract_features(model, eval_set.test.images, feature, batch_size, flip, amp, memory_format,
                                between_batches)
    return Evaluation(score(features, eval_set.protocol), features.cpu().numpy())


def embeddings(evaluation: Evaluation, protocol: Protocol, run: int = 0) -> dict[str, np.ndarray]:
    """Run `run`'s query and gallery features, labels, paths, identities and aspects (embeddings.npz)."""
    out: dict[str, np.ndarray] = {}
    for side, positions in zip(("query", "gallery"), protocol.runs[run]):
        rows = protocol.test.iloc[positions]
        out[f"{side}_features"] = evaluation.features[positions].astype(np.float32)
        out[f"{side}_labels"] = rows["label"].to_numpy(dtype=np.int64)
        for key, column in TEXT_COLUMNS.items():
            out[f"{side}_{key}"] = rows[column].to_numpy(dtype=str)
    return out
