"""Deploying the ailedger contracts and remembering where they are.

``deploy_contracts`` deploys Membership (its global admin is the deployer), LogAnchors and
ModelRegistry (wired to that Membership, administered by the deployer, with a delay of
``registry_delay`` seconds on weakening requirement changes and admin handovers) and returns a
:class:`Deployment`. A :class:`DeploymentBook` keeps one deployment per chain id in a JSON
file (the workspace's ``.ailedger/deployments.json``)::

    {"131277322940537": {"chain_id": 131277322940537, "deployer": "0x...",
                         "contracts": {"LogAnchors": {"address": "0x...", "block": 3,
                                                      "tx_hash": "0x..."}, ...}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Signer, tx_signer
from ailedger.chain.client import Chain
from ailedger.errors import ConflictError, FormatError, NotFound

__all__ = [
    "CONTRACT_NAMES",
    "DEFAULT_REGISTRY_DELAY",
    "DEPLOYMENTS_FILE",
    "ContractRecord",
    "Deployment",
    "DeploymentBook",
    "deploy_contracts",
]

#: The contracts ``ailedger chain deploy`` deploys, in order.
CONTRACT_NAMES = ("Membership", "LogAnchors", "ModelRegistry")
#: The deployment book inside a workspace's ``.ailedger/``.
DEPLOYMENTS_FILE = "deployments.json"
#: ModelRegistry's delay (seconds) on a requirement change that weakens a rule, and on a
#: registry-admin handover: two days.
DEFAULT_REGISTRY_DELAY = 2 * 24 * 3600


@dataclass(frozen=True)
class ContractRecord:
    """Where one contract was deployed: address, block and creating transaction."""

    name: str
    address: str
    block_number: int
    tx_hash: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "block": self.block_number, "tx_hash": self.tx_hash}

    @classmethod
    def from_dict(cls, name: str, doc: Any) -> ContractRecord:
        if not isinstance(doc, dict) or not isinstance(doc.get("address"), str):
            raise FormatError(f"deployment record of {name} has no address")
        block = doc.get("block")
        if not isinstance(block, int) or isinstance(block, bool) or block < 0:
            raise FormatError(f"deployment record of {name} has no valid block")
        tx = doc.get("tx_hash")
        return cls(name, to_checksum_address(doc["address"]), block, tx if tx else None)

    @classmethod
    def of(cls, deployed: DeployedContract) -> ContractRecord:
        return cls(deployed.name, deployed.address, deployed.block_number, deployed.tx_hash)


@dataclass(frozen=True)
class Deployment:
    """The ailedger contracts on one chain."""

    chain_id: int
    deployer: str
    contracts: dict[str, ContractRecord]

    def record(self, name: str) -> ContractRecord:
        if name not in self.contracts:
            raise NotFound(f"no {name} in the deployment on chain {self.chain_id}")
        return self.contracts[name]

    def address(self, name: str) -> str:
        return self.record(name).address

    def open(self, chain: Chain, name: str) -> DeployedContract:
        """The deployed contract ``name`` on ``chain`` (its events get indexed)."""
        if chain.chain_id != self.chain_id:
            raise ConflictError(
                f"the deployment is on chain {self.chain_id}, the node on chain {chain.chain_id}"
            )
        rec = self.record(name)
        return chain.at(name, rec.address, from_block=rec.block_number)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "deployer": self.deployer,
            "contracts": {n: r.to_dict() for n, r in sorted(self.contracts.items())},
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Deployment:
        if not isinstance(doc, dict):
            raise FormatError("a deployment must be a JSON object")
        chain_id = doc.get("chain_id")
        contracts = doc.get("contracts")
        if not isinstance(chain_id, int) or not isinstance(contracts, dict):
            raise FormatError("a deployment needs an integer chain_id and a contracts object")
        return cls(
            chain_id,
            str(doc.get("deployer", "")),
            {str(n): ContractRecord.from_dict(str(n), r) for n, r in contracts.items()},
        )


def deploy_contracts(
    chain: Chain,
    signer: Signer | AccountSource,
    *,
    registry_delay: int = DEFAULT_REGISTRY_DELAY,
) -> Deployment:
    """Deploy Membership, LogAnchors and ModelRegistry, administered by ``signer``."""
    admin = to_checksum_address(tx_signer(signer).address)
    membership = chain.deploy("Membership", admin, signer=signer)
    anchors = chain.deploy("LogAnchors", signer=signer)
    registry = chain.deploy(
        "ModelRegistry", membership.address, admin, registry_delay, signer=signer
    )
    records = {d.name: ContractRecord.of(d) for d in (membership, anchors, registry)}
    return Deployment(chain.chain_id, admin, records)


class DeploymentBook:
    """Deployments by chain id in one JSON file (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise FormatError(f"{self.path} is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise FormatError(f"{self.path} must hold a JSON object")
        return doc

    def all(self) -> list[Deployment]:
        return [Deployment.from_dict(d) for _, d in sorted(self._read().items())]

    def get(self, chain_id: int) -> Deployment | None:
        doc = self._read().get(str(chain_id))
        return None if doc is None else Deployment.from_dict(doc)

    def require(self, chain_id: int) -> Deployment:
        found = self.get(chain_id)
        if found is None:
            raise NotFound(
                f"the ailedger contracts are not deployed on chain {chain_id} (per {self.path})",
                hint="run `ailedger chain deploy --key NAME`",
            )
        return found

    def put(self, deployment: Deployment) -> None:
        doc = self._read()
        doc[str(deployment.chain_id)] = deployment.to_dict()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
