"""Ingest of one DSSE envelope into a log row: parse strictly (:mod:`ailedger.attest.dsse`), verify
every signature, canonicalise (RFC 8785), and extract what the queries index (payload type,
predicate type, signer key ids, subject digests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

import coincurve

from ailedger import _json
from ailedger.attest.dsse import PAYLOAD_TYPE_IN_TOTO, Envelope, candidate_keys
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid
from ailedger.identity.keys import SECP256K1_N, PublicKey, keccak256
from ailedger.log._store import Row
from ailedger.merkle import leaf_hash

#: Verifies one DSSE signature: ``(keyid, pae, signature)``; raises ``SignatureInvalid``.
#: It may return the key id of the trusted key that verified (recorded as the signer when
#: it differs from the envelope's keyid hint), or None to keep the envelope's keyid.
SignatureCheck = Callable[[str, bytes, bytes], str | None]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def keccak(data: bytes) -> bytes:
    """Keccak-256 (pycryptodome directly: half the cost of eth_hash's wrapper)."""
    return keccak256(data)


def _recover_lower(message: bytes, signature: bytes) -> str:
    # The same checks as ailedger.identity.keys.recover_address (65 bytes, r and s in range, low s,
    # v in {27, 28}), minus the EIP-55 checksum: ingest is a hot path.
    if len(signature) != 65:
        raise SignatureInvalid(
            f"secp256k1 signature must be 65 bytes, got {len(signature)}",
            code="signature-malformed",
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2 and v in (27, 28)):
        raise SignatureInvalid(
            "malformed or malleable secp256k1 signature", code="signature-malformed"
        )
    digest = keccak(b"\x19Ethereum Signed Message:\n%d%s" % (len(message), message))
    try:
        point = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises bare exceptions on unrecoverable input
        raise SignatureInvalid(
            "secp256k1 signature does not recover a public key", code="signature-malformed"
        ) from None
    return "0x" + keccak(point.format(compressed=False)[1:])[-20:].hex()


def check_ethereum_signature(keyid: str, message: bytes, signature: bytes) -> None:
    """Default DSSE signature check: ``keyid`` is an Ethereum address and ``signature`` its
    EIP-191 ``personal_sign`` over the PAE (as :class:`ailedger.identity.keys.Secp256k1Signer`
    makes)."""
    if not _ADDRESS.fullmatch(keyid):
        raise SignatureInvalid(
            f"signature by unknown key {keyid!r}",
            hint="pass a signature check that knows this key id",
            code="signer-unknown",
        )
    if _recover_lower(message, signature) != keyid.lower():
        raise SignatureInvalid(
            f"signature does not verify for key {keyid}", code="signature-invalid"
        )


def canonical_envelope(env: Envelope) -> bytes:
    """RFC 8785 bytes of the envelope. Every value is a string and the keys are fixed ASCII,
    so sorted-key compact ``json.dumps`` without ASCII escaping is exactly JCS (same escapes:
    the short forms, ``\\u00xx`` lower-case for other controls); a test holds it to rfc8785."""
    doc = env.to_dict()
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def known_keys_check(keys: Iterable[PublicKey]) -> SignatureCheck:
    """A check that knows these public keys (P-256, secp256k1 or Ed25519) by key id, and still
    admits any Ethereum-address key id by recovery.

    A keyid naming a known key is checked against that key only; any other keyid (empty, or
    another tool's id for one of these keys, see :func:`ailedger.attest.dsse.candidate_keys`)
    is tried against every known key, then, if it is an address, by recovery. The check
    returns the key id of the known key that verified."""
    known = list(dict.fromkeys(keys))
    by_address = {k.keyid.lower(): k for k in known if k.keytype == "secp256k1"}

    def check(keyid: str, message: bytes, signature: bytes) -> str | None:
        candidates, named = candidate_keys(known, keyid)
        if named:
            for key in candidates:
                try:
                    key.verify(message, signature)
                except InvalidInput as exc:
                    raise SignatureInvalid(
                        f"signature by {keyid} is malformed: {exc}", code="signature-malformed"
                    ) from None
                return key.keyid
        # The fallback. A secp256k1 signature recovers its key once (the old fast path for
        # Ethereum-address keyids); other keys are tried one by one.
        if len(signature) == 65:
            try:
                recovered = _recover_lower(message, signature)
            except SignatureInvalid:
                recovered = ""
            if recovered and recovered == keyid.lower():
                return None
            if recovered in by_address:
                return by_address[recovered].keyid
        for key in candidates:
            if key.keytype == "secp256k1":
                continue
            try:
                key.verify(message, signature)
            except (SignatureInvalid, InvalidInput):
                continue
            return key.keyid
        check_ethereum_signature(keyid, message, signature)
        return None

    return check


def _subjects(payload_type: str, payload: bytes) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    if payload_type != PAYLOAD_TYPE_IN_TOTO:
        return None, ()
    try:
        statement = _json.loads(payload, what="in-toto payload")
    except FormatError:
        raise FormatError("in-toto payload is not JSON within bounds") from None
    if not isinstance(statement, dict) or not isinstance(statement.get("subject"), list):
        raise FormatError("in-toto statement has no subject list")
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str):
        raise FormatError("in-toto statement has no predicateType")
    found: list[tuple[str, str]] = []
    for subject in statement["subject"]:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise FormatError("in-toto subject without a digest map")
        name = subject.get("name", "")
        for alg, value in subject["digest"].items():
            if not isinstance(value, str) or not isinstance(name, str):
                raise FormatError("in-toto subject digest must be a string")
            found.append((f"{alg.lower()}:{value.lower()}", name))
    return predicate_type, tuple(found)


def ingest(envelope: bytes | str | Envelope, check: SignatureCheck, time_ms: int) -> Row:
    """Parse, verify and canonicalise one envelope into the row the store writes."""
    env = envelope if isinstance(envelope, Envelope) else Envelope.from_json(envelope)
    if not env.signatures:
        raise FormatError("envelope has no signatures")
    message = env.pae()
    keyids: list[str] = []
    for sig in env.signatures:
        signer = check(sig.keyid, message, sig.sig) or sig.keyid
        keyids.append(signer.lower() if _ADDRESS.fullmatch(signer) else signer)
    predicate_type, subjects = _subjects(env.payload_type, env.payload)
    try:
        canonical = canonical_envelope(env)
    except UnicodeEncodeError:
        raise FormatError("envelope contains invalid Unicode (a lone surrogate)") from None
    return Row(
        envelope=canonical,
        leaf_hash=leaf_hash(canonical),
        time_ms=time_ms,
        payload_type=env.payload_type,
        predicate_type=predicate_type,
        signers=tuple(dict.fromkeys(keyids)),
        subjects=subjects,
    )
