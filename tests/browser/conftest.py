"""Shared fixtures of the browser tests: the real dashboard served by `streamlit run` over runs
made by real tiny trainings, driven by Playwright in Debian's chromium.

`trained_root` and `synth_root` are the shared fixtures (tests/conftest.py): runs `done` (2 epochs,
with a cross evaluation), `done_ce` (1 epoch) and `broken` (failed) on a 6-identity synthetic
11k-layout dataset. `server` serves the app over a copy of them (session), `page` is a
fresh 1280x800 tab per test, `open_page(page, "errors", "Errors", run="done")` opens a page and
waits until the app has finished rendering it, and `shot(page, name)` saves a screenshot under
tests/artifacts/. Teardown kills the server and every scheduler and trainer of that root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import REPO
from tests.jobs.conftest import kill_processes_under

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
ARTIFACTS = REPO / "tests" / "artifacts"
TIMEOUT_MS = 60_000
IDLE_APP = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Poll Streamlit's health endpoint until it answers ok; fail early if the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f}s")


@pytest.fixture(scope="session")
def served_root(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The copy of trained_root that `server` serves (tests submit or construct runs in it)."""
    served = tmp_path_factory.mktemp("served") / "checkpoints"
    shutil.copytree(trained_root, served, ignore=shutil.ignore_patterns("projections", "queue.sqlite*"))
    return served


@pytest.fixture(scope="session")
def server(served_root: Path) -> Iterator[str]:
    """`streamlit run dashboard/app.py` over `served_root`; its base URL. Teardown kills the server and
    every scheduler and trainer of that root."""
    served = served_root
    port = free_port()
    env = {**os.environ, "HANDID_CHECKPOINTS": str(served), "HANDID_SCHEDULER_IDLE": "3",
           "HANDID_SCHEDULER_POLL": "0.2", "HANDID_CPU_SLOTS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        kill_processes_under(served)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, with a fresh profile (Playwright never downloads a browser here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh 1280x800 tab (its own context: no cookies or storage shared between tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)  # the server's first run imports torch and open_clip
    tab = context.new_page()
    yield tab
    context.close()


def wait_for_app(page: Page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the app is connected, its script has finished, no element is stale and no
    lazily loaded element (a plotly chart) still shows its placeholder."""
    page.wait_for_selector(IDLE_APP, timeout=timeout_ms)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=timeout_ms)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=timeout_ms)


@pytest.fixture
def open_page(server: str) -> Callable[..., None]:
    """`open_page(page, "run", "Run", run="done")`: go to the page at that url path ("" for the default
    page) with those query parameters, and wait until the app has rendered it (its title shown,
    the script idle, and no "Page not found" dialog)."""

    def open_(page: Page, url_path: str, title: str, **query: str) -> None:
        page.goto(f"{server}/{url_path}" + (f"?{urlencode(query)}" if query else ""))
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        wait_for_app(page)
        expect(page.get_by_text("Page not found")).to_have_count(0)  # Streamlit ran another page instead

    return open_


def shot(page: Page, name: str) -> Path:
    """A screenshot of the viewport as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path
