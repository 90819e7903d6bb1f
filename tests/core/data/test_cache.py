"""Decode-once cache: shapes, cache hits, invalidation on change, and errors naming the file."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from core.data import cache
from core.errors import DataError


def write(path, colour, size=(160, 120)):
    Image.new("RGB", size, colour).save(path, quality=95)
    return str(path)


@pytest.fixture
def images(tmp_path):
    return [write(tmp_path / f"{i}.jpg", (40 * i, 100, 200)) for i in range(3)]


def test_decode_image_resizes_to_height_width_with_and_without_draft(tmp_path):
    path = write(tmp_path / "a.jpg", (200, 40, 10), size=(1600, 1200))
    for draft in (True, False):
        image = cache.decode_image(path, (56, 72), draft=draft)
        assert image.shape == (56, 72, 3) and image.dtype == np.uint8
        assert np.abs(image.astype(int) - [200, 40, 10]).max() <= 4  # JPEG error on a flat colour


def test_load_images_returns_stacked_rows_in_path_order(tmp_path, images):
    loaded = cache.load_images(images, (32, 48), tmp_path / "cache", workers=1)
    assert loaded.shape == (3, 32, 48, 3) and loaded.dtype == np.uint8
    assert [int(round(loaded[i, ..., 0].mean())) for i in range(3)] == pytest.approx([0, 40, 80], abs=3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_second_load_does_not_decode(tmp_path, images, monkeypatch):
    first = cache.load_images(images, (32, 32), tmp_path / "cache", workers=1)

    def fail(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache, "decode_image", fail)
    np.testing.assert_array_equal(cache.load_images(images, (32, 32), tmp_path / "cache", workers=1), first)
    with pytest.raises(AssertionError, match="decoded again"):  # another size is another cache
        cache.load_images(images, (16, 16), tmp_path / "cache", workers=1)


def test_changed_or_added_image_rebuilds_and_replaces_the_stale_file(tmp_path, images):
    cache_dir = tmp_path / "cache"
    cache.load_images(images, (32, 32), cache_dir, workers=1)
    old = set(cache_dir.glob("*.npy"))
    write(images[1], (250, 250, 250))
    stat = os.stat(images[1])
    os.utime(images[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same-second rewrite still counts
    changed = cache.load_images(images, (32, 32), cache_dir, workers=1)
    assert changed[1].mean() > 240
    assert set(cache_dir.glob("*.npy")).isdisjoint(old) and len(list(cache_dir.glob("*.npy"))) == 1
    more = images + [write(tmp_path / "3.jpg", (0, 0, 0))]
    assert cache.load_images(more, (32, 32), cache_dir, workers=1).shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(cache.load_images(images, (32, 32), cache_dir, workers=1), changed)


def test_missing_or_broken_image_names_the_file_and_leaves_no_cache(tmp_path, images):
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError, match="gone.jpg"):
        cache.load_images(images + [str(tmp_path / "gone.jpg")], (32, 32), cache_dir, workers=1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        cache.load_images(images + [str(broken)], (32, 32), cache_dir, workers=1)
    assert list(cache_dir.iterdir()) == []


def test_process_pool_gives_the_same_pixels(tmp_path):
    paths = [write(tmp_path / f"{i}.jpg", (i * 7 % 256, 50, 90), size=(64, 48)) for i in range(cache.IN_PROCESS_BELOW)]
    pooled = cache.load_images(paths, (24, 24), tmp_path / "pool", workers=2)
    single = cache.load_images(paths, (24, 24), tmp_path / "single", workers=1)
    np.testing.assert_array_equal(pooled, single)
