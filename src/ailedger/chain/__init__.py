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

Importing this package costs nothing: the names below load their module (and web3, eth-account
or py-evm with it) on first use, so commands that never open a chain never import them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailedger.chain._artifacts import Artifact, ArtifactStore, load_artifact
    from ailedger.chain._connect import connect_rpc, open_embedded
    from ailedger.chain._constants import (
        ANVIL_CHAIN_ID,
        DEV_FAUCET_ADDRESS,
        DEV_FAUCET_KEY,
        EMBEDDED_CHAIN_ID,
    )
    from ailedger.chain._embedded import EmbeddedNode, EmbeddedRevert
    from ailedger.chain._events import EventRecord
    from ailedger.chain._revert import ContractReverted, decode_revert
    from ailedger.chain.anchors import LogAnchors
    from ailedger.chain.backends import (
        BACKENDS,
        ChainBackend,
        EmbeddedBackend,
        RpcBackend,
        backend_named,
        open_workspace_chain,
    )
    from ailedger.chain.client import AccountSource, Chain, DeployedContract, Receipt, Signer
    from ailedger.chain.deployments import Deployment, DeploymentBook, deploy_contracts
    from ailedger.chain.membership import Membership
    from ailedger.chain.registry import ModelRegistry

__all__ = [
    "ANVIL_CHAIN_ID",
    "BACKENDS",
    "DEV_FAUCET_ADDRESS",
    "DEV_FAUCET_KEY",
    "EMBEDDED_CHAIN_ID",
    "AccountSource",
    "Artifact",
    "ArtifactStore",
    "Chain",
    "ChainBackend",
    "ContractReverted",
    "DeployedContract",
    "Deployment",
    "DeploymentBook",
    "EmbeddedBackend",
    "EmbeddedNode",
    "EmbeddedRevert",
    "EventRecord",
    "LogAnchors",
    "Membership",
    "ModelRegistry",
    "Receipt",
    "RpcBackend",
    "Signer",
    "backend_named",
    "connect_rpc",
    "decode_revert",
    "deploy_contracts",
    "load_artifact",
    "open_embedded",
    "open_workspace_chain",
]

#: Where each exported name lives.
_WHERE = {
    "Artifact": "ailedger.chain._artifacts",
    "ArtifactStore": "ailedger.chain._artifacts",
    "load_artifact": "ailedger.chain._artifacts",
    "connect_rpc": "ailedger.chain._connect",
    "open_embedded": "ailedger.chain._connect",
    "ANVIL_CHAIN_ID": "ailedger.chain._constants",
    "DEV_FAUCET_ADDRESS": "ailedger.chain._constants",
    "DEV_FAUCET_KEY": "ailedger.chain._constants",
    "EMBEDDED_CHAIN_ID": "ailedger.chain._constants",
    "EmbeddedNode": "ailedger.chain._embedded",
    "EmbeddedRevert": "ailedger.chain._embedded",
    "EventRecord": "ailedger.chain._events",
    "ContractReverted": "ailedger.chain._revert",
    "decode_revert": "ailedger.chain._revert",
    "LogAnchors": "ailedger.chain.anchors",
    "BACKENDS": "ailedger.chain.backends",
    "ChainBackend": "ailedger.chain.backends",
    "EmbeddedBackend": "ailedger.chain.backends",
    "RpcBackend": "ailedger.chain.backends",
    "backend_named": "ailedger.chain.backends",
    "open_workspace_chain": "ailedger.chain.backends",
    "AccountSource": "ailedger.chain.client",
    "Chain": "ailedger.chain.client",
    "DeployedContract": "ailedger.chain.client",
    "Receipt": "ailedger.chain.client",
    "Signer": "ailedger.chain.client",
    "Deployment": "ailedger.chain.deployments",
    "DeploymentBook": "ailedger.chain.deployments",
    "deploy_contracts": "ailedger.chain.deployments",
    "Membership": "ailedger.chain.membership",
    "ModelRegistry": "ailedger.chain.registry",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
