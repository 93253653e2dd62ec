"""C2SP checkpoints (c2sp.org/tlog-checkpoint) as signed notes (c2sp.org/signed-note), with
witness cosignatures (c2sp.org/tlog-cosignature, cosignature/v1).

A checkpoint body is ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional extension lines;
a signed note appends a blank line and one ``— <name> <base64(keyid4 || sig)>`` line per
signature. ``key ID = SHA-256(name || 0x0A || signature type || public key)[:4]``.

Signature types used here:

* ``0x01`` Ed25519 over the note text (the spec's own type, interoperable with
  golang.org/x/mod/sumdb/note).
* ``0x04`` Ed25519 cosignature/v1: ``u64 timestamp || sig`` over
  ``"cosignature/v1\\ntime <T>\\n" || body``.
* :data:`SECP256K1_TYPE` (``0xff`` + ``"ailedger.dev/signed-note/secp256k1-eip191/v1"``): the
  log key is an Ethereum account. The public key in the key ID is the 20-byte address. The
  signature is 65 bytes ``r || s || v`` (low s, v in 27/28) over
  ``EIP-191(b"ailedger.dev/signed-note/secp256k1-eip191/v1\\n" || note text)``: the
  ``0x19`` EIP-191 prefix keeps it apart from transactions and EIP-712, the identifier line
  apart from DSSE (``DSSEv1 ...``) and any other message the same account signs. Verification
  recovers the address.
* :data:`SECP256K1_COSIGNATURE_TYPE`
  (``0xff`` + ``"ailedger.dev/cosignature/secp256k1-eip191/v1"``): the cosignature/v1
  layout with a secp256k1 witness (an Ethereum account; the public key in the key ID is its
  20-byte address): ``u64 timestamp || 65-byte sig``, the signature an EIP-191
  ``personal_sign`` of exactly the cosignature/v1 message
  ``"cosignature/v1\\ntime <T>\\n" || body`` (whose first line separates it from the log
  key's checkpoint signatures).

A checkpoint's ``(origin, size, root)`` is :meth:`Checkpoint.parse` away, for the chain anchor.

Workspace keys map to note keys with :func:`note_key_for` (log key) and :func:`cosigner_for`
(witness): an Ed25519 key gives the spec's own types (``0x01``, ``0x04``), which any C2SP
client (Go's ``golang.org/x/mod/sumdb/note``, sigsum, the tlog-witness implementations)
verifies; a secp256k1 key gives the ``0xff`` types above, which on-chain anchoring needs (the
contracts recover ECDSA signatures). Any other key type is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ailedger.errors import FormatError, InvalidInput, SignatureInvalid, VerificationFailed
from ailedger.identity import keys as _keys
from ailedger.identity.keys import (
    Ed25519Signer,
    PublicKey,
    Secp256k1PublicKey,
    Secp256k1Signer,
    Signer,
    checksum_address,
    recover_address,
)

__all__ = [
    "COSIGNATURE_V1_TYPE",
    "ED25519_TYPE",
    "MAX_SIGNATURES",
    "SECP256K1_COSIGNATURE_TYPE",
    "SECP256K1_MESSAGE_PREFIX",
    "SECP256K1_TYPE",
    "AnyNoteKey",
    "Checkpoint",
    "Ed25519Cosigner",
    "Ed25519NoteKey",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Secp256k1Cosigner",
    "Secp256k1NoteKey",
    "SignedNote",
    "cosigner_for",
    "key_id",
    "note_key_for",
    "parse_cosignature_time",
    "parse_vkey",
    "vkey",
]

ED25519_TYPE = b"\x01"
COSIGNATURE_V1_TYPE = b"\x04"
SECP256K1_TYPE = b"\xffailedger.dev/signed-note/secp256k1-eip191/v1"
SECP256K1_COSIGNATURE_TYPE = b"\xffailedger.dev/cosignature/secp256k1-eip191/v1"
#: First line of the message a secp256k1 log key signs (before the note text).
SECP256K1_MESSAGE_PREFIX = b"ailedger.dev/signed-note/secp256k1-eip191/v1\n"
MAX_SIGNATURES = 64
_DASH = "\u2014 "


def key_id(name: str, sig_type: bytes, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || sig_type || public_key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + sig_type + public_key).digest()[:4]


def _check_name(name: str, error: type[InvalidInput] = InvalidInput) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise error(f"note key name {name!r} must be non-empty, without spaces or '+'")


def _text_ok(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise FormatError("signed note contains control characters")


@dataclass(frozen=True)
class Checkpoint:
    """The body of a tlog checkpoint: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(line + "\n" for line in [*lines, *self.extensions])

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise FormatError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *ext = lines
        if not origin:
            raise FormatError("checkpoint origin line is empty")
        if not size_text.isascii() or not size_text.isdigit() or size_text != str(int(size_text)):
            raise FormatError(f"checkpoint tree size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise FormatError("checkpoint root hash is not base64") from None
        if len(root) != 32:
            raise FormatError(f"checkpoint root hash is {len(root)} bytes, expected 32")
        if any(not line for line in ext):
            raise FormatError("checkpoint has an empty extension line")
        return cls(origin, int(size_text), root, tuple(ext))


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}"


