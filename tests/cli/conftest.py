"""Fixtures of the CLI tests. Every test here gets its own ``$XDG_CACHE_HOME`` (``cache_home``)
so the stat cache of ``fingerprint`` never leaks between tests or into the user's cache.

Workspaces come from ``new_workspace`` and ``setup`` (tests/conftest.py); ``_cli`` runs the
CLI (``run``, ``ok``, ``fails`` through the real entry point, ``run_main`` under capsys).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home
