"""Fixtures of the inference-market tests (helpers: ``markets._helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from markets._helpers import Market, make_market


@pytest.fixture
def market(tmp_path: Path) -> Market:
    """A provider workspace with the digits model registered as ``digits@1``."""
    return make_market(tmp_path / "provider")
