"""Signers and public keys: secp256k1 (Ethereum accounts), P-256 (model-signing interop) and
Ed25519 (C2SP signed notes, in-toto and securesystemslib).

::

    Signer (ABC)          keyid, keytype, public_key, sign(message) -> bytes
    ├── Secp256k1Signer   65-byte r||s||v, EIP-191 personal_sign; keyid = checksummed address
    ├── P256Signer        DER ECDSA P-256 SHA-256; keyid = sha256(SPKI PEM) hex
    └── Ed25519Signer     64-byte pure Ed25519 (RFC 8032) over the message; keyid as P-256
    PublicKey (ABC)       keyid, keytype, verify(message, sig), to_dict / public_key_from_dict
    ├── Secp256k1PublicKey   may hold only an address: verification recovers the signer
    ├── P256PublicKey
    └── Ed25519PublicKey

Re-exported by :mod:`ailedger.identity.keys`. secp256k1 signatures (used by
:mod:`ailedger.attest.dsse`) are
EIP-191 ``personal_sign`` signatures: ECDSA over
``keccak256("\\x19Ethereum Signed Message:\\n" || len(message) || message)``, encoded as
``r (32) || s (32) || v (1)`` with ``v`` in {27, 28}. The 0x19 prefix keeps them apart from
transactions (no RLP starts with it) and EIP-712 data (0x19 0x01); DSSE's PAE (``DSSEv1 ...``)
keeps them apart from other personal messages. Any wallet or eth-account can make them
(``sign_message(encode_defunct(pae))`` gives the same bytes: both use RFC 6979 nonces), a
verifier recovers the signer's address, and a contract checks them with OpenZeppelin's
``MessageHashUtils.toEthSignedMessageHash`` and ``ecrecover``. Signing always yields low ``s``;
verification rejects high ``s`` (the malleable twin) and any ``v`` other than 27 or 28.

Ed25519 signs the message itself (no prehash), as securesystemslib and the C2SP note formats
do, so a DSSE signature by an Ed25519 key is the one securesystemslib makes over the same PAE.

The P-256 key id is the "hint" OpenSSF model signing puts in its bundles (sha256 of the
public key's PEM), so keys match across the two tools. Private keys never appear in reprs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import coincurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ailedger.errors import InvalidInput, SignatureInvalid

__all__ = [
    "SECP256K1_N",
    "Ed25519PublicKey",
    "Ed25519Signer",
    "KeyType",
    "P256PublicKey",
    "P256Signer",
    "PublicKey",
    "Secp256k1PublicKey",
    "Secp256k1Signer",
    "Signer",
    "checksum_address",
    "eip191_hash",
    "keccak256",
    "load_public_key",
    "public_key_from_dict",
    "recover_address",
    "recover_digest",
]

KeyType = Literal["secp256k1", "p256", "ed25519"]

#: Order of the secp256k1 group; a valid ``s`` is at most ``SECP256K1_N // 2``.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2


_HEX_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


@functools.cache
def _keccak() -> Any:
    from eth_hash.auto import keccak  # its backend (pycryptodome) costs ~35 ms to import

    return keccak


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash, not SHA3-256), its backend imported on first use."""
    return bytes(_keccak()(data))


def checksum_address(address: str) -> str:
    """The EIP-55 form of ``address``; mixed case must already be a valid checksum.

    Written here (as eth-utils computes it) because importing eth-utils costs a tenth of a
    second at every command start; tests/identity/test_keys.py checks the two agree."""
    if not isinstance(address, str) or not _HEX_ADDRESS.fullmatch(address):
        raise InvalidInput(f"not an Ethereum address: {address!r}")
    body = address[2:]
    checksummed = _checksum(bytes.fromhex(body))
    if body != body.lower() and body != body.upper() and checksummed[2:] != body:
        raise InvalidInput(f"address {address} has a wrong EIP-55 checksum")
    return checksummed


def _raw_address(point: coincurve.PublicKey) -> bytes:
    return keccak256(point.format(compressed=False)[1:])[-20:]


def _checksum(raw: bytes) -> str:
    # EIP-55, as eth_utils.to_checksum_address but without its input normalisation.
    lower = raw.hex()
    mask = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if m in "89abcdef" else c for c, m in zip(lower, mask[:40], strict=True)
    )


def _address_of(point: coincurve.PublicKey) -> str:
    return _checksum(_raw_address(point))


def eip191_hash(message: bytes) -> bytes:
    """The digest ``personal_sign`` signs: keccak256 of the EIP-191 version 0x45 message."""
    return keccak256(b"\x19Ethereum Signed Message:\n%d%s" % (len(message), message))


def recover_address(message: bytes, signature: bytes) -> str:
    """The checksummed address whose key made the ``personal_sign`` signature over ``message``.

    Raises :class:`SignatureInvalid` for anything that is not a canonical 65-byte
    low-s signature with ``v`` in {27, 28}.
    """
    return recover_digest(eip191_hash(message), signature)


