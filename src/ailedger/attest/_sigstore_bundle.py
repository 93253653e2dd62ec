"""The Sigstore bundle (v0.3) that OpenSSF model-signing 1.1.1 writes when it signs with a key.

Written and read by hand, field for field as ``model_signing._signing.sign_ec_key`` builds it
(its ``sigstore_models`` classes are strict: no other field is allowed)::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": "<sha256 hex of the SPKI PEM>"},
                              "tlogEntries": []},
     "dsseEnvelope": {"payload": "<base64 in-toto statement>",
                      "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": "<base64 DER ECDSA over PAE>", "keyid": ""}]}}

The signature is ECDSA over the DSSE PAE of the payload, hashed with SHA-256, SHA-384 or
SHA-512 for a P-256, P-384 or P-521 key (model-signing's ``get_ec_key_hash``). The hint is
unauthenticated: it only says which key to try, and a verifier refuses a bundle whose hint
names another key (as model-signing does). Bundles with a certificate instead of a key, or a
bare message signature instead of a DSSE envelope, are refused with one clear message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ailedger import _json
from ailedger.attest.dsse import PAYLOAD_TYPE_IN_TOTO, Envelope
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "BUNDLE_MEDIA_TYPES",
    "MAX_BUNDLE_BYTES",
    "KeyBundle",
    "check_curve",
    "ec_hash",
    "key_hint",
    "load_ec_public_key",
]

#: What model-signing writes, and the only media type its key verifier accepts.
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: Media types read here: v0.3 in both of its spellings.
BUNDLE_MEDIA_TYPES = (BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")
#: Bundles larger than this are refused when parsed (the manifest of a huge model fits).
MAX_BUNDLE_BYTES = 64 * 1024 * 1024

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The hash model-signing pairs with a curve: SHA-256, SHA-384 or SHA-512."""
    size = key.curve.key_size
    if size == 256:
        return hashes.SHA256()
    if size == 384:
        return hashes.SHA384()
    return hashes.SHA512()


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """sha256 hex of the key's SubjectPublicKeyInfo PEM: the bundle's ``publicKey.hint``."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def load_ec_public_key(data: bytes, *, source: str = "public key") -> ec.EllipticCurvePublicKey:
    """A P-256, P-384 or P-521 public key from PEM (the curves model-signing supports)."""
    try:
        key = serialization.load_pem_public_key(data.strip() + b"\n")
    except (ValueError, TypeError):
        raise InvalidInput(f"{source} is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput(f"{source} is not an elliptic-curve key (model signing uses P-256)")
    check_curve(key, source)
    return key


def check_curve(key: ec.EllipticCurvePublicKey, source: str) -> None:
    """Refuse curves model-signing does not sign with (secp256k1 among them)."""
    if key.curve.name not in _CURVES:
        raise InvalidInput(
            f"{source} is a {key.curve.name} key; model-signing bundles are signed with "
            "P-256, P-384 or P-521 keys",
            hint="sign models with a P-256 key: `ailedger keys new NAME --type p256`",
        )


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"bundle field {what} must be a JSON object")
    return value


@dataclass(frozen=True)
class KeyBundle:
    """A key-signed Sigstore bundle: the DSSE envelope and the (unauthenticated) key hint."""

    envelope: Envelope
    hint: str | None
    media_type: str = BUNDLE_MEDIA_TYPE

    def to_dict(self) -> dict[str, Any]:
        env = self.envelope.to_dict()
        env["signatures"] = [{"sig": s["sig"], "keyid": s["keyid"]} for s in env["signatures"]]
        return {
            "mediaType": self.media_type,
            "verificationMaterial": {"publicKey": {"hint": self.hint}, "tlogEntries": []},
            "dsseEnvelope": env,
        }

    def to_json(self) -> bytes:
        """Compact JSON, as model-signing writes its bundles."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> KeyBundle:
        """Parse a bundle; ``FormatError`` if malformed, ``InvalidInput`` if not key-signed."""
        doc = _obj(data, "(top level)")
        media_type = doc.get("mediaType")
        if media_type not in BUNDLE_MEDIA_TYPES:
            raise FormatError(
                f"not a Sigstore v0.3 bundle (mediaType {media_type!r}, "
                f"expected {BUNDLE_MEDIA_TYPE})"
            )
        material = _obj(doc.get("verificationMaterial"), "verificationMaterial")
        for kind in ("x509CertificateChain", "certificate"):
            if kind in material:
                raise InvalidInput(
                    f"this bundle is signed with a certificate ({kind}), not a public key",
                    hint="verify it with `model_signing verify certificate` or `... sigstore`",
                )
        if "publicKey" not in material:
            raise FormatError("bundle verificationMaterial has no publicKey")
        hint = _obj(material["publicKey"], "verificationMaterial.publicKey").get("hint")
        if hint is not None and not isinstance(hint, str):
            raise FormatError("bundle publicKey.hint must be a string")
        if not isinstance(material.get("tlogEntries", []), list):
            raise FormatError("bundle verificationMaterial.tlogEntries must be a list")
        if "dsseEnvelope" not in doc:
            what = "a message signature" if "messageSignature" in doc else "nothing"
            raise FormatError(f"bundle holds {what}, not a DSSE envelope")
        envelope = Envelope.from_dict(_obj(doc["dsseEnvelope"], "dsseEnvelope"))
        if not envelope.signatures:
            raise FormatError("the bundle's DSSE envelope has no signature")
        return cls(envelope, hint or None, media_type)

    @classmethod
    def from_json(cls, data: bytes | str) -> KeyBundle:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > MAX_BUNDLE_BYTES:
            raise FormatError(f"bundle is {len(raw)} bytes, over {MAX_BUNDLE_BYTES}")
        return cls.from_dict(_json.loads(raw, what="bundle", max_bytes=MAX_BUNDLE_BYTES))

    def verify(self, key: ec.EllipticCurvePublicKey) -> bytes:
        """The in-toto payload if ``key`` signed it; raises ``SignatureInvalid`` otherwise."""
        check_curve(key, "the public key")
        hint = key_hint(key)
        if self.hint is not None and self.hint != hint:
            raise SignatureInvalid(
                f"key mismatch: the bundle was signed by key {self.hint}, "
                f"not by the given public key {hint}",
                hint="pass the public key that pairs with the signing key",
                code="bundle-key-mismatch",
            )
        if self.envelope.payload_type != PAYLOAD_TYPE_IN_TOTO:
            raise SignatureInvalid(
                f"payload type is {self.envelope.payload_type!r}, expected {PAYLOAD_TYPE_IN_TOTO}",
                code="dsse-payload-type-unknown",
            )
        message = self.envelope.pae()
        algorithm = ec.ECDSA(ec_hash(key))
        for sig in self.envelope.signatures:
            try:
                key.verify(sig.sig, message, algorithm)
            except (InvalidSignature, ValueError):
                continue
            return self.envelope.payload
        raise SignatureInvalid(
            f"the bundle's signature does not verify with public key {hint}",
            hint="the bundle was altered, or signed by another key",
            code="bundle-signature-invalid",
        )
