"""Fixtures of the chain layer, on top of ``backend`` (tests/conftest.py): ``restartable``
(a backend whose node can be restarted), ``chain`` (one open chain per backend) and
``account`` (a fresh funded account on it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from _chain_util import ETHER, Backend
from ailedger.chain import Chain


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose node can be restarted: anvil with its own --state file."""
    anvil = None
    if request.param == "anvil":
        anvil = request.getfixturevalue("make_anvil")(state=True)
    b = Backend(request.param, tmp_path, anvil)
    yield b
    b.close_all()


@pytest.fixture
def chain(backend: Backend) -> Chain:
    return backend.open()


@pytest.fixture
def account(chain: Chain) -> LocalAccount:
    """A fresh account holding 10 ether on ``chain``."""
    acct: LocalAccount = Account.create()
    chain.fund(acct.address, 10 * ETHER)
    return acct
