"""The chain client: one API over an embedded persistent EVM and any JSON-RPC node.

::

    from ailedger.chain import open_embedded, connect_rpc

    with open_embedded(workspace / "chain") as chain:     # the default backend
        probe = chain.deploy("Probe", 5, signer=account)
        receipt = chain.transact(probe, "store", 7, tag, "note", signer=account)
        chain.call(probe, "value")                       # -> 7
        chain.events(probe, "Stored")                    # from our own SQLite index

    chain = connect_rpc("http://127.0.0.1:8545", chain_id=31337)

    deployment = deploy_contracts(chain, admin)          # Membership, LogAnchors, ModelRegistry
    anchors = LogAnchors(chain, deployment.open(chain, "LogAnchors"))
    members = Membership(chain, deployment.open(chain, "Membership"))
    registry = ModelRegistry(chain, deployment.open(chain, "ModelRegistry"))

The typed clients live in ``ailedger.chain.anchors``, ``.membership`` and ``.registry``;
``ailedger.chain.deployments`` deploys the three contracts and remembers where they are.

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
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.client import (
    ANVIL_CHAIN_ID,
    AccountSource,
    Chain,
    DeployedContract,
    Receipt,
    Signer,
)
from ailedger.chain.deployments import Deployment, DeploymentBook, deploy_contracts
from ailedger.chain.membership import Membership
from ailedger.chain.registry import ModelRegistry

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
    "Deployment",
    "DeploymentBook",
    "EventRecord",
    "LogAnchors",
    "Membership",
    "ModelRegistry",
    "Receipt",
    "Signer",
    "connect_rpc",
    "decode_revert",
    "deploy_contracts",
    "load_artifact",
    "open_embedded",
]
