"""The chain client: one API over an embedded persistent EVM and any JSON-RPC node.

::

    from ailedger.chain import open_embedded, connect_rpc

    with open_embedded(workspace / "chain") as chain:     # the default backend
        probe = chain.deploy("Probe", 5, signer=account)
        receipt = chain.transact(probe, "store", 7, tag, "note", signer=account)
        chain.call(probe, "value")                       # -> 7
        chain.events(probe, "Stored")                    # from our own SQLite index

    chain = connect_rpc("http://127.0.0.1:8545", chain_id=31337)

Errors are ``ailedger.errors`` classes: ``NodeUnavailable`` (node down),
``ContractReverted`` (a ``TransactionReverted`` naming the decoded custom error) and
``ChainError``.
"""

from __future__ import annotations

from ailedger.chain._artifacts import Artifact, ArtifactStore, load_artifact
from ailedger.chain._connect import connect_rpc, open_embedded
from ailedger.chain._embedded import DEV_FAUCET_ADDRESS, DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID
from ailedger.chain._events import EventRecord
from ailedger.chain._revert import ContractReverted, decode_revert
from ailedger.chain.client import (
    ANVIL_CHAIN_ID,
    AccountSource,
    Chain,
    DeployedContract,
    Receipt,
    Signer,
)

__all__ = [
    "ANVIL_CHAIN_ID",
    "DEV_FAUCET_ADDRESS",
    "DEV_FAUCET_KEY",
    "EMBEDDED_CHAIN_ID",
    "AccountSource",
    "Artifact",
    "ArtifactStore",
    "Chain",
    "ContractReverted",
    "DeployedContract",
    "EventRecord",
    "Receipt",
    "Signer",
    "connect_rpc",
    "decode_revert",
    "load_artifact",
    "open_embedded",
]