class NoteSigner(Protocol):
    """Signs note text: ``sign`` returns the signature bytes that follow the key ID."""

    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def sign(self, text: bytes) -> bytes: ...


class NoteVerifier(Protocol):
    """Verifies one signature line's bytes (after the key ID) over the note text."""

    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def verify(self, text: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True)
class SignedNote:
    """Note text (ending in a newline) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    @classmethod
    def sign(cls, text: str, signers: Sequence[NoteSigner]) -> SignedNote:
        return cls(text).add(signers)

    def add(self, signers: Sequence[NoteSigner]) -> SignedNote:
        _text_ok(self.text)
        new = [NoteSignature(s.name, s.key_id, s.sign(self.text.encode())) for s in signers]
        for s in new:
            _check_name(s.name)
        return SignedNote(self.text, (*self.signatures, *new))

    def format(self) -> str:
        return self.text + "\n" + "".join(s.line() + "\n" for s in self.signatures)

    @classmethod
    def parse(cls, note: str | bytes) -> SignedNote:
        if isinstance(note, bytes):
            try:
                note = note.decode()
            except UnicodeDecodeError:
                raise FormatError("signed note is not UTF-8") from None
        _text_ok(note)
        if not note.endswith("\n"):
            raise FormatError("signed note must end with a newline")
        split = note.rfind("\n\n")
        if split < 0:
            raise FormatError("signed note has no blank line before its signatures")
        text, sig_block = note[: split + 1], note[split + 2 :]
        sigs: list[NoteSignature] = []
        for line in sig_block[:-1].split("\n"):
            if not line.startswith(_DASH):
                raise FormatError(f"malformed signature line {line[:40]!r}")
            name, _, b64 = line[len(_DASH) :].rpartition(" ")
            _check_name(name, FormatError)
            try:
                raw = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise FormatError(f"signature of {name} is not base64") from None
            if len(raw) < 5:
                raise FormatError(f"signature of {name} is too short")
            sigs.append(NoteSignature(name, raw[:4], raw[4:]))
        if not sigs:
            raise FormatError("signed note has no signatures")
        if len(sigs) > MAX_SIGNATURES:
            raise FormatError(f"signed note has over {MAX_SIGNATURES} signatures")
        return cls(text, tuple(sigs))

    def verify_one(self, verifier: NoteVerifier) -> NoteSignature:
        """The signature by ``verifier``'s key (name and key ID), checked; raises
        ``SignatureInvalid`` if absent or wrong."""
        found = [
            s for s in self.signatures if s.name == verifier.name and s.key_id == verifier.key_id
        ]
        if not found:
            names = ", ".join(sorted({s.name for s in self.signatures}))
            raise SignatureInvalid(
                f"note has no signature by key {verifier.name} ({verifier.key_id.hex()}); "
                f"signed by: {names}",
                code="checkpoint-signature-missing",
            )
        for s in found:
            if not verifier.verify(self.text.encode(), s.signature):
                raise SignatureInvalid(
                    f"signature by {verifier.name} does not verify",
                    code="checkpoint-signature-invalid",
                )
        return found[0]

    def verify(self, verifiers: Sequence[NoteVerifier]) -> list[NoteSignature]:
        """Every signature by a known key must verify (unknown ones are ignored, per the spec)
        and at least one must be present."""
        checked: list[NoteSignature] = []
        for v in verifiers:
            try:
                checked.append(self.verify_one(v))
            except SignatureInvalid as exc:
                if exc.code != "checkpoint-signature-missing":
                    raise
        if not checked:
            raise SignatureInvalid(
                "no signature by a trusted key on this note", code="checkpoint-untrusted"
            )
        return checked


# --- keys ------------------------------------------------------------------------------------


class _Ed25519Signing(Protocol):
    """An Ed25519 private key (``cryptography``'s, or an :class:`Ed25519Signer`)."""

    def sign(self, data: bytes, /) -> bytes: ...


@dataclass(frozen=True)
class Ed25519NoteKey:
    """An Ed25519 note key (type 0x01): signer when ``private`` is set, else verifier only."""

    name: str
    public: bytes
    private: _Ed25519Signing | None = field(default=None, compare=False, repr=False)

    @classmethod
    def generate(cls, name: str) -> Ed25519NoteKey:
        priv = Ed25519PrivateKey.generate()
        return cls(name, priv.public_key().public_bytes_raw(), priv)

    @classmethod
    def from_signer(cls, name: str, signer: Ed25519Signer) -> Ed25519NoteKey:
        return cls(name, signer.public_key.raw, signer)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, ED25519_TYPE, self.public)

    def sign(self, text: bytes) -> bytes:
        if self.private is None:
            raise InvalidInput(f"note key {self.name} has no private key")
        return self.private.sign(text)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(checksum_address(address)[2:])


