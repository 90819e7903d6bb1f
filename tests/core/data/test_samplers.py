"""Random and PK batch samplers: seeded per epoch, index tensors, clear errors on thin splits."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from core.config import SamplerConfig
from core.data.samplers import PKBatches, RandomBatches, epoch_rows, make_sampler
from core.errors import DataError

# 5 identities: 0 has 6 images, 1 has 4, 2 has 3, 3 has 2, 4 has 1 (16 rows)
LABELS = [0] * 6 + [1] * 4 + [2] * 3 + [3] * 2 + [4]


def test_random_batches_cover_the_split_once_per_epoch_dropping_the_remainder():
    sampler = RandomBatches(LABELS, batch_size=5, seed=0)
    batches = list(sampler.epoch(1))
    assert len(sampler) == len(batches) == 3
    assert all(isinstance(b, torch.Tensor) and b.dtype == torch.int64 and len(b) == 5 for b in batches)
    rows = torch.cat(batches).tolist()
    assert len(set(rows)) == 15 and set(rows) <= set(range(16))


def test_random_batches_are_seeded_per_epoch():
    a, b = RandomBatches(LABELS, 4, seed=0), RandomBatches(LABELS, 4, seed=0)
    assert [x.tolist() for x in a.epoch(2)] == [x.tolist() for x in b.epoch(2)]
    assert [x.tolist() for x in a.epoch(2)] != [x.tolist() for x in a.epoch(3)]
    assert [x.tolist() for x in a.epoch(2)] != [x.tolist() for x in RandomBatches(LABELS, 4, seed=1).epoch(2)]


def test_a_split_smaller_than_the_batch_is_one_batch():
    batches = list(RandomBatches([0, 1, 1], batch_size=64).epoch(1))
    assert len(batches) == 1 and sorted(batches[0].tolist()) == [0, 1, 2]


def test_pk_batches_hold_p_identities_with_k_images_each():
    sampler = PKBatches(LABELS, p=3, k=2, seed=0)
    assert len(sampler) == 16 // 6
    for batch in sampler.epoch(1):
        labels = [LABELS[i] for i in batch.tolist()]
        counts = Counter(labels)
        assert len(batch) == 6 and len(counts) == 3 and set(counts.values()) == {2}
        for start in range(0, 6, 2):  # each identity's K rows are consecutive and its own
            assert labels[start] == labels[start + 1]


def test_pk_repeats_images_of_identities_with_fewer_than_k():
    sampler = PKBatches(LABELS, p=5, k=4, seed=0)  # every identity in every batch
    batch = next(iter(sampler.epoch(1))).tolist()
    rows_of_4 = [i for i in batch if LABELS[i] == 4]
    assert rows_of_4 == [15] * 4  # its one image, four times
    rows_of_0 = [i for i in batch if LABELS[i] == 0]
    assert len(set(rows_of_0)) == 4  # enough images: no repeats


def test_pk_visits_every_identity_evenly():
    sampler = PKBatches([i // 4 for i in range(40)], p=2, k=2, seed=0)  # 10 identities x 4
    seen = Counter(i // 4 for b in sampler.epoch(1) for i in b.tolist()[::2])
    assert len(sampler) == 10 and set(seen.values()) == {2} and len(seen) == 10


def test_pk_with_too_few_identities_says_what_to_set():
    with pytest.raises(DataError, match=r"sampler.p=8 .* holds 5; set sampler.p to at most 5"):
        PKBatches(LABELS, p=8, k=4)


@pytest.mark.parametrize("kind", ["random", "pk"])
def test_a_split_with_one_identity_is_a_data_error(kind):
    with pytest.raises(DataError, match="1 identities .* at least 2"):
        make_sampler(SamplerConfig(kind=kind, p=1, k=2), [7, 7, 7], batch_size=2)


def test_make_sampler_picks_the_configured_kind():
    assert isinstance(make_sampler(SamplerConfig(kind="pk", p=2, k=2), LABELS, 64), PKBatches)
    random = make_sampler(SamplerConfig(kind="random"), LABELS, 4, seed=5)
    assert isinstance(random, RandomBatches) and random.batch_size == 4 and random.seed == 5


@pytest.mark.parametrize("sampler", [RandomBatches(LABELS, 5, seed=0), PKBatches(LABELS, p=3, k=2, seed=0)])
def test_epoch_rows_stack_the_epochs_batches_by_step(sampler):
    rows = epoch_rows(sampler, 2)
    assert rows.shape == (len(sampler), 5 if isinstance(sampler, RandomBatches) else 6) and rows.dtype == torch.int64
    assert [r.tolist() for r in rows] == [b.tolist() for b in sampler.epoch(2)]
