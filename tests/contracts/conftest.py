"""Fixtures for the contract tests; the helpers live in ``contract_helpers``.

The tests use nothing but a plain ``Web3`` object (``w3`` fixture), parametrized over
web3.py's in-memory ``EthereumTesterProvider`` (py-evm) and a real anvil started for the
session (any node with ``evm_snapshot`` and ``evm_revert`` would do). Each test gets fresh
contracts: one deployment per session, behind a snapshot that is reverted after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest
from contract_helpers import (
    Chain,
    Compiled,
    Deployment,
    World,
    compile_contracts,
    deploy_all,
    populate,
)
from inference_helpers import Market, deploy_market
from judge_helpers import Judged, deploy_judged
from oracle_helpers import Oracles, deploy_oracles
from stake_helpers import Stakes, deploy_stakes
from vouch_helpers import Vouching, deploy_vouching
from web3 import HTTPProvider, Web3
from web3.providers.eth_tester import EthereumTesterProvider

from _anvil import Anvil, free_port, require_anvil

T = TypeVar("T")


def _behind_snapshot(chain: Chain, value: T) -> Iterator[T]:
    """Yield ``value`` to one test, then revert ``chain`` to where it was before the test."""
    snap = chain.snapshot()
    yield value
    chain.revert_to(snap)


@pytest.fixture(scope="session")
def compiled() -> dict[str, Compiled]:
    return compile_contracts()


@pytest.fixture(scope="session", params=["pyevm", pytest.param("anvil", marks=pytest.mark.chain)])
def w3(request: pytest.FixtureRequest) -> Iterator[Web3]:
    """The chain every contract test runs on: in-memory py-evm, and a real anvil.

    Tests that need a chain id of their own or a fork (``two_chains`` and the fork test in
    ``test_security.py``) build py-evm chains themselves and run there only.
    """
    if request.param == "pyevm":
        yield Web3(EthereumTesterProvider())
        return
    require_anvil()
    node = Anvil(free_port()).start()
    try:
        yield Web3(HTTPProvider(node.url))
    finally:
        node.stop()


@pytest.fixture(scope="session")
def _deployed(w3: Web3, compiled: dict[str, Compiled]) -> Deployment:
    return deploy_all(Chain(w3, compiled))


@pytest.fixture
def dep(_deployed: Deployment) -> Iterator[Deployment]:
    """Fresh contracts for each test: the session deployment behind a snapshot."""
    yield from _behind_snapshot(_deployed.chain, _deployed)


@pytest.fixture(scope="session")
def _world(_deployed: Deployment) -> World:
    # A second set of contracts on the same chain, populated once.
    return populate(deploy_all(_deployed.chain))


@pytest.fixture
def world(_world: World) -> Iterator[World]:
    """Populated contracts (see ``contract_helpers.World``) behind a per-test snapshot."""
    yield from _behind_snapshot(_world.chain, _world)


@pytest.fixture(scope="module")
def _oracles(w3: Web3) -> Oracles:
    # One deployment per module, as each oracle test module had its own.
    return deploy_oracles(w3)


@pytest.fixture
def o(_oracles: Oracles) -> Iterator[Oracles]:
    """The oracle contracts (see ``oracle_helpers.Oracles``) behind a per-test snapshot."""
    yield from _behind_snapshot(_oracles.chain, _oracles)


@pytest.fixture(scope="module")
def _stakes(w3: Web3) -> Stakes:
    return deploy_stakes(w3)


@pytest.fixture
def sm(_stakes: Stakes) -> Iterator[Stakes]:
    """StakeManager, its tokens and judges (see ``stake_helpers.Stakes``) behind a snapshot."""
    yield from _behind_snapshot(_stakes.chain, _stakes)


@pytest.fixture(scope="module")
def _judged(w3: Web3) -> Judged:
    return deploy_judged(w3)


@pytest.fixture
def jd(_judged: Judged) -> Iterator[Judged]:
    """OracleFeeds, StakeManager and OracleJudge (see ``judge_helpers.Judged``) behind a
    snapshot."""
    yield from _behind_snapshot(_judged.chain, _judged)


@pytest.fixture(scope="module")
def _vouching(w3: Web3) -> Vouching:
    return deploy_vouching(w3)


@pytest.fixture
def vv(_vouching: Vouching) -> Iterator[Vouching]:
    """DatasetVouching, its StakeManager, registry and datasets (see ``vouch_helpers``)
    behind a snapshot."""
    yield from _behind_snapshot(_vouching.chain, _vouching)


@pytest.fixture(scope="module")
def _market(w3: Web3) -> Market:
    return deploy_market(w3)


@pytest.fixture
def im(_market: Market) -> Iterator[Market]:
    """InferenceMarket, its StakeManager and tokens (see ``inference_helpers``) behind a
    snapshot."""
    yield from _behind_snapshot(_market.chain, _market)
