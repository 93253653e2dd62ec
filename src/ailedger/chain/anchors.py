"""A typed client for ``contracts/LogAnchors.sol``: log registration and checkpoint anchors.

The EIP-712 messages (``ailedger.chain.eip712``) are bound to this contract's domain
(:meth:`LogAnchors.domain`): registration consent and checkpoint signatures by the log key,
cosignatures by witnesses. :meth:`LogAnchors.anchor` sorts the cosignatures by signer
address, as the contract requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import (
    Domain,
    SigningKey,
    checkpoint_digest,
    cosignature_digest,
    registration_digest,
    sign_digest,
    sort_by_signer,
)

__all__ = ["ZERO_ADDRESS", "AnchorSubmission", "LogAnchors", "LogInfo", "OnChainAnchor"]

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class LogInfo:
    """A registered log: its admin, signing address and witness threshold."""

    log_id: bytes
    admin: str
    signer: str
    threshold: int
    witness_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_id": "0x" + self.log_id.hex(),
            "admin": self.admin,
            "signer": self.signer,
            "threshold": self.threshold,
            "witness_count": self.witness_count,
        }


@dataclass(frozen=True)
class OnChainAnchor:
    """Anchor number ``index`` of a log: (size, root) stored in ``block_number``."""

    index: int
    size: int
    root: bytes
    block_number: int
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "root": self.root.hex(),
            "block": self.block_number,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class AnchorSubmission:
    """A mined anchor transaction and the anchor it stored."""

    receipt: Receipt
    anchor: OnChainAnchor
    consistency_checked: bool


class LogAnchors(ContractWrapper):
    """The LogAnchors contract at ``contract`` on ``chain``."""

    def domain(self) -> Domain:
        """The EIP-712 domain every signature for this contract is bound to."""
        return Domain.log_anchors(self.chain.chain_id, self.address)

    # -- signatures --------------------------------------------------------------------

    def consent(self, log: bytes, admin: str, log_key: SigningKey) -> bytes:
        """The log key's consent to ``admin`` registering log ``log``."""
        return sign_digest(registration_digest(self.domain(), log, admin), log_key)

    def sign_checkpoint(self, log: bytes, size: int, root: bytes, log_key: SigningKey) -> bytes:
        return sign_digest(checkpoint_digest(self.domain(), log, size, root), log_key)

    def cosign(self, log: bytes, size: int, root: bytes, witness: SigningKey) -> bytes:
        return sign_digest(cosignature_digest(self.domain(), log, size, root), witness)

    # -- transactions ------------------------------------------------------------------

    def register(
        self,
        origin: str,
        log_signer: str,
        witnesses: Sequence[str],
        threshold: int,
        consent: bytes,
        *,
        sender: Signer | AccountSource,
    ) -> Receipt:
        """Register log ``origin``; ``sender`` becomes its admin (``consent`` names it)."""
        return self.chain.transact(
            self.contract,
            "registerLog",
            origin,
            to_checksum_address(log_signer),
            [to_checksum_address(w) for w in witnesses],
            threshold,
            consent,
            signer=sender,
        )

    def anchor(
        self,
        log: bytes,
        size: int,
        root: bytes,
        log_signature: bytes,
        cosignatures: Sequence[bytes],
        *,
        sender: Signer | AccountSource,
        proof: Sequence[bytes] | None = None,
    ) -> AnchorSubmission:
        """Anchor (size, root); with ``proof`` also check consistency with the last anchor."""
        digest = cosignature_digest(self.domain(), log, size, root)
        ordered = sort_by_signer(digest, list(cosignatures))
        if proof is None:
            receipt = self.chain.transact(
                self.contract, "anchor", log, size, root, log_signature, ordered, signer=sender
            )
        else:
            receipt = self.chain.transact(
                self.contract,
                "anchorWithProof",
                log,
                size,
                root,
                log_signature,
                ordered,
                list(proof),
                signer=sender,
            )
        events = [e for e in receipt.events if e.event == "Anchored"]
        index = int(events[0].args["index"]) if events else self.count(log) - 1
        stored = self.anchor_at(log, index)
        return AnchorSubmission(receipt, stored, proof is not None)

    def add_witness(self, log: bytes, witness: str, *, sender: Signer | AccountSource) -> Receipt:
        w = to_checksum_address(witness)
        return self.chain.transact(self.contract, "addWitness", log, w, signer=sender)

    # -- queries -----------------------------------------------------------------------

    def log_info(self, log: bytes) -> LogInfo | None:
        """The registered log ``log``, or None."""
        admin, witness_count, threshold, signer = self.chain.call(self.contract, "getLog", log)
        if int(admin, 16) == 0:
            return None
        return LogInfo(log, str(admin), str(signer), int(threshold), int(witness_count))

    def is_witness(self, log: bytes, account: str) -> bool:
        a = to_checksum_address(account)
        return bool(self.chain.call(self.contract, "isWitness", log, a))

    def count(self, log: bytes) -> int:
        return int(self.chain.call(self.contract, "anchorCount", log))

    def anchor_at(self, log: bytes, index: int) -> OnChainAnchor:
        size, block, timestamp, root = self.chain.call(self.contract, "anchorAt", log, index)
        return OnChainAnchor(index, int(size), bytes(root), int(block), int(timestamp))

    def latest(self, log: bytes) -> OnChainAnchor | None:
        n = self.count(log)
        return None if n == 0 else self.anchor_at(log, n - 1)

    def find(self, log: bytes, size: int) -> OnChainAnchor | None:
        """The first anchor of ``log`` with at least ``size`` entries, or None."""
        found, index = self.chain.call(self.contract, "findAnchor", log, size)
        return self.anchor_at(log, int(index)) if found else None

    def sender_address(self, sender: Signer | AccountSource) -> str:
        return to_checksum_address(tx_signer(sender).address)
