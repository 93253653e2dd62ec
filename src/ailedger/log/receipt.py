"""Receipts: portable, offline-verifiable proof that an envelope is in a log.

A receipt is a JSON document::

    {
      "mediaType": "application/vnd.ailedger.receipt.v1+json",
      "envelope": { DSSE envelope, canonical form },
      "proof": "c2sp.org/tlog-proof@v1\\nindex 7\\n<base64 hash>\\n...\\n\\n<signed checkpoint>",
      "log": {"origin": "example.com/log", "key": "<C2SP vkey of the log key>"},
      "anchor": null
    }

``proof`` is a verbatim c2sp.org/tlog-proof@v1 text (index, inclusion proof hashes leaf sibling
first, blank line, the checkpoint with its signatures and witness cosignatures), so it can also
be saved as a ``.tlog-proof`` file. The entry hashed into the tree is the RFC 8785 form of
``envelope`` (``leaf = SHA-256(0x00 || JCS(envelope))``). ``anchor`` is the chain anchor
covering the checkpoint, or null: ``{"chain_id", "contract", "log_id", "log_signer", "index",
"size", "root", "transaction", "block", "consistency_checked"}`` (``log_id`` is the id of the
origin and ``log_signer`` together; ``consistency_checked`` is what the anchorer saw, the
chain's per-anchor flag is what ``verify receipt --rpc`` reports) plus, when the anchored tree is
larger than the checkpoint, ``"consistency"``: the RFC 9162 proof (hex hashes) from the
checkpoint to it. It is written by :func:`ailedger.chain.anchoring.receipt_with_anchor`;
verification
here ignores it, :func:`ailedger.chain.anchoring.verify_receipt_anchor` checks it on a chain.

:func:`verify_receipt` checks, offline: the envelope's signatures, the inclusion proof against
the checkpoint's root, the checkpoint's signature by the log key (a trusted key passed in, or
the one in the receipt, reported as untrusted), the origin, optional witness cosignatures, and
optionally that an artifact's SHA-256 is one of the statement's subjects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger import _json
from ailedger.attest.dsse import Envelope
from ailedger.errors import (
    AiledgerError,
    FormatError,
    InvalidInput,
    ProofInvalid,
    SignatureInvalid,
)
from ailedger.log._envelope import SignatureCheck, check_ethereum_signature, ingest
from ailedger.log.checkpoint import (
    AnyNoteKey,
    Checkpoint,
    NoteVerifier,
    SignedNote,
    parse_vkey,
    vkey,
)
from ailedger.merkle import verify_inclusion

__all__ = [
    "RECEIPT_MEDIA_TYPE",
    "TLOG_PROOF_HEADER",
    "Receipt",
    "ReceiptVerification",
    "TlogProof",
    "sha256_file",
    "verify_receipt",
]

RECEIPT_MEDIA_TYPE = "application/vnd.ailedger.receipt.v1+json"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class TlogProof:
    """A c2sp.org/tlog-proof@v1 document: index, inclusion hashes, signed checkpoint."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: SignedNote
    extra: bytes | None = None

    def format(self) -> str:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint.format()

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise FormatError("tlog-proof has no blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != TLOG_PROOF_HEADER:
            raise FormatError(f"not a tlog-proof (first line {lines[0][:40]!r})")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _b64(rest.pop(0)[6:], "extra data")
        if not rest or not rest[0].startswith("index "):
            raise FormatError("tlog-proof has no index line")
        index_text = rest.pop(0)[6:]
        if not (index_text.isascii() and index_text.isdigit()) or index_text != str(
            int(index_text)
        ):
            raise FormatError(f"tlog-proof index {index_text!r} is not a decimal number")
        hashes = tuple(_b64(line, "proof hash") for line in rest)
        if any(len(h) != 32 for h in hashes):
            raise FormatError("tlog-proof hashes must be 32 bytes")
        return cls(int(index_text), hashes, SignedNote.parse(note), extra)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"tlog-proof {what} is not base64") from None


