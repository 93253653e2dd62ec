"""DSSE envelopes (Dead Simple Signing Envelope v1), with co-signing and threshold checks.

::

    envelope = dsse.sign(PAYLOAD_TYPE_IN_TOTO, payload, [alice])     # one or more signers
    envelope = dsse.add_signature(envelope, bob)                     # co-sign later
    Envelope.from_json(envelope.to_json())                           # {payloadType, payload,
                                                                     #  signatures: [{keyid, sig}]}
    result = dsse.verify(envelope, trusted=[alice_pub, bob_pub], threshold=2)

Signatures are over ``PAE(payloadType, payload)`` exactly as the DSSE spec defines it:
``"DSSEv1" SP len(type) SP type SP len(body) SP body`` with decimal ASCII lengths. What a
signature is depends on the key (see ``ailedger.identity.keys``): secp256k1 keys sign PAE with
EIP-191
``personal_sign`` (65 bytes r||s||v, keyid = checksummed address, low s enforced), P-256
keys with ECDSA P-256 SHA-256 (DER, keyid = model-signing's key hint) and Ed25519 keys with
pure Ed25519 over PAE (what securesystemslib signs).

:func:`verify` fails closed: it returns only when at least ``threshold`` distinct trusted keys
made valid signatures; otherwise :class:`SignatureInvalid` names what was missing. Signatures
by unknown keys never count and never make verification fail on their own.

The ``keyid`` of a signature is an unauthenticated hint (DSSE spec): it may only narrow the
keys tried. :func:`candidate_keys` is the one rule for that: a keyid naming trusted keys
narrows the search to them (a signature that fails under the key it names fails, as in
securesystemslib and go-securesystemslib; it is not retried under other keys), while an empty
keyid, or one naming no trusted key (another tool's key id, e.g. securesystemslib's hash of
its JSON key), is tried against every trusted key. Either way only the signature
decides; the result names the trusted key that verified by *our* key id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from ailedger import _json
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid
from ailedger.identity._signers import PublicKey, Signer

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PAYLOAD_TYPE_IN_TOTO",
    "Envelope",
    "Signature",
    "VerifiedEnvelope",
    "add_signature",
    "candidate_keys",
    "pae",
    "sign",
    "signature_check",
    "verify",
]

PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"
#: Envelopes larger than this are refused when parsed.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64decode(value: object, what: str) -> bytes:
    # DSSE accepts standard or URL-safe base64, with or without padding; we emit standard.
    if not isinstance(value, str):
        raise FormatError(f"envelope field {what} must be a base64 string")
    text = value.strip()
    text += "=" * (-len(text) % 4)
    alt = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text, altchars=alt, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"envelope field {what} is not valid base64") from None


@dataclass(frozen=True)
class Signature:
    """One DSSE signature. ``keyid`` is unauthenticated: it only picks the key to try."""

    keyid: str
    sig: bytes = field(repr=False)

    def to_dict(self) -> dict[str, str]:
        return {"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode("ascii")}


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = ()

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [s.to_dict() for s in self.signatures],
        }

    def to_json(self, *, indent: int | None = None) -> bytes:
        """The envelope as JSON (compact unless ``indent``)."""
        if indent is None:
            return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")
        return json.dumps(self.to_dict(), indent=indent).encode("utf-8") + b"\n"

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON: the bytes to hash when an envelope is identified."""
        return bytes(rfc8785.dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse strictly: exactly the DSSE fields, right types, valid base64."""
        if not isinstance(data, dict):
            raise FormatError("a DSSE envelope must be a JSON object")
        extra = set(data) - {"payloadType", "payload", "signatures"}
        if extra:
            raise FormatError(f"DSSE envelope has unknown fields {sorted(extra)}")
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise FormatError("DSSE envelope payloadType must be a non-empty string")
        payload = _b64decode(data.get("payload"), "payload")
        raw_sigs = data.get("signatures")
        if not isinstance(raw_sigs, list):
            raise FormatError("DSSE envelope signatures must be a list")
        sigs = []
        for i, item in enumerate(raw_sigs):
            if not isinstance(item, dict) or set(item) - {"keyid", "sig"} or "sig" not in item:
                raise FormatError(f"DSSE signature {i} must be an object with keyid and sig")
            keyid = item.get("keyid", "")
            if not isinstance(keyid, str):
                raise FormatError(f"DSSE signature {i} keyid must be a string")
            sigs.append(Signature(keyid, _b64decode(item["sig"], f"signatures[{i}].sig")))
        return cls(payload_type, payload, tuple(sigs))

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise FormatError(f"envelope is {len(raw)} bytes, over {MAX_ENVELOPE_BYTES}")
        doc = _json.loads(raw, what="envelope", max_bytes=MAX_ENVELOPE_BYTES)
        return cls.from_dict(doc)


def candidate_keys(keys: Sequence[PublicKey], keyid: str) -> tuple[list[PublicKey], bool]:
    """The trusted keys to try for a signature carrying ``keyid``, and whether ``keyid``
    named them: the keys it names, else (empty or foreign keyid) all of them."""
    named = [k for k in keys if k.matches(keyid)] if keyid else []
    return (named, True) if named else (list(keys), False)


def sign(payload_type: str, payload: bytes, signers: Sequence[Signer]) -> Envelope:
    """A new envelope with one signature per signer (at least one)."""
    if not signers:
        raise InvalidInput("at least one signer is required")
    envelope = Envelope(payload_type, payload)
    for signer in signers:
        envelope = add_signature(envelope, signer)
    return envelope


def add_signature(envelope: Envelope, signer: Signer) -> Envelope:
    """``envelope`` with one more signature (co-signing). Refuses a second one by the same key."""
    if any(signer.public_key.matches(s.keyid) for s in envelope.signatures):
        raise InvalidInput(f"the envelope is already signed by {signer.keyid}")
    sig = Signature(signer.keyid, signer.sign(envelope.pae()))
    return Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, sig))


@dataclass(frozen=True)
class VerifiedEnvelope:
    """What :func:`verify` established: the payload and the trusted keys that signed it.

    ``keyid_fallbacks`` pairs each signature whose keyid named no trusted key, but which a
    trusted key verified, with that key: ``(keyid in the envelope, our keyid)``."""

    payload_type: str
    payload: bytes
    signers: tuple[PublicKey, ...]
    unverified_keyids: tuple[str, ...]
    keyid_fallbacks: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "signers": [k.keyid for k in self.signers],
            "unverified_keyids": list(self.unverified_keyids),
            "keyid_fallbacks": [
                {"keyid": claimed, "verified_by": ours} for claimed, ours in self.keyid_fallbacks
            ],
        }


def verify(
    envelope: Envelope,
    trusted: Iterable[PublicKey],
    *,
    threshold: int = 1,
    payload_type: str | None = None,
) -> VerifiedEnvelope:
    """Check ``envelope`` against ``trusted`` keys; at least ``threshold`` must have signed.

    A trusted key counts once however many signatures it made. ``payload_type``, when given,
    must match. Raises :class:`SignatureInvalid` otherwise.
    """
    keys = list(dict.fromkeys(trusted))
    if threshold < 1:
        raise InvalidInput("threshold must be at least 1")
    if not keys:
        raise InvalidInput("no trusted keys given: nothing can be verified")
    if threshold > len(keys):
        raise InvalidInput(f"threshold {threshold} is more than the {len(keys)} trusted keys")
    if payload_type is not None and envelope.payload_type != payload_type:
        raise SignatureInvalid(
            f"payload type is {envelope.payload_type!r}, expected {payload_type!r}",
            code="dsse-payload-type-unknown",
        )
    message = envelope.pae()
    good: list[PublicKey] = []
    failed: list[str] = []
    fallbacks: list[tuple[str, str]] = []
    for sig in envelope.signatures:
        candidates, named = candidate_keys(keys, sig.keyid)
        for key in candidates:
            try:
                key.verify(message, sig.sig)
            except (SignatureInvalid, InvalidInput):
                continue
            if key not in good:
                good.append(key)
            if not named:
                fallbacks.append((sig.keyid, key.keyid))
            break
        else:
            failed.append(sig.keyid or "(no keyid)")
    if len(good) < threshold:
        detail = f"; not verified: {', '.join(failed)}" if failed else ""
        raise SignatureInvalid(
            f"{len(good)} of the required {threshold} trusted signatures are valid "
            f"({len(envelope.signatures)} signatures in the envelope{detail})",
            hint="check the envelope was not altered and that you trust the right keys",
            code="statement-signature-invalid",
        )
    return VerifiedEnvelope(
        envelope.payload_type, envelope.payload, tuple(good), tuple(failed), tuple(fallbacks)
    )


def signature_check(trusted: Iterable[PublicKey]) -> Callable[[str, bytes, bytes], str]:
    """A ``(keyid, pae, sig) -> our keyid`` check over ``trusted`` keys, for the log's ingest.

    Tries the keys :func:`candidate_keys` picks and returns the key id of the one that made
    ``sig``; raises :class:`SignatureInvalid` if none did.
    """
    keys = list(trusted)

    def check(keyid: str, message: bytes, sig: bytes) -> str:
        candidates, named = candidate_keys(keys, keyid)
        for key in candidates:
            try:
                key.verify(message, sig)
            except (SignatureInvalid, InvalidInput):
                continue
            return key.keyid
        if not named:
            raise SignatureInvalid(
                f"signature by unknown key {keyid!r}: no trusted key made it",
                code="signer-unknown",
            )
        raise SignatureInvalid(
            f"signature does not verify for key {keyid}", code="signature-invalid"
        )

    return check
