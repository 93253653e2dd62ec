"""Fixtures every layer's tests use, and the hypothesis profiles.

- ``anvil_node`` (one anvil for the session) and ``make_anvil`` (private anvils, optionally
  with ``--state``), from :mod:`_anvil`;
- ``backend``: the chain backends, parametrised (``embedded``, and ``anvil`` marked
  ``chain``), from :mod:`_chain_util`;
- ``setup``: a release-workflow workspace (keys, sample model and data, a policy) in
  ``tmp_path``, which is also the working directory, from :mod:`_workflow_util`;
- ``new_workspace``: ``ailedger init`` in ``tmp_path`` (the working directory) with a
  keystore that uses the cheap test-only KDF costs.

Hypothesis profiles: ``dev`` (the default), ``ci`` (loaded when ``$CI`` is set) and ``slow``
(many more examples); ``$HYPOTHESIS_PROFILE`` names one explicitly and wins over ``$CI``. No
profile has a deadline or the ``too_slow`` health check: a loaded machine must not fail a test.
Tests that cap their examples write the cap as ``_profiles.examples(n)`` (state machines:
``stateful_examples(n)``), which ``slow`` raises to its own 1,000; the header of every run
names the profile and what a cap becomes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from _anvil import Anvil, free_port, require_anvil
from _chain_util import Backend
from _workflow_util import NewWorkspace, Setup, fast_keystore, make_setup
from ailedger.identity.keys import Keystore
from ailedger.workspace import Workspace

# Whatever the machine's speed or load: no deadline, no "input generation too slow". Built on
# hypothesis' "default" profile, not on its own "ci" one (which derandomizes) when $CI is set.
settings.register_profile(
    "dev",
    settings.get_profile("default"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", settings.get_profile("dev"), database=None, print_blob=True)
settings.register_profile("slow", settings.get_profile("dev"), max_examples=1000)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(_PROFILE)


def pytest_report_header(config: pytest.Config) -> str:
    from _profiles import examples, stateful_examples

    active = settings.default
    return (
        f"hypothesis: max_examples={active.max_examples}; a cap of 12 runs "
        f"{examples(12)} examples, a state machine capped at 12 runs {stateful_examples(12)} "
        "sequences (tests/_profiles.py)"
    )


# --- chain nodes and backends ------------------------------------------------------------------


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    """One anvil shared by the session (tests use fresh accounts)."""
    require_anvil()
    node = Anvil(free_port()).start()
    yield node
    node.stop()


@pytest.fixture
def make_anvil(tmp_path: Path) -> Iterator[Callable[..., Anvil]]:
    """Start private anvils (optionally with ``--state``); all stopped at teardown."""
    require_anvil()
    started: list[Anvil] = []

    def make(state: bool = False) -> Anvil:
        node = Anvil(free_port(), tmp_path / f"anvil-state-{len(started)}.json" if state else None)
        started.append(node)
        return node.start()

    yield make
    for node in started:
        node.stop(signal.SIGKILL)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each test runs twice: on the embedded chain and on the session's anvil."""
    anvil = None
    if request.param == "anvil":
        anvil = request.getfixturevalue("anvil_node")
    b = Backend(request.param, tmp_path, anvil)
    yield b
    b.close_all()


# --- workspaces --------------------------------------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A workflow workspace in ``tmp_path`` (see ``_workflow_util.make_setup``), cwd there."""
    monkeypatch.chdir(tmp_path)
    return make_setup(tmp_path)


@pytest.fixture
def new_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NewWorkspace:
    """``new_workspace(origin)``: a workspace in ``tmp_path`` (now the working directory) and
    its keystore, with the test-only KDF costs."""

    def make(origin: str = "example.com/test") -> tuple[Workspace, Keystore]:
        monkeypatch.chdir(tmp_path)
        ws = Workspace.init(tmp_path, origin=origin)
        return ws, fast_keystore(ws)

    return make
