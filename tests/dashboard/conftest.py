"""Fixtures of the dashboard tests: pages under AppTest over the shared trained runs
(`trained_root`, tests/conftest.py).

`checkpoints` points HANDID_CHECKPOINTS at them, `own_checkpoints` at a private copy (for pages
that write caches into run folders), `empty_checkpoints` at a fresh root for submitting.
`open_page(url_path)` runs the whole app (navigation included) on that page.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture(autouse=True)
def schedulers_started(monkeypatch: pytest.MonkeyPatch) -> list:
    """Pages restart a dead scheduler while runs wait (jobs.api.list_runs); in these tests queued runs stay
    queued: the calls are recorded instead."""
    started: list = []
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: started.append(root) or True)
    return started


@pytest.fixture
def checkpoints(trained_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(trained_root))
    return trained_root


@pytest.fixture
def empty_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    return root


def _app(start: str) -> None:
    from dashboard.app import main

    main(start)


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    """`open_page("runs", run="done")`: the app run once on that page, with those query parameters."""

    def open_(url_path: str, **query: str) -> AppTest:
        at = AppTest.from_function(_app, args=(url_path,), default_timeout=60)
        at.query_params.update(query)
        return at.run()

    return open_


@pytest.fixture
def own_checkpoints(trained_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained runs, for pages that write caches (projections) into run folders."""
    root = tmp_path / "checkpoints"
    shutil.copytree(trained_root, root, ignore=shutil.ignore_patterns("projections", "queue.sqlite*"))
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    return root
