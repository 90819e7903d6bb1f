"""Triplet and ArcFace losses as pure static-shape functions: no host sync, so a step can be captured.

pytorch-metric-learning's miners and reducers select triplets by boolean indexing (`torch.where`,
`losses[losses > 0]`): each is a host sync and a data-dependent shape, which serialises the GPU
step and breaks CUDA graphs. Here every selection is a mask over all pairs ([B, B]) or all
triplets ([B, B, B]) and every output shape depends only on the input shapes. The values and
gradients equal pml's (tests/core/losses/test_functional.py keeps pml as the reference):
- distances: pml's LpDistance(p=2) is `torch.cdist` of the (optionally) L2-normalised rows, and
  so is this, for the same values near 0 (cdist's exact path up to 25 rows, its matmul path
  `sqrt(clamp(|x|^2 + |y|^2 - 2xy, 0))` above, both with zero gradient at distance 0);
- mining runs on the same distances without gradient; ties resolve as in pml (the same
  `max`/`min` over the same masked matrix);
- reduction is pml's AvgNonZeroReducer: the mean over mined triplets with a loss > 0, and 0
  (with zero gradients) when there are none: anchors without a positive or a negative, a batch
  of one identity, or a batch where every identity appears once.
Not reproduced: pml's float16 distances (`pairwise_distance` with its eps; these functions
expect float32, as LossSet's `feat.float()`), and ArcFaceLoss casting its `W` in place to the
embeddings' dtype. The all-triplet tensors take O(B^3) memory: about 70 MB each at B = 256.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MININGS = ("batch_hard", "semihard", "all")


def lp_distances(embeddings: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """[B, B] Euclidean distances between rows, L2-normalised first when `normalize` (pml's LpDistance)."""
    x = F.normalize(embeddings, p=2, dim=1) if normalize else embeddings
    return torch.cdist(x, x, p=2)


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) [B, B] masks: same label other row, different label."""
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _masked_mean(losses: torch.Tensor, mined: torch.Tensor) -> torch.Tensor:
    """Mean of `losses` over mined entries with a loss > 0; 0 when none (pml's AvgNonZeroReducer)."""
    keep = mined & (losses > 0)
    return torch.where(keep, losses, 0.0).sum() / keep.sum().clamp(min=1)


def _batch_hard(mat: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor d(a, hardest positive) - d(a, hardest negative) [B], and which anchors have both."""
    with torch.no_grad():
        low, high = torch.finfo(mat.dtype).min, torch.finfo(mat.dtype).max
        hardest_pos = torch.where(pos, mat, low).max(dim=1).indices
        hardest_neg = torch.where(neg, mat, high).min(dim=1).indices
    ap = mat.gather(1, hardest_pos.unsqueeze(1)).squeeze(1)
    an = mat.gather(1, hardest_neg.unsqueeze(1)).squeeze(1)
    return ap - an, pos.any(dim=1) & neg.any(dim=1)


def _all_triplets(mat: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float,
                  semihard: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """d(a, p) - d(a, n) over all [B, B, B] triplets, and pml's TripletMarginMiner selection of them."""
    ap_minus_an = mat.unsqueeze(2) - mat.unsqueeze(1)
    with torch.no_grad():
        an_minus_ap = -ap_minus_an
        mined = pos.unsqueeze(2) & neg.unsqueeze(1) & (an_minus_ap <= margin)
        if semihard:
            mined &= an_minus_ap > 0
    return ap_minus_an, mined


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float, mining: str = "batch_hard",
                 normalize: bool = True, smooth: bool = False) -> torch.Tensor:
    """pml TripletMarginLoss(margin, smooth_loss=smooth) with its miner, as a 0-d tensor.

    mining: `batch_hard` (pml BatchHardMiner: per anchor its farthest positive and nearest
    negative), `semihard` or `all` (pml TripletMarginMiner(margin, type_of_triplets): triplets
    with d(a, n) - d(a, p) <= margin, and > 0 for semihard). Miner and loss share the distance
    (LpDistance(normalize_embeddings=normalize)). The loss per triplet is
    relu(d(a, p) - d(a, n) + margin), or softplus when `smooth`.
    """
    if mining not in MININGS:
        raise ValueError(f"mining={mining!r} is not one of {', '.join(MININGS)}")
    mat = lp_distances(embeddings, normalize)
    pos, neg = _pair_masks(labels)
    if mining == "batch_hard":
        ap_minus_an, mined = _batch_hard(mat, pos, neg)
    else:
        ap_minus_an, mined = _all_triplets(mat, pos, neg, margin, semihard=mining == "semihard")
    violation = ap_minus_an + margin
    losses = F.softplus(violation) if smooth else F.relu(violation)
    return _masked_mean(losses, mined)


def arcface_loss(embeddings: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, margin_degrees: float,
                 scale: float) -> torch.Tensor:
    """pml ArcFaceLoss(num_classes, dim, margin=margin_degrees, scale) with class weights `weight`.

    `weight` is [dim, num_classes], pml's `W` layout. Cosines of the L2-normalised embeddings and
    class columns; the target class's angle gets the additive margin, cos(theta + m), except past
    pi - m where pml keeps the logit decreasing with cos(theta) - m sin(m); scaled logits go to
    the mean cross-entropy.
    """
    margin = math.radians(margin_degrees)
    cosine = F.normalize(embeddings, p=2, dim=1) @ F.normalize(weight.t(), p=2, dim=1).t()
    classes = torch.arange(weight.shape[1], device=labels.device)
    target = (labels.unsqueeze(1) == classes).to(cosine.dtype)
    cos_target = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
    angles = torch.acos(torch.clamp(cos_target, -1, 1))
    with_margin = torch.where(angles <= math.pi - margin, torch.cos(angles + margin),
                              torch.cos(angles) - margin * math.sin(margin))
    logits = cosine + target * (with_margin - cos_target).unsqueeze(1)
    return F.cross_entropy(logits * scale, labels)


def supcon_loss(anchors: torch.Tensor, contrasts: torch.Tensor, anchor_labels: torch.Tensor,
                contrast_labels: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) of anchors against contrasts, as CLIP-ReID's
    prompt stage uses it both ways (image-to-text and text-to-image).

    Logits are `scale` times the cosines of the L2-normalised rows; each anchor's loss is the mean
    over the contrasts of its label of -log softmax over all contrasts; the result is the mean over
    anchors that have at least one contrast of their label (0 when none has).
    """
    logits = scale * F.normalize(anchors.float(), dim=1) @ F.normalize(contrasts.float(), dim=1).T
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (anchor_labels.unsqueeze(1) == contrast_labels.unsqueeze(0)).float()
    count = positive.sum(dim=1)
    per_anchor = -(positive * log_prob).sum(dim=1) / count.clamp(min=1)
    has = (count > 0).float()
    return (per_anchor * has).sum() / has.sum().clamp(min=1)
