"""Fixtures for the contract tests; the helpers live in ``contract_helpers``.

The tests use nothing but a plain ``Web3`` object (``w3`` fixture): today web3.py's in-memory
``EthereumTesterProvider`` (py-evm); the same tests run on any node that has ``evm_snapshot``
and ``evm_revert`` (anvil). Each test gets fresh contracts: one deployment per session, behind
a snapshot that is reverted after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider


@pytest.fixture(scope="session")
def compiled() -> dict[str, Compiled]:
    return compile_contracts()


@pytest.fixture(scope="session")
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


@pytest.fixture(scope="session")
def _deployed(w3: Web3, compiled: dict[str, Compiled]) -> Deployment:
    return deploy_all(Chain(w3, compiled))


@pytest.fixture
def dep(_deployed: Deployment) -> Iterator[Deployment]:
    """Fresh contracts for each test: the session deployment behind a snapshot."""
    snap = _deployed.chain.snapshot()
    yield _deployed
    _deployed.chain.revert_to(snap)


@pytest.fixture(scope="session")
def _world(_deployed: Deployment) -> World:
    # A second set of contracts on the same chain, populated once.
    return populate(deploy_all(_deployed.chain))


@pytest.fixture
def world(_world: World) -> Iterator[World]:
    """Populated contracts (see ``contract_helpers.World``) behind a per-test snapshot."""
    snap = _world.chain.snapshot()
    yield _world
    _world.chain.revert_to(snap)
