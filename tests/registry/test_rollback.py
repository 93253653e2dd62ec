"""Rollback walks back along what served an environment (issue 11, item 9).

The reference model below is a linked list of serving periods: each period knows the period
that was current when it began. A deploy starts a period after the current one; a rollback
goes back along those links to the first period of a non-deprecated version other than the
current one (or, with ``to``, of that version) and makes it current again, with its own past.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from _workflow_util import Setup, fast_keystore, make_setup, variant
from ailedger.errors import ConflictError
from ailedger.identity.keys import Signer
from ailedger.registry import Registry
from ailedger.registry._index import INDEX_DB_NAME
from ailedger.registry._records import utc_now
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import parse_policy
from ailedger.registry.trace import trace_at
from ailedger.workspace import Workspace

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
ENV = "prod"
VERSIONS = [VersionRef("r", str(i)) for i in (1, 2, 3, 4)]


def _register_all(setup: Setup) -> None:
    with setup.registry() as reg:
        for ref in VERSIONS:
            path = variant(setup, f"m-{ref.version}", f'{{"v": {ref.version}}}')
            reg.register_model(path, ref, setup.signer("trainer"))


def test_a_second_rollback_goes_further_back(setup: Setup) -> None:
    """The reported sequence: deploys of r@1, r@2, r@3, r@1, r@2, then rollbacks."""
    _register_all(setup)
    trainer = setup.signer("trainer")
    r1, r2, r3, _ = VERSIONS
    with setup.registry() as reg:
        for ref in (r1, r2, r3, r1, r2):
            reg.deploy(ref, ENV, trainer, OPEN)
        assert reg.rollback(ENV, trainer).ref == str(r1)
        assert reg.rollback(ENV, trainer).ref == str(r3)  # was: "r@1 is the only version"
        assert reg.rollback(ENV, trainer).ref == str(r2)
        assert reg.rollback(ENV, trainer).ref == str(r1)
        with pytest.raises(ConflictError, match="r@1 is the only version deployed"):
            reg.rollback(ENV, trainer)
        # the deploy after a rollback starts from where the rollback left off
        reg.deploy(r3, ENV, trainer, OPEN)
        assert reg.rollback(ENV, trainer).ref == str(r1)


def test_rollback_skips_deprecated_versions(setup: Setup) -> None:
    _register_all(setup)
    trainer = setup.signer("trainer")
    r1, r2, r3, _ = VERSIONS
    with setup.registry() as reg:
        for ref in (r1, r2, r3):
            reg.deploy(ref, ENV, trainer, OPEN)
        reg.deprecate(r2, "bias found", trainer)
        assert reg.rollback(ENV, trainer).ref == str(r1)
        assert reg.stack(ENV) == [r1]
        reg.deploy(r3, ENV, trainer, OPEN)
        reg.deprecate(r1, "superseded", trainer)
        with pytest.raises(ConflictError, match=r"deprecated \(r@1\)"):
            reg.rollback(ENV, trainer)
        with pytest.raises(ConflictError, match="deprecated"):
            reg.rollback(ENV, trainer, to=r1)


def test_rollback_to_returns_to_the_nearest_earlier_period(setup: Setup) -> None:
    _register_all(setup)
    trainer = setup.signer("trainer")
    r1, r2, r3, r4 = VERSIONS
    with setup.registry() as reg:
        for ref in (r1, r2, r3, r2, r4):
            reg.deploy(ref, ENV, trainer, OPEN)
        assert reg.rollback(ENV, trainer, to=r2).ref == str(r2)
        assert reg.stack(ENV) == [r1, r2, r3, r2]
        assert reg.rollback(ENV, trainer).ref == str(r3)


# --- against a reference model ---------------------------------------------------------------


@dataclass(frozen=True)
class _Period:
    version: int
    before: _Period | None


class _Model:
    """What served, as linked serving periods; deprecations are global."""

    def __init__(self) -> None:
        self.current: _Period | None = None
        self.deprecated: set[int] = set()

    def deploy(self, v: int) -> bool:
        """False when refused."""
        if v in self.deprecated:
            return False
        if self.current is None or self.current.version != v:
            self.current = _Period(v, self.current)
        return True

    def rollback(self, to: int | None) -> bool:
        if self.current is None:
            return False
        if to == self.current.version:
            return True  # already serving: nothing changes
        period = self.current.before
        while period is not None:
            if to is None:
                if period.version != self.current.version and period.version not in self.deprecated:
                    break
            elif period.version == to:
                break
            period = period.before
        if period is None or period.version in self.deprecated:
            return False
        self.current = period
        return True


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["deploy"] * 3 + ["rollback"] * 3 + ["rollback-to", "deprecate"]),
        st.integers(0, 2),  # three versions: repeats (the reported bug) come often
    ),
    max_size=16,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with r@1..r@4 registered, copied for each example."""
    root = tmp_path_factory.mktemp("rollback-template")
    _register_all(make_setup(root))
    return root


def _copy(template: Path) -> Iterator[Setup]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(template, root)
        ws = Workspace.open(root)
        store = fast_keystore(ws)
        yield Setup(ws, store, root, root / "model", root / "patients.csv", root / "policy.toml")


def _step(reg: Registry, model: _Model, signer: Signer, op: str, i: int) -> None:
    """Run one operation on the registry and the model; they must agree on refusals."""
    ref = VERSIONS[i]
    if op == "deprecate":
        reg.deprecate(ref, "test", signer)
        model.deprecated.add(i)
        return
    if op == "deploy":
        expected = model.deploy(i)
    else:
        expected = model.rollback(i if op == "rollback-to" else None)
    try:
        if op == "deploy":
            reg.deploy(ref, ENV, signer, OPEN)
        else:
            reg.rollback(ENV, signer, to=ref if op == "rollback-to" else None)
    except ConflictError:
        assert not expected, (op, ref)
    else:
        assert expected, (op, ref)


@given(ops=_OPS)
@example(ops=[("deploy", i) for i in (0, 1, 2, 0, 1)] + [("rollback", 0)] * 5)
@example(ops=[("deploy", 0), ("deploy", 1), ("deprecate", 0), ("rollback", 0), ("deploy", 2)])
@settings(max_examples=60)
def test_rollback_matches_the_history_model(template: Path, ops: list[tuple[str, int]]) -> None:
    for setup in _copy(template):
        trainer = setup.signer("trainer")
        model = _Model()
        with setup.registry() as reg:
            for op, i in ops:
                _step(reg, model, trainer, op, i)
                want = None if model.current is None else VERSIONS[model.current.version]
                assert reg.current(ENV) == want, (op, i)
            if model.current is not None:
                later = utc_now() + timedelta(days=1)
                assert trace_at(reg, ENV, later).ref == VERSIONS[model.current.version]
            stack = reg.stack(ENV)
        (setup.ws.path / INDEX_DB_NAME).unlink()  # the history replays from the log alone
        with Registry.open(setup.ws, keys=setup.store.list_keys()) as reg:
            assert reg.stack(ENV) == stack
