"""Fixtures of the service tests: a server workspace, a running ``ailedger serve``, and a real
Chromium for the explorer's browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _browser import CHROMIUM, WAIT_MS
from _log_util import ALICE
from _service import Service, server_workspace


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    """``ailedger serve`` over a fresh workspace, ALICE allowed, checkpoints every 20 ms."""
    server_workspace(tmp_path / "server")
    with Service(
        tmp_path / "server", "--allow", ALICE.address, "--checkpoint-interval-ms", "20"
    ) as service:
        yield service


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, one per test module; skipped with one line where
    either is missing (never passed silently)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright wheel is missing: pip install -e '.[test]'"
    )
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): no browser tests")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh 1100x900 context; an uncaught error in the page fails the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, errors