def recover_digest(digest: bytes, signature: bytes) -> str:
    """Like :func:`recover_address`, over a 32-byte digest (e.g. an EIP-712 hash)."""
    return _checksum(_recover_raw(digest, signature))


def _recover_raw(digest: bytes, signature: bytes) -> bytes:
    if len(digest) != 32:
        raise InvalidInput("recover_digest takes a 32-byte digest")
    if len(signature) != 65:
        raise SignatureInvalid(
            f"secp256k1 signature must be 65 bytes, got {len(signature)}",
            code="signature-malformed",
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureInvalid(
            "secp256k1 signature has r or s out of range", code="signature-malformed"
        )
    if s > _HALF_N:
        raise SignatureInvalid(
            "secp256k1 signature has a high s value (malleable form rejected)",
            code="signature-malformed",
        )
    if v not in (27, 28):
        raise SignatureInvalid(
            f"secp256k1 signature has v={v}, expected 27 or 28", code="signature-malformed"
        )
    try:
        point = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises bare Exception/ValueError on unrecoverable input
        raise SignatureInvalid(
            "secp256k1 signature does not recover a public key", code="signature-malformed"
        ) from None
    return _raw_address(point)


class PublicKey(ABC):
    """A key that checks signatures; serializable with :meth:`to_dict`."""

    keytype: ClassVar[KeyType]

    @property
    @abstractmethod
    def keyid(self) -> str:
        """The id carried in DSSE signatures: an address or a P-256 key hint."""

    @abstractmethod
    def verify(self, message: bytes, signature: bytes) -> None:
        """Return if ``signature`` over ``message`` is valid, else raise SignatureInvalid."""

    @abstractmethod
    def to_pem(self) -> str:
        """SubjectPublicKeyInfo PEM."""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.keytype, "keyid": self.keyid, "pem": self.to_pem()}

    def matches(self, keyid: str) -> bool:
        """Whether a signature's ``keyid`` names this key (case-insensitive for addresses)."""
        return keyid.lower() == self.keyid.lower()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keyid={self.keyid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and (self.keytype, self.keyid.lower()) == (
            other.keytype,
            other.keyid.lower(),
        )

    def __hash__(self) -> int:
        return hash((self.keytype, self.keyid.lower()))


class Secp256k1PublicKey(PublicKey):
    """An Ethereum account. Built from a public key, or from an address alone."""

    keytype: ClassVar[KeyType] = "secp256k1"

    def __init__(self, address: str, point: bytes | None = None) -> None:
        self._address = checksum_address(address)
        self._raw = bytes.fromhex(self._address[2:])
        self._point: coincurve.PublicKey | None = None
        if point is not None:
            try:
                self._point = coincurve.PublicKey(point)
            except Exception:
                raise InvalidInput("not a secp256k1 public key") from None
            if _address_of(self._point) != self._address:
                raise InvalidInput(f"public key does not belong to address {self._address}")

    @classmethod
    def from_point(cls, point: bytes) -> Secp256k1PublicKey:
        """From a compressed (33) or uncompressed (65 byte) SEC1 point."""
        try:
            parsed = coincurve.PublicKey(point)
        except Exception:
            raise InvalidInput("not a secp256k1 public key") from None
        return cls(_address_of(parsed), parsed.format(compressed=False))

    @property
    def keyid(self) -> str:
        return self._address

    @property
    def address(self) -> str:
        return self._address

    @property
    def point(self) -> bytes | None:
        """The uncompressed SEC1 point, when known."""
        return None if self._point is None else self._point.format(compressed=False)

    def verify(self, message: bytes, signature: bytes) -> None:
        if _recover_raw(eip191_hash(message), signature) != self._raw:
            raise SignatureInvalid(
                f"signature was not made by {self._address}", code="signature-invalid"
            )

    def to_pem(self) -> str:
        if self._point is None:
            raise InvalidInput(f"only the address of {self._address} is known, not its key")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), self.point or b"")
        return _spki_pem(key).decode("ascii")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.keytype, "keyid": self._address}
        out["address"] = self._address
        if self._point is not None:
            out["pem"] = self.to_pem()
        return out


class P256PublicKey(PublicKey):
    """An ECDSA P-256 public key (the kind OpenSSF model signing uses)."""

    keytype: ClassVar[KeyType] = "p256"

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidInput(f"expected a P-256 key, got curve {key.curve.name}")
        self._key = key
        self._keyid = hashlib.sha256(_spki_pem(key)).hexdigest()

    @property
    def keyid(self) -> str:
        return self._keyid

    @property
    def key(self) -> ec.EllipticCurvePublicKey:
        return self._key

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise SignatureInvalid(
                f"signature was not made by P-256 key {self._keyid}", code="signature-invalid"
            ) from None

    def to_pem(self) -> str:
        return _spki_pem(self._key).decode("ascii")