@dataclass(frozen=True)
class Receipt:
    envelope: Envelope
    proof: TlogProof
    origin: str
    log_key: str
    anchor: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mediaType": RECEIPT_MEDIA_TYPE,
            "envelope": self.envelope.to_dict(),
            "proof": self.proof.format(),
            "log": {"origin": self.origin, "key": self.log_key},
            "anchor": self.anchor,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode() + b"\n"

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_bytes(self.to_json())
        return p

    @classmethod
    def from_dict(cls, doc: Any) -> Receipt:
        if not isinstance(doc, dict) or doc.get("mediaType") != RECEIPT_MEDIA_TYPE:
            raise FormatError(f"not an ailedger receipt (mediaType must be {RECEIPT_MEDIA_TYPE})")
        log = doc.get("log")
        if not isinstance(log, dict) or not all(
            isinstance(log.get(k), str) for k in ("origin", "key")
        ):
            raise FormatError("receipt 'log' must have string 'origin' and 'key'")
        proof = doc.get("proof")
        if not isinstance(proof, str):
            raise FormatError("receipt 'proof' must be a tlog-proof text")
        anchor = doc.get("anchor")
        if anchor is not None and not isinstance(anchor, dict):
            raise FormatError("receipt 'anchor' must be an object or null")
        return cls(
            envelope=Envelope.from_dict(doc.get("envelope")),
            proof=TlogProof.parse(proof),
            origin=log["origin"],
            log_key=log["key"],
            anchor=anchor,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Receipt:
        return cls.from_dict(_json.loads(data, what="receipt"))

    @classmethod
    def load(cls, path: str | Path) -> Receipt:
        return cls.from_json(Path(path).read_bytes())

    @classmethod
    def build(
        cls,
        envelope: bytes,
        index: int,
        hashes: Sequence[bytes],
        checkpoint: SignedNote,
        log_key: AnyNoteKey,
    ) -> Receipt:
        """Assemble a receipt (normally through ``TransparencyLog.receipt``)."""
        cp = Checkpoint.parse(checkpoint.text)
        return cls(
            Envelope.from_json(envelope),
            TlogProof(index, tuple(hashes), checkpoint),
            cp.origin,
            vkey(log_key),
        )


@dataclass(frozen=True)
class ReceiptVerification:
    """What :func:`verify_receipt` established."""

    origin: str
    index: int
    tree_size: int
    root: bytes
    leaf_hash: bytes
    log_key: str
    log_key_trusted: bool
    signers: tuple[str, ...]
    subjects: tuple[tuple[str, str], ...]
    predicate_type: str | None
    witnesses: tuple[str, ...] = ()
    artifact_sha256: str | None = None
    anchor: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "origin": self.origin,
            "index": self.index,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "leaf_hash": self.leaf_hash.hex(),
            "log_key": self.log_key,
            "log_key_trusted": self.log_key_trusted,
            "signers": list(self.signers),
            "subjects": [{"digest": d, "name": n} for d, n in self.subjects],
            "predicate_type": self.predicate_type,
            "witnesses": list(self.witnesses),
            "artifact_sha256": self.artifact_sha256,
            "anchor": self.anchor,
        }


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_receipt(
    receipt: Receipt,
    *,
    log_key: NoteVerifier | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    witness_threshold: int = 0,
    artifact_sha256: str | None = None,
    check_signature: SignatureCheck = check_ethereum_signature,
) -> ReceiptVerification:
    """Verify ``receipt`` offline; return what holds or raise a ``VerificationFailed``.

    ``log_key`` is the trusted log key; without it the key in the receipt is used and the
    result says ``log_key_trusted=False``. A receipt whose origin or key differs from the
    trusted key's fails (it comes from another log)."""
    cp = Checkpoint.parse(receipt.proof.checkpoint.text)
    if cp.origin != receipt.origin:
        raise ProofInvalid(
            f"receipt says log {receipt.origin!r} but its checkpoint is from {cp.origin!r}",
            code="receipt-origin-mismatch",
        )
    try:
        embedded = parse_vkey(receipt.log_key)
    except InvalidInput as exc:
        raise FormatError(f"receipt log key: {exc.message}") from None
    key: NoteVerifier = embedded if log_key is None else log_key
    if log_key is not None and (log_key.name, log_key.key_id) != (embedded.name, embedded.key_id):
        raise SignatureInvalid(
            f"receipt is from another log: signed by {embedded.name} "
            f"({embedded.key_id.hex()}), trusted log key is {log_key.name} "
            f"({log_key.key_id.hex()})",
            code="receipt-log-key-mismatch",
        )
    if key.name != cp.origin:
        raise SignatureInvalid(
            f"receipt is from another log: checkpoint origin {cp.origin!r}, log key {key.name!r}",
            code="receipt-log-key-mismatch",
        )
    receipt.proof.checkpoint.verify_one(key)
    good_witnesses: list[str] = []
    for w in witnesses:
        try:
            receipt.proof.checkpoint.verify_one(w)
        except SignatureInvalid:
            continue
        good_witnesses.append(w.name)
    if len(good_witnesses) < witness_threshold:
        raise SignatureInvalid(
            f"{len(good_witnesses)} of the required {witness_threshold} witness cosignatures "
            "are valid",
            code="witness-cosignatures-insufficient",
        )
    try:
        row = ingest(receipt.envelope, check_signature, 0)
    except AiledgerError as exc:
        if isinstance(exc, SignatureInvalid):
            raise SignatureInvalid(f"receipt envelope: {exc.message}", code=exc.code) from None
        raise
    verify_inclusion(row.leaf_hash, receipt.proof.index, cp.size, receipt.proof.hashes, cp.root)
    if artifact_sha256 is not None:
        wanted = f"sha256:{artifact_sha256.lower()}"
        if wanted not in {d for d, _ in row.subjects}:
            raise ProofInvalid(
                f"artifact sha256 {artifact_sha256} is not a subject of the receipt's statement",
                hint="the artifact changed, or the receipt is for another artifact",
                code="receipt-artifact-mismatch",
            )
    return ReceiptVerification(
        origin=cp.origin,
        index=receipt.proof.index,
        tree_size=cp.size,
        root=cp.root,
        leaf_hash=row.leaf_hash,
        log_key=vkey(embedded),
        log_key_trusted=log_key is not None,
        signers=row.signers,
        subjects=row.subjects,
        predicate_type=row.predicate_type,
        witnesses=tuple(good_witnesses),
        artifact_sha256=artifact_sha256,
        anchor=receipt.anchor,
    )
