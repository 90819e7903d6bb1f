"""Retrieval evaluation of a model: the test side of a protocol over its R query/gallery runs, and
the validation split that model selection reads.

Features are extracted once per evaluation (with the flip test-time augmentation: the
features of an image and of its mirror image summed, then L2-normalised), with the model's own
normalisation, and sliced per run. Test metrics are averaged over runs (mean and `_std`), with
the feature statistics (intra, inter, ratio, silhouette) of the whole test set and the
verification figures (EER, AUC, TAR@FAR; core.verification), whose ROC and DET curves and
decision thresholds (run 0) are kept beside them. With re-ranking on, k-reciprocal re-ranked
metrics (core.rerank) are reported beside the plain ones, never in their place. Validation is
the val split (one image per training identity) as queries against the training images as
gallery, plus the identity classifier's accuracy on the val images: figures the trainer may
select on, because no test image takes part in them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from core.data.augment import eval_batch, hflip
from core.data.protocols import Protocol, Target, load_protocol
from core.data.split import Split, load_split
from core.device import autocast
from core.metrics import RANKS, feature_statistics, mean_pairwise_distance, mean_std, retrieval_metrics
from core.rerank import rerank_summary
from core.runs.records import Embeddings, Metrics, finite
from core.verification import SUMMARY_KEYS, verification_summary


@dataclass
class EvalSet:
    """A protocol's test side with its images on the device."""

    target: Target
    protocol: Protocol
    test: Split


@dataclass
class ValSet:
    """The validation queries and the training images they are searched among."""

    queries: Split
    gallery: Split


@dataclass
class Evaluation:
    """One evaluation: averaged test metrics, validation metrics, re-ranked test metrics (when asked),
    the curves of the verification figures, and the test features."""

    test: Metrics
    val: Metrics
    features: np.ndarray  # [len(test), dim], L2-normalised
    rerank: Metrics = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Rerank:
    """k-reciprocal re-ranking parameters (Zhong et al. 2017)."""

    k1: int = 20
    k2: int = 6
    lambda_: float = 0.3


@dataclass(frozen=True)
class Extraction:
    """How features are extracted: the retrieval feature, batch size, flip TTA, precision, layout."""

    feature: str = "pre_bn"
    batch_size: int = 256
    flip: bool = True
    amp: bool = True
    memory_format: torch.memory_format = torch.contiguous_format


def load_eval_set(target: Target, size: tuple[int, int], cache_dir: str, seed: int, runs: int, device: torch.device,
                  interpolation: str = "bicubic") -> EvalSet:
    protocol = load_protocol(target, seed, runs)
    return EvalSet(target, protocol, load_split(protocol.test, size, cache_dir, device, interpolation))


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: torch.Tensor, how: Extraction,
                     between_batches: Callable[[], None] = lambda: None) -> torch.Tensor:
    """L2-normalised features [N, dim] (float32, on the images' device) of uint8 NHWC images."""
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(images), how.batch_size):
            x = eval_batch(images[start:start + how.batch_size], model.preprocess, how.memory_format)
            with autocast(images.device, how.amp):
                f = model.embed(x, how.feature).float()
                if how.flip:
                    f = f + model.embed(hflip(x), how.feature).float()
            chunks.append(F.normalize(f, dim=1))
            between_batches()
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, 0, device=images.device)


def score(features: torch.Tensor, protocol: Protocol) -> Metrics:
    """Mean/std retrieval metrics over the protocol's runs plus the test set's feature statistics."""
    labels = protocol.test["label"].to_numpy()
    per_run = []
    for query, gallery in protocol.runs:
        q, g = torch.as_tensor(query, device=features.device), torch.as_tensor(gallery, device=features.device)
        per_run.append(retrieval_metrics(features[q], labels[query], features[g], labels[gallery], RANKS))
    metrics = {k: v for k, v in mean_std(per_run).items() if k != "skipped_queries_std"}
    metrics.update(feature_statistics(features, labels))
    return finite(metrics)


