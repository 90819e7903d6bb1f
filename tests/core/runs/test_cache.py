"""FileCache: a file's derived value kept while the file is unchanged, read again once it changes."""

from __future__ import annotations

import os

import pytest

from core.runs.cache import FileCache, file_version


def test_a_value_is_read_once_per_file_version(tmp_path):
    reads = []
    cache = FileCache(lambda path: reads.append(path) or path.read_text(), max_entries=2)
    path = tmp_path / "a.txt"
    path.write_text("one")
    assert [cache.get(path), cache.get(path)] == ["one", "one"] and len(reads) == 1
    path.write_text("three")  # another size
    assert cache.get(path) == "three" and len(reads) == 2
    path.write_text("four!")  # same size, later mtime
    os.utime(path, ns=(file_version(path)[0] + 10**9,) * 2)
    assert cache.get(path) == "four!" and len(reads) == 3


def test_the_least_recently_used_entry_is_dropped_and_errors_are_not_kept(tmp_path):
    reads = []
    cache = FileCache(lambda path: reads.append(path.name) or path.read_text(), max_entries=2)
    a, b, c = (tmp_path / n for n in "abc")
    for path in (a, b, c):
        path.write_text(path.name)
    cache.get(a), cache.get(b), cache.get(a), cache.get(c)  # b is the least recently used
    cache.get(a)
    cache.get(b)
    assert reads == ["a", "b", "c", "b"]
    missing = tmp_path / "missing"
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            cache.get(missing)
    assert missing not in cache.entries
