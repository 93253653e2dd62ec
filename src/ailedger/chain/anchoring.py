"""Anchoring log checkpoints on a chain, and checking that a receipt is covered by an anchor.

::

    anchors = LogAnchors(chain, deployment.open(chain, "LogAnchors"))
    result = anchor_checkpoint(log, anchors, log_signer, witness_keys=[w1, w2], book=book)
    receipt = receipt_with_anchor(log, index, log.log_key(), book)     # carries "anchor"
    verify_receipt_anchor(receipt, anchors)                            # asks the chain

**Anchoring** (:func:`anchor_checkpoint`): the first time, the log (id = origin and log key
together, :func:`~ailedger.chain.eip712.log_id`) is registered on the LogAnchors contract with
the log key's consent (EIP-712 ``LogRegistration``), its witnesses and threshold k >= 1; then
the latest checkpoint's (size, root) is submitted with the log key's EIP-712 ``Checkpoint``
signature and the witnesses' ``Cosignature`` signatures (made here from local keys, or
:class:`Eip712Cosignature` documents from remote witnesses). With ``with_consistency`` the
contract also verifies an RFC 9162 consistency proof from the previous anchor and stores the
anchor as proven consistent (if someone relayed the same signatures without a proof first,
the proof upgrades that anchor). The anchor is recorded in an :class:`AnchorBook`.

**Receipts** (:func:`receipt_with_anchor`) carry an ``anchor`` object (chain id, contract,
log id, log signer, anchor index, size, root, transaction, block). The receipt is made against
the latest checkpoint when an anchor covers it, else against the latest anchored checkpoint
that covers the entry; when the anchor is larger than the receipt's checkpoint, the object
also carries ``consistency``: the RFC 9162 proof from the checkpoint to the anchored tree.

**What** :func:`verify_receipt_anchor` **proves**, given the offline receipt checks passed:
the contract at ``contract`` runs the LogAnchors code shipped with ailedger (immutables
aside); the log (the origin and the receipt's log key) is registered there; anchor number
``index`` (or, without one, the first anchor at least as large as the checkpoint) has either
exactly the checkpoint's (size, root), or a larger size whose root extends the checkpoint's
tree by the carried consistency proof. Because that anchor needed the log key's signature and
k >= 1 witness cosignatures, the entry is in a tree that the log committed to on-chain at the
anchor's block: the log cannot later show anyone a history without it. The result also
reports the anchor's on-chain ``consistency_proven`` flag: whether the contract verified that
this anchor extends the previous one (otherwise only the witnesses vouch for that). It does
not prove anything about the chain's own finality beyond what the node reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.chain._anchor_book import (
    ANCHORS_FILE,
    COSIGNATURE_MEDIA_TYPE,
    AnchorBook,
    AnchorRecord,
    Eip712Cosignature,
)
from ailedger.chain._anchor_code import check_contract_code
from ailedger.chain.eip712 import log_id
from ailedger.errors import (
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInput,
    ProofInvalid,
    SignatureInvalid,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import (
    AnyNoteKey,
    Checkpoint,
    Secp256k1NoteKey,
    SignedNote,
    parse_vkey,
)
from ailedger.log.receipt import Receipt
from ailedger.merkle import EMPTY_ROOT, verify_consistency

if TYPE_CHECKING:  # the chain client (web3) is imported only by code that talks to a chain
    from ailedger.chain._types import AccountSource, Signer
    from ailedger.chain.anchors import LogAnchors, OnChainAnchor

__all__ = [
    "ANCHORS_FILE",
    "COSIGNATURE_MEDIA_TYPE",
    "AnchorBook",
    "AnchorRecord",
    "AnchorResult",
    "AnchorVerification",
    "Eip712Cosignature",
    "anchor_checkpoint",
    "cosign_checkpoint",
    "receipt_with_anchor",
    "verify_receipt_anchor",
]


@dataclass(frozen=True)
class AnchorResult:
    """What :func:`anchor_checkpoint` did: the anchor, and whether it registered the log."""

    record: AnchorRecord
    registered: bool
    witnesses: tuple[str, ...]
    gas_used: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "anchor": self.record.to_dict(),
            "registered": self.registered,
            "cosigners": list(self.witnesses),
            "gas_used": self.gas_used,
        }


@dataclass(frozen=True)
class AnchorVerification:
    """What :func:`verify_receipt_anchor` established on the chain."""

    chain_id: int
    contract: str
    log_id: bytes
    log_signer: str
    anchor: OnChainAnchor
    checkpoint_size: int
    via_consistency_proof: bool

    @property
    def consistency_proven(self) -> bool:
        """Whether the contract proved the anchor consistent with the previous anchor."""
        return self.anchor.consistency_proven

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "log_id": "0x" + self.log_id.hex(),
            "log_signer": self.log_signer,
            "anchor": self.anchor.to_dict(),
            "checkpoint_size": self.checkpoint_size,
            "via_consistency_proof": self.via_consistency_proof,
            "consistency_proven": self.consistency_proven,
        }


def _checkpoint(
    log: TransparencyLog, key: AnyNoteKey, note: SignedNote | None = None
) -> tuple[Checkpoint, Any]:
    """``note`` (default: the log's latest checkpoint), checked: signed by ``key`` and
    matching the stored tree."""
    note = log.latest_checkpoint() if note is None else note
    note.verify_one(key)
    cp = Checkpoint.parse(note.text)
    if cp.origin != log.origin or cp.size > log.size() or log.root(cp.size) != cp.root:
        raise IntegrityError(f"the checkpoint of size {cp.size} does not match the log")
    return cp, note


def cosign_checkpoint(
    log: TransparencyLog, anchors: LogAnchors, witness: Secp256k1Signer
) -> Eip712Cosignature:
    """``witness``'s EIP-712 cosignature of the log's latest checkpoint for ``anchors``.

    Like ``ailedger log cosign``, it first checks the checkpoint: signed by the log's key
    and matching the stored tree."""
    key = log.log_key()
    if key is None:
        raise InvalidInput(f"log {log.origin} has no checkpoint", hint="run `log checkpoint`")
    if not isinstance(key, Secp256k1NoteKey):
        raise InvalidInput(f"log {log.origin} is not signed by a secp256k1 key: cannot anchor")
    cp, _ = _checkpoint(log, key)
    signature = anchors.cosign(log_id(log.origin, key.address), cp.size, cp.root, witness)
    chain_id = anchors.chain.chain_id
    return Eip712Cosignature(
        chain_id,
        anchors.address,
        log.origin,
        key.address,
        cp.size,
        cp.root,
        witness.address,
        signature,
    )


def _register(
    anchors: LogAnchors,
    origin: str,
    log_key: Secp256k1Signer,
    sender: Signer | AccountSource,
    witnesses: Sequence[str],
    threshold: int,
) -> None:
    lid = log_id(origin, log_key.address)
    admin = anchors.sender_address(sender)
    consent = anchors.consent(lid, admin, log_key)
    anchors.register(origin, log_key.address, witnesses, threshold, consent, sender=sender)


def _cosignatures(
    anchors: LogAnchors,
    origin: str,
    cp: Checkpoint,
    witness_keys: Sequence[Secp256k1Signer],
    cosignatures: Sequence[Eip712Cosignature],
    log_signer: str,
) -> list[bytes]:
    """One EIP-712 cosignature per witness: made by local keys, or checked remote ones."""
    lid = log_id(origin, log_signer)
    chain_id, contract = anchors.chain.chain_id, anchors.address
    sigs: dict[str, bytes] = {}
    for w in witness_keys:
        sigs[w.address.lower()] = anchors.cosign(lid, cp.size, cp.root, w)
    for c in cosignatures:
        c.check()
        mine = (c.chain_id, c.contract.lower(), c.origin, c.log_id, c.size, c.root)
        if mine != (chain_id, contract.lower(), origin, lid, cp.size, cp.root):
            raise InvalidInput(
                f"the cosignature by {c.signer} is for {c.origin} size {c.size} on chain "
                f"{c.chain_id} contract {c.contract}, not for the checkpoint being anchored "
                f"({origin} size {cp.size} on chain {chain_id} contract {contract})"
            )
        sigs[c.signer.lower()] = c.signature
    return list(sigs.values())


def _check_grows(latest: OnChainAnchor | None, cp: Checkpoint) -> None:
    """Refuse, before sending, what the contract would refuse: a replay or a shrink."""
    if latest is None or latest.size < cp.size:
        return
    if latest.size == cp.size and latest.root == cp.root:
        raise ConflictError(
            f"the checkpoint of size {cp.size} is already anchored (anchor #{latest.index})",
            hint="append entries and sign a new checkpoint first",
        )
    if latest.size == cp.size:
        raise ConflictError(
            f"the chain holds an anchor of size {cp.size} with another root: the log forked"
        )
    raise ConflictError(
        f"the chain already holds a larger anchor (size {latest.size}) than this checkpoint "
        f"(size {cp.size})"
    )


def anchor_checkpoint(
    log: TransparencyLog,
    anchors: LogAnchors,
    log_key: Secp256k1Signer,
    *,
    sender: Signer | AccountSource | None = None,
    witness_keys: Sequence[Secp256k1Signer] = (),
    cosignatures: Sequence[Eip712Cosignature] = (),
    witnesses: Sequence[str] | None = None,
    threshold: int | None = None,
    with_consistency: bool = False,
    book: AnchorBook | None = None,
    checkpoint: SignedNote | None = None,
) -> AnchorResult:
    """Anchor the log's latest checkpoint (or ``checkpoint``, a stored one, e.g. the one a
    service published) on ``anchors``; register the log on first use.

    ``sender`` pays for the transactions and becomes the log's admin at registration
    (default: the log key's own account). ``witnesses``/``threshold`` are used only when
    registering (default: every cosigner given here, all of them required)."""
    sender = sender or log_key
    origin = log.origin
    cp, _ = _checkpoint(log, Secp256k1NoteKey(origin, log_key.address), checkpoint)
    lid = log_id(origin, log_key.address)
    chain_id, contract = anchors.chain.chain_id, anchors.address
    sigs = _cosignatures(anchors, origin, cp, witness_keys, cosignatures, log_key.address)
    cosigners = tuple(sorted({w.address for w in witness_keys} | {c.signer for c in cosignatures}))

    info = anchors.log_info(lid)
    registered = info is None
    if info is None:
        wanted = list(witnesses) if witnesses is not None else list(cosigners)
        k = len(wanted) if threshold is None else threshold
        if not 1 <= k <= len(wanted):
            raise InvalidInput(
                f"a log is registered with a threshold k of 1 to {len(wanted)} witnesses "
                f"(k = {k}): anchors without witness cosignatures are refused",
                hint="name witnesses (--witness, --witness-key or --cosignature) and --threshold",
            )
        _register(anchors, origin, log_key, sender, wanted, k)
    elif info.signer.lower() != log_key.address.lower():
        raise ConflictError(
            f"log {origin} is registered with signer {info.signer}, not {log_key.address}",
            hint="anchor with the log's registered key",
        )

    latest = anchors.latest(lid)
    base = latest
    if (
        with_consistency
        and latest is not None
        and (latest.size, latest.root) == (cp.size, cp.root)
        and not latest.consistency_proven
    ):
        # Someone relayed this checkpoint's signatures without a proof first (finding 11):
        # the proof from the anchor before it marks the stored anchor proven.
        base = anchors.anchor_at(lid, latest.index - 1) if latest.index else None
    else:
        _check_grows(latest, cp)
    proof: list[bytes] | None = None
    if with_consistency:
        old_size, old_root = (0, EMPTY_ROOT) if base is None else (base.size, base.root)
        if log.root(old_size) != old_root:
            raise IntegrityError(
                f"the anchored root of size {old_size} is not this log's root at that size"
            )
        proof = list(log.consistency_proof(old_size, cp.size).hashes)
    log_signature = anchors.sign_checkpoint(lid, cp.size, cp.root, log_key)
    submission = anchors.anchor(
        lid, cp.size, cp.root, log_signature, sigs, sender=sender, proof=proof
    )
    stored = submission.anchor
    record = AnchorRecord(
        chain_id=chain_id,
        contract=contract,
        origin=origin,
        log_signer=log_key.address,
        index=stored.index,
        size=stored.size,
        root=stored.root,
        tx_hash=submission.receipt.tx_hash,
        block=submission.receipt.block_number,
        consistency_checked=submission.consistency_checked,
    )
    if book is not None:
        book.add(record)
    return AnchorResult(record, registered, cosigners, submission.receipt.gas_used)


def receipt_with_anchor(
    log: TransparencyLog,
    index: int,
    log_key: AnyNoteKey,
    book: AnchorBook,
    *,
    chain_id: int | None = None,
) -> Receipt:
    """A receipt for entry ``index`` that carries an anchor covering it when there is one
    (only anchors on chain ``chain_id`` when given).

    Against the latest checkpoint if an anchor is at least that large (the first such;
    a larger one comes with a consistency proof), else against the latest anchored
    checkpoint if it covers the entry, else (no anchor covers it) without an anchor."""
    records = [r for r in book.records(log.origin) if r.size <= log.size()]
    if chain_id is not None:
        records = [r for r in records if r.chain_id == chain_id]
    if isinstance(log_key, Secp256k1NoteKey):  # anchors of this origin under this key only
        records = [r for r in records if r.log_signer.lower() == log_key.address.lower()]
    records = [r for r in records if log.root(r.size) == r.root]
    latest = log.latest_checkpoint()
    cp = Checkpoint.parse(latest.text)
    for r in records:
        if r.size >= cp.size:
            anchor = r.to_dict()
            if r.size > cp.size:
                hashes = log.consistency_proof(cp.size, r.size).hashes
                anchor["consistency"] = [h.hex() for h in hashes]
            return dataclasses.replace(log.receipt(index, log_key, latest), anchor=anchor)
    covering = [r for r in records if r.size > index]
    if covering:
        r = covering[-1]
        for note in reversed(log.checkpoints()):
            old = Checkpoint.parse(note.text)
            if (old.size, old.root) == (r.size, r.root):
                receipt = log.receipt(index, log_key, note)
                return dataclasses.replace(receipt, anchor=r.to_dict())
    return log.receipt(index, log_key, latest)


def _claimed(receipt: Receipt) -> tuple[AnchorRecord | None, list[bytes] | None]:
    if receipt.anchor is None:
        return None, None
    record = AnchorRecord.from_dict(receipt.anchor, receipt.origin)
    raw = receipt.anchor.get("consistency")
    if raw is None:
        return record, None
    if not isinstance(raw, list) or not all(isinstance(h, str) for h in raw):
        raise FormatError("receipt anchor 'consistency' must be a list of hex hashes")
    try:
        return record, [bytes.fromhex(h) for h in raw]
    except ValueError:
        raise FormatError("receipt anchor 'consistency' holds a non-hex hash") from None


def verify_receipt_anchor(receipt: Receipt, anchors: LogAnchors) -> AnchorVerification:
    """Check on ``anchors``' chain that the receipt's checkpoint is covered by an anchor.

    Run :func:`ailedger.log.receipt.verify_receipt` first (this checks only the chain side).
    Raises ``ProofInvalid``/``SignatureInvalid`` (exit 1) when it is not covered."""
    cp = Checkpoint.parse(receipt.proof.checkpoint.text)
    chain_id = anchors.chain.chain_id
    claimed, consistency = _claimed(receipt)
    if claimed is not None:
        if claimed.chain_id != chain_id:
            raise ProofInvalid(
                f"the receipt's anchor is on chain {claimed.chain_id}, the node is on {chain_id}",
                hint="point --rpc at the chain named in the receipt",
            )
        if claimed.contract.lower() != anchors.address.lower():
            raise ProofInvalid(
                f"the receipt's anchor is in contract {claimed.contract}, not in {anchors.address}"
            )
    check_contract_code(anchors)
    key = parse_vkey(receipt.log_key)
    if not isinstance(key, Secp256k1NoteKey):
        raise SignatureInvalid(
            f"the receipt's log key {receipt.log_key} is not secp256k1: no anchor can cover it"
        )
    if claimed is not None and claimed.log_signer.lower() != key.address.lower():
        raise ProofInvalid(
            f"the receipt's anchor names log signer {claimed.log_signer}, but its log key is "
            f"{key.address}"
        )
    lid = log_id(cp.origin, key.address)
    info = anchors.log_info(lid)
    if info is None:
        raise ProofInvalid(
            f"log {cp.origin} with signer {key.address} is not registered on {anchors.address}"
        )
    if key.address.lower() != info.signer.lower():
        raise SignatureInvalid(
            f"log {cp.origin} is registered on-chain with signer {info.signer}, "
            f"but the receipt's log key is {receipt.log_key}"
        )
    if claimed is not None:
        if claimed.index >= anchors.count(lid):
            raise ProofInvalid(f"the chain holds no anchor #{claimed.index} of {cp.origin}")
        found: OnChainAnchor | None = anchors.anchor_at(lid, claimed.index)
        assert found is not None
        if (found.size, found.root) != (claimed.size, claimed.root):
            raise ProofInvalid(
                f"anchor #{claimed.index} on-chain is size {found.size} root "
                f"{found.root.hex()}, not the receipt's size {claimed.size} root "
                f"{claimed.root.hex()}"
            )
    else:
        found = anchors.find(lid, cp.size)
    if found is None:
        raise ProofInvalid(
            f"no anchor of {cp.origin} on chain {chain_id} covers its checkpoint of size {cp.size}",
            hint="anchor the log with `ailedger anchor`, then fetch a new receipt",
        )
    if found.size < cp.size:
        raise ProofInvalid(
            f"anchor #{found.index} (size {found.size}) does not cover the receipt's "
            f"checkpoint of size {cp.size}"
        )
    via_proof = found.size > cp.size
    if not via_proof:
        if found.root != cp.root:
            raise ProofInvalid(
                f"anchor #{found.index} has size {cp.size} but another root: the log forked"
            )
    elif consistency is None:
        raise ProofInvalid(
            f"anchor #{found.index} (size {found.size}) is larger than the receipt's checkpoint "
            f"(size {cp.size}) and the receipt carries no consistency proof to it",
            hint="fetch a fresh receipt with `ailedger log receipt`",
        )
    else:
        verify_consistency(cp.size, found.size, cp.root, found.root, consistency)
    return AnchorVerification(
        chain_id, anchors.address, lid, info.signer, found, cp.size, via_proof
    )