def verify(features: np.ndarray, protocol: Protocol) -> tuple[Metrics, dict[str, dict[str, list[float]]]]:
    """(EER, AUC, TAR@FAR means and stds, {roc, det, thresholds} of run 0) of the test features."""
    summary = verification_summary(features, protocol.test["label"].to_numpy(), protocol.runs)
    scalars = {k: summary[k] for key in SUMMARY_KEYS for k in (key, f"{key}_std")}
    points = summary["thresholds"]
    thresholds = {axis: [float(p[axis]) for p in points] for axis in ("far_target", "threshold", "far", "tar")}
    return finite(scalars), {"roc": summary["roc"], "det": summary["det"], "thresholds": thresholds}


@torch.no_grad()
def score_val(model: torch.nn.Module, val: ValSet, how: Extraction) -> Metrics:
    """Validation retrieval (val images against the training images) and identity accuracy."""
    queries = extract_features(model, val.queries.images, how)
    gallery = extract_features(model, val.gallery.images, how)
    found = retrieval_metrics(queries, val.queries.labels, gallery, val.gallery.labels, (1,))
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(val.queries.images), how.batch_size):
        x = eval_batch(val.queries.images[start:start + how.batch_size], model.preprocess, how.memory_format)
        with autocast(x.device, how.amp):
            logits = model(x)["logits"]
        correct += int((logits.argmax(1) == val.queries.labels[start:start + how.batch_size]).sum())
    model.train(was_training)
    return finite({"rank1": found["rank1"], "mAP": found["mAP"], "mAP_trapezoid": found["mAP_trapezoid"],
                   "id_accuracy": correct / max(len(val.queries.images), 1)})


def evaluate(model: torch.nn.Module, eval_set: EvalSet, how: Extraction, val: ValSet | None = None,
             rerank: Rerank | None = None, between_batches: Callable[[], None] = lambda: None) -> Evaluation:
    """Extract the test features once, score every run (and re-ranked, when asked), verify, and score
    the validation split when given."""
    features = extract_features(model, eval_set.test.images, how, between_batches)
    test = score(features, eval_set.protocol)
    test.update(finite({"spread_pre_bn": pre_bn_spread(model, eval_set.test.images, how, features)}))
    array = features.cpu().numpy()
    scalars, curves = verify(array, eval_set.protocol)
    reranked = {}
    if rerank is not None:
        reranked = rerank_summary(array, eval_set.protocol.test["label"].to_numpy(), eval_set.protocol.runs,
                                  rerank.k1, rerank.k2, rerank.lambda_)
        reranked = finite({k: v for k, v in reranked.items() if k not in ("k1", "k2", "lambda")})
    val_metrics = score_val(model, val, how) if val is not None else {}
    return Evaluation({**test, **scalars}, val_metrics, array, reranked, curves)


def pre_bn_spread(model: torch.nn.Module, images: torch.Tensor, how: Extraction, features: torch.Tensor) -> float:
    """Mean pairwise distance of the L2-normalised pre-BN test features (the retrieval features
    when they are pre-BN): the collapse a metric loss can cause, seen whatever feature is retrieved."""
    if how.feature != "pre_bn":
        features = extract_features(model, images, replace(how, feature="pre_bn"))
    return mean_pairwise_distance(features)


def rerank_of(cfg) -> Rerank | None:
    """The eval section's re-ranking settings, None when it is off."""
    return Rerank(cfg.eval.rerank_k1, cfg.eval.rerank_k2, cfg.eval.rerank_lambda) if cfg.eval.rerank else None


def embeddings(evaluation: Evaluation, protocol: Protocol, run: int = 0) -> Embeddings:
    """Run `run`'s query and gallery features and image records (embeddings.npz)."""
    query, gallery = protocol.runs[run]
    return Embeddings.from_rows(evaluation.features, protocol.test, query, gallery)