class Ed25519PublicKey(PublicKey):
    """An Ed25519 public key (RFC 8032); ``raw`` is its 32 bytes."""

    keytype: ClassVar[KeyType] = "ed25519"

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self._keyid = hashlib.sha256(_spki_pem(key)).hexdigest()

    @classmethod
    def from_raw(cls, raw: bytes) -> Ed25519PublicKey:
        if len(raw) != 32:
            raise InvalidInput(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            raise InvalidInput("not an Ed25519 public key") from None

    @property
    def keyid(self) -> str:
        return self._keyid

    @property
    def raw(self) -> bytes:
        return self._key.public_bytes_raw()

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, message)
        except (InvalidSignature, ValueError):
            raise SignatureInvalid(
                f"signature was not made by Ed25519 key {self._keyid}", code="signature-invalid"
            ) from None

    def to_pem(self) -> str:
        return _spki_pem(self._key).decode("ascii")


def _spki_pem(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(data: str | bytes) -> PublicKey:
    """A public key from SPKI PEM (P-256, secp256k1 or Ed25519) or an Ethereum address."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("0x") and len(text) == 42:
        return Secp256k1PublicKey(text)
    try:
        key = serialization.load_pem_public_key(text.encode("ascii", "replace"))
    except (ValueError, TypeError):
        raise InvalidInput("not a PEM public key or an Ethereum address") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519PublicKey(key)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("only P-256, secp256k1 and Ed25519 public keys are supported")
    if isinstance(key.curve, ec.SECP256K1):
        return Secp256k1PublicKey.from_point(
            key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
        )
    return P256PublicKey(key)


def public_key_from_dict(data: Any) -> PublicKey:
    """Inverse of :meth:`PublicKey.to_dict`; checks that ``keyid`` matches the key."""
    if not isinstance(data, dict):
        raise InvalidInput("a public key must be a JSON object")
    pem, keyid = data.get("pem"), data.get("keyid")
    if isinstance(pem, str):
        key = load_public_key(pem)
    elif data.get("type") == "secp256k1" and isinstance(data.get("address"), str):
        key = Secp256k1PublicKey(data["address"])
    else:
        raise InvalidInput("public key has neither 'pem' nor a secp256k1 'address'")
    if data.get("type") != key.keytype:
        raise InvalidInput(f"public key type {data.get('type')!r} does not match its key")
    if not isinstance(keyid, str) or not key.matches(keyid):
        raise InvalidInput(f"public key keyid {keyid!r} does not match its key ({key.keyid})")
    return key


class Signer(ABC):
    """Something that signs bytes. DSSE, the log and the chain client take one explicitly."""

    keytype: ClassVar[KeyType]

    @property
    @abstractmethod
    def public_key(self) -> PublicKey: ...

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    @abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (hashed inside: EIP-191 for secp256k1, SHA-256 for P-256)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keyid={self.keyid!r})"


class Secp256k1Signer(Signer):
    """A secp256k1 private key: an Ethereum account."""

    keytype: ClassVar[KeyType] = "secp256k1"

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise InvalidInput("a secp256k1 private key is 32 bytes in [1, n-1]")
        self._key = coincurve.PrivateKey(secret)
        self._public = Secp256k1PublicKey(
            _address_of(self._key.public_key), self._key.public_key.format(compressed=False)
        )

    @classmethod
    def generate(cls) -> Secp256k1Signer:
        return cls(coincurve.PrivateKey().secret)

    @property
    def public_key(self) -> Secp256k1PublicKey:
        return self._public

    @property
    def address(self) -> str:
        return self._public.address

    def sign(self, message: bytes) -> bytes:
        """EIP-191 ``personal_sign`` of ``message``: 65 bytes ``r || s || v``."""
        return self.sign_digest(eip191_hash(message))

    def sign_digest(self, digest: bytes) -> bytes:
        """r||s||v over a 32-byte digest (e.g. an EIP-712 hash) as ``ecrecover`` wants."""
        if len(digest) != 32:
            raise InvalidInput("sign_digest takes a 32-byte digest")
        raw = self._key.sign_recoverable(digest, hasher=None)
        if raw[64] > 1:  # r overflowed n: probability ~2^-128; never seen in practice
            raise SignatureInvalid(
                "unrepresentable recovery id; sign again", code="signature-malformed"
            )
        return raw[:64] + bytes([27 + raw[64]])

    def to_local_account(self) -> Any:
        """An eth-account ``LocalAccount`` for signing transactions with this key."""
        from eth_account import Account

        return Account.from_key(self._key.secret)

    def _secret(self) -> bytes:
        return bytes(self._key.secret)


class P256Signer(Signer):
    """An ECDSA P-256 private key; signatures are DER, over SHA-256 of the message."""

    keytype: ClassVar[KeyType] = "p256"

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = P256PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> P256Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> P256PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key


class Ed25519Signer(Signer):
    """An Ed25519 private key; signatures are 64 bytes, over the message itself."""

    keytype: ClassVar[KeyType] = "ed25519"

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def _private_key(self) -> ed25519.Ed25519PrivateKey:
        return self._key
