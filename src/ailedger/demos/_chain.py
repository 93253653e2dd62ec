"""The demo's chain side: deploy the contracts, set up organisations and roles, anchor the
log and check a receipt against the anchor, all on the workspace's embedded chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3.providers.eth_tester import EthereumTesterProvider

from ailedger.chain import Chain, LogAnchors, deploy_contracts
from ailedger.chain.anchoring import (
    ANCHORS_FILE,
    AnchorBook,
    AnchorResult,
    AnchorVerification,
    anchor_checkpoint,
    receipt_with_anchor,
    verify_receipt_anchor,
)
from ailedger.chain.deployments import DEPLOYMENTS_FILE, Deployment, DeploymentBook
from ailedger.chain.membership import Membership
from ailedger.demos._steps import IDENTITIES
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.log.receipt import Receipt, ReceiptVerification, verify_receipt
from ailedger.registry._chain import ChainBackend, chain_requirement
from ailedger.workspace import Workspace

__all__ = [
    "advance_time",
    "anchor_log",
    "deploy_and_grant",
    "mine",
    "receipt_checked",
    "requirement_text",
]

_ETHER = 10**18


def deploy_and_grant(
    workspace: Workspace, chain: Chain, signers: dict[str, Secp256k1Signer]
) -> tuple[Deployment, list[str]]:
    """Deploy the contracts (the admin key), create the organisations, grant the roles of
    :data:`IDENTITIES`; return the deployment and what was granted.

    The admin's own organisation gets the admin as its admin; any other the first member
    named in :data:`IDENTITIES`, once it consents. Every member joins with its own signed
    consent (EIP-712 ``Join``), which the admin relays."""
    admin = signers["admin"]
    for name in IDENTITIES:
        if name != "witness":  # the witness only signs; it sends no transaction
            chain.fund(signers[name].address, 10 * _ETHER)
    deployment = deploy_contracts(chain, admin)
    DeploymentBook(workspace.path / DEPLOYMENTS_FILE).put(deployment)
    members = Membership(chain, deployment.open(chain, "Membership"))
    granted = []
    for name, (org, role) in IDENTITIES.items():
        if role is None:
            continue
        if not members.org_exists(org):
            first = admin if org == IDENTITIES["admin"][0] else signers[name]
            members.create_org(org, first.address, signer=admin)
        # Joining takes the member's consent: its signed Join, relayed by the admin.
        members.enrol(org, signers[name], role, signer=admin)
        granted.append(f"{role} to {name} ({org})")
    return deployment, granted


def requirement_text(backend: ChainBackend, env: str) -> str:
    """ModelRegistry's approval requirement for ``env``, in one phrase."""
    have = chain_requirement(backend.registry, env)
    if have is None:
        return "no requirement"
    roles = ", ".join(f"{role} x{count}" for role, count in have.roles)
    return f"{roles}, {have.min_organisations} organisations"


def anchor_log(
    log: TransparencyLog,
    workspace: Workspace,
    chain: Chain,
    deployment: Deployment,
    signers: dict[str, Secp256k1Signer],
) -> tuple[AnchorResult, LogAnchors]:
    """Sign a checkpoint of the whole log with the log key and anchor it, cosigned by the
    witness (registering the log on first use); the anchor goes into the workspace's book."""
    log_signer = signers["log"]
    log.checkpoint(Secp256k1NoteKey.from_signer(log.origin, log_signer))
    anchors = LogAnchors(chain, deployment.open(chain, "LogAnchors"))
    anchored = anchor_checkpoint(
        log,
        anchors,
        log_signer,
        witness_keys=[signers["witness"]],
        book=AnchorBook(workspace.path / ANCHORS_FILE),
    )
    return anchored, anchors


def receipt_checked(
    log: TransparencyLog,
    workspace: Workspace,
    anchors: LogAnchors,
    log_signer: Secp256k1Signer,
    index: int,
    path: Path,
) -> tuple[ReceiptVerification, AnchorVerification]:
    """Write a receipt for entry ``index`` carrying its anchor to ``path``, read it back,
    and verify it offline (against the log key) and on the chain."""
    note_key = Secp256k1NoteKey.from_signer(log.origin, log_signer)
    book = AnchorBook(workspace.path / ANCHORS_FILE)
    receipt_with_anchor(log, index, note_key, book).write(path)
    receipt = Receipt.load(path)
    return verify_receipt(receipt, log_key=note_key), verify_receipt_anchor(receipt, anchors)


def advance_time(chain: Chain, seconds: int) -> int:
    """Mine a block ``seconds`` after the latest (the embedded chain or a development node
    such as anvil); the new block's timestamp."""
    target = chain.block_timestamp() + seconds
    provider = chain.w3.provider
    request: Any = provider.make_request
    if isinstance(provider, EthereumTesterProvider):
        request("testing_timeTravel", [target])
        request("evm_mine", [1])
    else:
        request("evm_setNextBlockTimestamp", [target])
        request("evm_mine", [])
    return chain.block_timestamp()


def mine(chain: Chain) -> None:
    """Mine one empty block (a sample's seed is the hash of the block after a commitment)."""
    request: Any = chain.w3.provider.make_request
    request("evm_mine", [])