def _recovers(message: bytes, signature: bytes, address: str) -> bool:
    try:
        return recover_address(message, signature).lower() == address.lower()
    except (VerificationFailed, InvalidInput):
        return False


@dataclass(frozen=True)
class Secp256k1NoteKey:
    """A note key held by an Ethereum account (:data:`SECP256K1_TYPE`); verifier-only unless
    ``signer`` is set."""

    name: str
    address: str
    signer: Secp256k1Signer | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_signer(cls, name: str, signer: Secp256k1Signer) -> Secp256k1NoteKey:
        return cls(name, signer.address, signer)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, SECP256K1_TYPE, _address_bytes(self.address))

    def sign(self, text: bytes) -> bytes:
        if self.signer is None:
            raise InvalidInput(f"note key {self.name} has no signer")
        return self.signer.sign(SECP256K1_MESSAGE_PREFIX + text)

    def verify(self, text: bytes, signature: bytes) -> bool:
        return _recovers(SECP256K1_MESSAGE_PREFIX + text, signature, self.address)


def _cosigned_message(ts: int, text: bytes) -> bytes:
    return b"cosignature/v1\ntime %d\n%s" % (ts, text)


@dataclass(frozen=True)
class Ed25519Cosigner:
    """A cosignature/v1 witness key (type 0x04): signs ``u64 time || Ed25519 sig``."""

    name: str
    public: bytes
    private: _Ed25519Signing | None = field(default=None, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    @classmethod
    def generate(cls, name: str) -> Ed25519Cosigner:
        priv = Ed25519PrivateKey.generate()
        return cls(name, priv.public_key().public_bytes_raw(), priv)

    @classmethod
    def from_signer(
        cls, name: str, signer: Ed25519Signer, clock: Callable[[], float] = time.time
    ) -> Ed25519Cosigner:
        return cls(name, signer.public_key.raw, signer, clock)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, COSIGNATURE_V1_TYPE, self.public)

    def sign(self, text: bytes) -> bytes:
        if self.private is None:
            raise InvalidInput(f"cosigner {self.name} has no private key")
        ts = int(self.clock())
        return struct.pack(">Q", ts) + self.private.sign(_cosigned_message(ts, text))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 64:
            return False
        (ts,) = struct.unpack(">Q", signature[:8])
        key = Ed25519NoteKey(self.name, self.public)
        return ts < 2**63 and key.verify(_cosigned_message(ts, text), signature[8:])


@dataclass(frozen=True)
class Secp256k1Cosigner:
    """A cosignature/v1 witness held by an Ethereum account
    (:data:`SECP256K1_COSIGNATURE_TYPE`): ``u64 time || 65-byte sig``."""

    name: str
    address: str
    signer: Secp256k1Signer | None = field(default=None, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    @classmethod
    def from_signer(
        cls, name: str, signer: Secp256k1Signer, clock: Callable[[], float] = time.time
    ) -> Secp256k1Cosigner:
        return cls(name, signer.address, signer, clock)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, SECP256K1_COSIGNATURE_TYPE, _address_bytes(self.address))

    def sign(self, text: bytes) -> bytes:
        if self.signer is None:
            raise InvalidInput(f"cosigner {self.name} has no signer")
        ts = int(self.clock())
        return struct.pack(">Q", ts) + self.signer.sign(_cosigned_message(ts, text))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 65:
            return False
        (ts,) = struct.unpack(">Q", signature[:8])
        return ts < 2**63 and _recovers(_cosigned_message(ts, text), signature[8:], self.address)


