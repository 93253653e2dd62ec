"""The per-test example caps follow the hypothesis profile (tests/_profiles.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from _profiles import SLOW_MINIMUM, examples, stateful_examples


@pytest.fixture
def profile() -> Iterator[None]:
    before = settings.get_current_profile_name()
    yield
    settings.load_profile(before)


@pytest.mark.parametrize("name", ["dev", "ci"])
def test_dev_and_ci_keep_the_caps(
    profile: None, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AILEDGER_STATEFUL_EXAMPLES", raising=False)
    settings.load_profile(name)
    assert [examples(n) for n in (5, 12, 40, 200)] == [5, 12, 40, 200]
    assert stateful_examples(12) == 12


def test_slow_raises_every_cap_to_at_least_a_thousand(
    profile: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AILEDGER_STATEFUL_EXAMPLES", raising=False)
    settings.load_profile("slow")
    assert settings.default.max_examples >= 1000 > SLOW_MINIMUM >= 200
    assert {examples(n) for n in (5, 12, 40)} == {settings.default.max_examples}
    assert stateful_examples(8) == settings.default.max_examples
    assert examples(5000) == 5000  # a cap above the profile's count is kept


def test_the_environment_sets_the_state_machines(
    profile: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AILEDGER_STATEFUL_EXAMPLES", "3")
    settings.load_profile("slow")
    assert stateful_examples(12) == 3
    assert examples(12) == settings.default.max_examples
