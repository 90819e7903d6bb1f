"""Training batches of row indices: plain random batches, or PK batches (P identities x K images).

Both are seeded per epoch (`seed`, `epoch`), so a resumed run draws the same batches it would
have drawn without the interruption. Each epoch yields `len(sampler)` index tensors;
`epoch_rows` stacks them into one [steps, batch] tensor, copied to the device once per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from core.config import SamplerConfig
from core.data.transfer import upload
from core.errors import DataError


def _labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    count = len(np.unique(labels))
    if count < 2:
        raise DataError(f"the training split holds {count} identities ({len(labels)} images); at least 2 are needed")
    return labels


class RandomBatches:
    """Shuffled batches of `batch_size` rows; the remainder is dropped (a batch of all rows when fewer)."""

    def __init__(self, labels, batch_size: int, seed: int = 0):
        self.size = len(_labels(labels))
        self.batch_size = min(batch_size, self.size)
        self.seed = seed

    def __len__(self) -> int:
        return self.size // self.batch_size

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        for i in range(len(self)):
            yield torch.from_numpy(order[i * self.batch_size:(i + 1) * self.batch_size])


class PKBatches:
    """Batches of P identities x K images each; identities with fewer than K images repeat images.

    Identities are visited in a shuffled cycle, so every identity appears about equally often;
    an epoch holds about as many images as the split.
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0):
        labels = _labels(labels)
        self.groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
        if len(self.groups) < p:
            raise DataError(f"PK sampling needs sampler.p={p} identities per batch but the training split "
                            f"holds {len(self.groups)}; set sampler.p to at most {len(self.groups)}")
        self.p, self.k, self.seed = p, k, seed
        self.size = len(labels)

    def __len__(self) -> int:
        return max(1, self.size // (self.p * self.k))

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        rng = np.random.default_rng([self.seed, epoch])
        queue: list[int] = []
        for _ in range(len(self)):
            chosen: list[int] = []
            while len(chosen) < self.p:
                if not queue:
                    queue = [g for g in rng.permutation(len(self.groups)) if g not in chosen]
                chosen.append(int(queue.pop()))
            rows = [rng.choice(self.groups[g], self.k, replace=len(self.groups[g]) < self.k) for g in chosen]
            yield torch.from_numpy(np.concatenate(rows))


def make_sampler(cfg: SamplerConfig, labels, batch_size: int, seed: int = 0) -> RandomBatches | PKBatches:
    """The sampler `sampler.kind` names; PK batches hold sampler.p x sampler.k rows (train.batch_size is unused)."""
    if cfg.kind == "pk":
        return PKBatches(labels, cfg.p, cfg.k, seed)
    return RandomBatches(labels, batch_size, seed)


def epoch_rows(sampler: RandomBatches | PKBatches, epoch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The epoch's batches as one [steps, batch] index tensor on `device`, in one copy (pinned on CUDA)."""
    return upload(torch.stack(list(sampler.epoch(epoch))), device)