def parse_cosignature_time(sig: NoteSignature) -> int:
    """The timestamp of a cosignature/v1 signature (its first 8 bytes, big-endian)."""
    if len(sig.signature) < 8:
        raise FormatError(f"cosignature by {sig.name} has no timestamp")
    return int(struct.unpack(">Q", sig.signature[:8])[0])


#: What a C2SP verifier key string can stand for here.
AnyNoteKey = Ed25519NoteKey | Secp256k1NoteKey | Ed25519Cosigner | Secp256k1Cosigner


def parse_vkey(vkey: str) -> AnyNoteKey:
    """A verifier from ``name+keyid+base64(type || public key)`` (C2SP vkey format), checking
    that the key ID in the string matches the key."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidInput(f"not a verifier key (name+keyid+key): {vkey[:60]!r}")
    name, hex_id, b64 = parts
    try:
        expected_id = bytes.fromhex(hex_id)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidInput(f"verifier key {name!r} is not hex+base64") from None
    key: AnyNoteKey
    if raw.startswith(SECP256K1_TYPE) and len(raw) == len(SECP256K1_TYPE) + 20:
        key = Secp256k1NoteKey(name, checksum_address("0x" + raw[-20:].hex()))
    elif (
        raw.startswith(SECP256K1_COSIGNATURE_TYPE)
        and len(raw) == len(SECP256K1_COSIGNATURE_TYPE) + 20
    ):
        key = Secp256k1Cosigner(name, checksum_address("0x" + raw[-20:].hex()))
    elif raw[:1] == ED25519_TYPE and len(raw) == 33:
        key = Ed25519NoteKey(name, raw[1:])
    elif raw[:1] == COSIGNATURE_V1_TYPE and len(raw) == 33:
        key = Ed25519Cosigner(name, raw[1:])
    else:
        raise InvalidInput(f"verifier key {name!r} has an unsupported signature type")
    _check_name(name)
    if key.key_id != expected_id:
        raise InvalidInput(f"verifier key {name!r}: key ID {hex_id} does not match the key")
    return key


def vkey(key: AnyNoteKey) -> str:
    """The C2SP verifier key string of ``key`` (inverse of :func:`parse_vkey`)."""
    if isinstance(key, Secp256k1NoteKey):
        material = SECP256K1_TYPE + _address_bytes(key.address)
    elif isinstance(key, Secp256k1Cosigner):
        material = SECP256K1_COSIGNATURE_TYPE + _address_bytes(key.address)
    elif isinstance(key, Ed25519NoteKey):
        material = ED25519_TYPE + key.public
    else:
        material = COSIGNATURE_V1_TYPE + key.public
    return f"{key.name}+{key.key_id.hex()}+{base64.b64encode(material).decode()}"


def _unsupported(role: str, key: Signer | PublicKey) -> InvalidInput:
    return InvalidInput(
        f"a {key.keytype} key cannot be a {role}: C2SP notes here take Ed25519 or secp256k1 keys",
        hint="create one with `ailedger keys new NAME --type ed25519` (or secp256k1)",
    )


def note_key_for(name: str, key: Signer | PublicKey) -> Ed25519NoteKey | Secp256k1NoteKey:
    """The log note key named ``name`` (the log's origin) held by ``key``: a signer when
    ``key`` is a :class:`Signer`, a verifier when it is a :class:`PublicKey`."""
    if isinstance(key, Ed25519Signer):
        return Ed25519NoteKey.from_signer(name, key)
    if isinstance(key, Secp256k1Signer):
        return Secp256k1NoteKey.from_signer(name, key)
    if isinstance(key, _keys.Ed25519PublicKey):
        return Ed25519NoteKey(name, key.raw)
    if isinstance(key, Secp256k1PublicKey):
        return Secp256k1NoteKey(name, key.address)
    raise _unsupported("log key", key)


def cosigner_for(
    name: str, key: Signer | PublicKey, clock: Callable[[], float] = time.time
) -> Ed25519Cosigner | Secp256k1Cosigner:
    """The cosignature/v1 witness key named ``name`` held by ``key`` (signer or verifier)."""
    if isinstance(key, Ed25519Signer):
        return Ed25519Cosigner.from_signer(name, key, clock)
    if isinstance(key, Secp256k1Signer):
        return Secp256k1Cosigner.from_signer(name, key, clock)
    if isinstance(key, _keys.Ed25519PublicKey):
        return Ed25519Cosigner(name, key.raw, clock=clock)
    if isinstance(key, Secp256k1PublicKey):
        return Secp256k1Cosigner(name, key.address, clock=clock)
    raise _unsupported("witness key", key)
