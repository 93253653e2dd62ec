"""A typed client for ``contracts/LogAnchors.sol``: log registration and checkpoint anchors.

A log's id is ``log_id(origin, signer)``: origin and log key together. The EIP-712 messages
(``ailedger.chain.eip712``) are bound to this contract's domain (:meth:`LogAnchors.domain`):
registration consent and checkpoint signatures by the log key, cosignatures by witnesses.
:meth:`LogAnchors.anchor` sorts the cosignatures by signer address, as the contract requires.
Witness-set changes are proposed, wait ``CONFIG_DELAY`` and are then applied; the admin hands
over in two steps (transfer, accept).
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
    log_id,
    registration_digest,
    sign_digest,
    sort_by_signer,
)

__all__ = ["ZERO_ADDRESS", "AnchorSubmission", "LogAnchors", "LogInfo", "OnChainAnchor"]

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class LogInfo:
    """A registered log: its admin, signing address, current witness set (number ``epoch``)
    and threshold, and what is pending (a new admin; a witness set that may take effect at
    ``pending_at``)."""

    log_id: bytes
    admin: str
    signer: str
    threshold: int
    witness_count: int
    epoch: int
    pending_admin: str | None = None
    pending_epoch: int | None = None
    pending_threshold: int = 0
    pending_count: int = 0
    pending_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_id": "0x" + self.log_id.hex(),
            "admin": self.admin,
            "signer": self.signer,
            "threshold": self.threshold,
            "witness_count": self.witness_count,
            "witness_epoch": self.epoch,
            "pending_admin": self.pending_admin,
            "pending_witness_set": None
            if self.pending_epoch is None
            else {
                "epoch": self.pending_epoch,
                "threshold": self.pending_threshold,
                "witness_count": self.pending_count,
                "effective_at": self.pending_at,
            },
        }


@dataclass(frozen=True)
class OnChainAnchor:
    """Anchor number ``index`` of a log: (size, root) stored in ``block_number``, cosigned by
    ``cosignatures`` witnesses of set ``witness_epoch``; ``consistency_proven`` says whether
    the contract verified that it extends the previous anchor (or the empty tree)."""

    index: int
    size: int
    root: bytes
    block_number: int
    timestamp: int
    cosignatures: int = 0
    consistency_proven: bool = False
    witness_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "root": self.root.hex(),
            "block": self.block_number,
            "timestamp": self.timestamp,
            "cosignatures": self.cosignatures,
            "consistency_proven": self.consistency_proven,
            "witness_epoch": self.witness_epoch,
        }


@dataclass(frozen=True)
class AnchorSubmission:
    """A mined anchor transaction and the anchor it stored."""

    receipt: Receipt
    anchor: OnChainAnchor
    consistency_checked: bool


class LogAnchors(ContractWrapper):
    """The LogAnchors contract at ``contract`` on ``chain``."""

    @staticmethod
    def log_id(origin: str, signer: str) -> bytes:
        """The id of log ``origin`` signed by ``signer`` (``LogAnchors.logIdOf``)."""
        return log_id(origin, signer)

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
        return AnchorSubmission(receipt, stored, stored.consistency_proven)

    def prove_consistency(
        self, log: bytes, index: int, proof: Sequence[bytes], *, sender: Signer | AccountSource
    ) -> Receipt:
        """Prove anchor ``index`` consistent with the anchor before it (anyone may)."""
        return self.chain.transact(
            self.contract, "proveConsistency", log, index, list(proof), signer=sender
        )

    def propose_witness_set(
        self,
        log: bytes,
        witnesses: Sequence[str],
        threshold: int,
        *,
        sender: Signer | AccountSource,
    ) -> Receipt:
        """Propose a new witness set; it may take effect ``CONFIG_DELAY`` seconds later."""
        ws = [to_checksum_address(w) for w in witnesses]
        return self.chain.transact(
            self.contract, "proposeWitnessSet", log, ws, threshold, signer=sender
        )

    def apply_witness_set(self, log: bytes, *, sender: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "applyWitnessSet", log, signer=sender)

    def cancel_witness_set(self, log: bytes, *, sender: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "cancelWitnessSet", log, signer=sender)

    def transfer_admin(
        self, log: bytes, new_admin: str, *, sender: Signer | AccountSource
    ) -> Receipt:
        """Start handing the log to ``new_admin``; it takes over by :meth:`accept_admin`."""
        a = to_checksum_address(new_admin)
        return self.chain.transact(self.contract, "transferLogAdmin", log, a, signer=sender)

    def accept_admin(self, log: bytes, *, sender: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "acceptLogAdmin", log, signer=sender)

    # -- queries -----------------------------------------------------------------------

    def log_info(self, log: bytes) -> LogInfo | None:
        """The registered log ``log``, or None."""
        (
            admin,
            threshold,
            witness_count,
            epoch,
            signer,
            pending_threshold,
            pending_count,
            pending_epoch,
            pending_admin,
            pending_at,
            _epochs,
        ) = self.chain.call(self.contract, "getLog", log)
        if int(epoch) == 0:
            return None
        return LogInfo(
            log,
            str(admin),
            str(signer),
            int(threshold),
            int(witness_count),
            int(epoch),
            None if int(pending_admin, 16) == 0 else str(pending_admin),
            int(pending_epoch) or None,
            int(pending_threshold),
            int(pending_count),
            int(pending_at),
        )

    def is_witness(self, log: bytes, account: str) -> bool:
        a = to_checksum_address(account)
        return bool(self.chain.call(self.contract, "isWitness", log, a))

    def count(self, log: bytes) -> int:
        return int(self.chain.call(self.contract, "anchorCount", log))

    def anchor_at(self, log: bytes, index: int) -> OnChainAnchor:
        size, block, timestamp, cosigs, proven, epoch, root = self.chain.call(
            self.contract, "anchorAt", log, index
        )
        return OnChainAnchor(
            index,
            int(size),
            bytes(root),
            int(block),
            int(timestamp),
            int(cosigs),
            bool(proven),
            int(epoch),
        )

    def latest(self, log: bytes) -> OnChainAnchor | None:
        n = self.count(log)
        return None if n == 0 else self.anchor_at(log, n - 1)

    def find(self, log: bytes, size: int) -> OnChainAnchor | None:
        """The first anchor of ``log`` with at least ``size`` entries, or None."""
        found, index = self.chain.call(self.contract, "findAnchor", log, size)
        return self.anchor_at(log, int(index)) if found else None

    def sender_address(self, sender: Signer | AccountSource) -> str:
        return to_checksum_address(tx_signer(sender).address)
