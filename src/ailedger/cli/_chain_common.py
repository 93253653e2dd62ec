"""What every chain-using command shares, without importing the contract wrappers: the
``--rpc`` option, opening the workspace's chain, and funding accounts on development chains.

Kept apart from :mod:`ailedger.cli._chain` so that commands such as ``rollback`` or ``audit``
do not pay for the ``chain`` command group's imports at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ailedger.chain._constants import ANVIL_CHAIN_ID, EMBEDDED_CHAIN_ID
from ailedger.chain.backends import WORKSPACE_CHAIN, open_workspace_chain
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.chain.client import Chain

__all__ = ["RPC_ENV", "WORKSPACE_CHAIN", "RpcOpt", "ensure_dev_funds", "open_chain"]

#: Environment variable naming a JSON-RPC node (read only by the CLI).
RPC_ENV = "AILEDGER_RPC_URL"
_DEV_CHAINS = (EMBEDDED_CHAIN_ID, ANVIL_CHAIN_ID)
_ETHER = 10**18

RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        envvar=RPC_ENV,
        help="JSON-RPC URL of the node (default: the workspace's [chain] config).",
    ),
]


def open_chain(ws: Workspace | None, rpc: str | None, *, read_only: bool = False) -> Chain:
    """The chain for a command: ``rpc`` if given, else the workspace's configured one
    (``read_only``: for commands that only read; nothing is written to the workspace)."""
    return open_workspace_chain(ws, rpc, read_only=read_only)


def ensure_dev_funds(chain: Chain, address: str) -> None:
    """On a development chain, give ``address`` ether from the faucet if it has little."""
    if chain.chain_id in _DEV_CHAINS and chain.balance(address) < _ETHER // 10:
        chain.fund(address, 10 * _ETHER)
