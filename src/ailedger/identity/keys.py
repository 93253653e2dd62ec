"""Keys: named signing identities kept encrypted in a workspace's ``keys/`` directory.

Each key ``NAME`` is two files (both mode 0600, in a 0700 directory):

- the private key: ``NAME.keystore.json`` (secp256k1, an Ethereum keystore v3 file that geth,
  MetaMask and eth-account open) or ``NAME.pem`` (P-256, Ed25519, or any key stored with
  ``unsafe_plaintext``: PKCS#8 PEM, PBES2-encrypted unless plaintext);
- ``NAME.meta.json``: public facts only (type, key id, address, org, public key PEM, and the
  sha256 of the private-key file). The digest tells a corrupted keystore (``KeyAccessError``)
  apart from a wrong password (``WrongPassword``), which the keystore MAC alone cannot.

A *public* key imported from another tool (:meth:`Keystore.import_public`: SPKI PEM or a
securesystemslib key) is the metadata file alone (``file`` is null): it verifies, never signs.

KDF cost: stored keys use the standard settings (:data:`SCRYPT_N_STANDARD`, geth's scrypt
N=2^18, r=8, p=1; :data:`PBKDF2_ROUNDS_STANDARD` for PEM). Tests pass the documented
test-only presets :data:`SCRYPT_N_TEST_ONLY` / :data:`PBKDF2_ROUNDS_TEST_ONLY` to
:class:`Keystore` so the suite stays fast; those keys are *not* safe to keep.

Signers and public keys (:class:`Signer`, :class:`PublicKey` and their secp256k1, P-256
and Ed25519 kinds) are defined in ``ailedger.identity._signers`` and re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ailedger.errors import ConflictError, InvalidInput, KeyAccessError, NotFound, WrongPassword
from ailedger.identity._keystore import (
    PrivateKey,
    decrypt_keystore_v3,
    dump_pkcs8_pem,
    encrypt_keystore_v3,
    load_pkcs8_pem,
    pem_is_encrypted,
    write_private_file,
)
from ailedger.identity._public import is_public_key_file, parse_public_key
from ailedger.identity._signers import (
    SECP256K1_N,
    Ed25519PublicKey,
    Ed25519Signer,
    KeyType,
    P256PublicKey,
    P256Signer,
    PublicKey,
    Secp256k1PublicKey,
    Secp256k1Signer,
    Signer,
    checksum_address,
    eip191_hash,
    keccak256,
    load_public_key,
    public_key_from_dict,
    recover_address,
    recover_digest,
)

__all__ = [
    "KEY_TYPES",
    "PBKDF2_ROUNDS_STANDARD",
    "PBKDF2_ROUNDS_TEST_ONLY",
    "SCRYPT_N_STANDARD",
    "SCRYPT_N_TEST_ONLY",
    "SECP256K1_N",
    "Ed25519PublicKey",
    "Ed25519Signer",
    "ImportKind",
    "KeyInfo",
    "KeyType",
    "Keystore",
    "P256PublicKey",
    "P256Signer",
    "PublicKey",
    "Secp256k1PublicKey",
    "Secp256k1Signer",
    "Signer",
    "checksum_address",
    "detect_import_kind",
    "eip191_hash",
    "keccak256",
    "load_public_key",
    "parse_public_key",
    "public_key_from_dict",
    "recover_address",
    "recover_digest",
]

KEY_TYPES: tuple[KeyType, ...] = ("secp256k1", "p256", "ed25519")
#: geth's "standard" scrypt cost (N=2^18, r=8, p=1): about a second per unlock.
SCRYPT_N_STANDARD = 1 << 18
#: Tests only: scrypt N=2^10. Keys written with it are cheap to brute-force.
SCRYPT_N_TEST_ONLY = 1 << 10
#: PBKDF2-HMAC-SHA256 iterations for encrypted PEM keys (OWASP 2023 guidance).
PBKDF2_ROUNDS_STANDARD = 600_000
#: Tests only.
PBKDF2_ROUNDS_TEST_ONLY = 1_000

ImportKind = Literal["keystore-v3", "pem-encrypted", "pem-plain", "public"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_META_VERSION = 1


def detect_import_kind(data: bytes) -> ImportKind:
    """What :meth:`Keystore.import_key` will do with ``data``: it decides the password flow."""
    if is_public_key_file(data):
        return "public"
    head = data.lstrip()[:64]
    if head.startswith(b"-----BEGIN"):
        return "pem-encrypted" if pem_is_encrypted(data.lstrip()) else "pem-plain"
    if head.startswith(b"{"):
        return "keystore-v3"
    raise InvalidInput(
        "not a keystore v3 JSON file, a PEM private or public key, or a securesystemslib key"
    )


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about a stored key; safe to print. ``file`` is None for a public key."""

    name: str
    keytype: KeyType
    public_key: PublicKey
    org: str | None
    created: str
    encrypted: bool
    file: Path | None
    file_sha256: str | None

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    @property
    def public_only(self) -> bool:
        """An imported public key: it verifies signatures but cannot make them."""
        return self.file is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.keytype,
            "keyid": self.keyid,
            "org": self.org,
            "created": self.created,
            "encrypted": self.encrypted,
            "file": None if self.file is None else str(self.file),
            "public_only": self.public_only,
            "public_key_pem": self.public_key.to_pem(),
        }
        if isinstance(self.public_key, Secp256k1PublicKey):
            out["address"] = self.public_key.address
        return out


class Keystore:
    """The keys in one directory (normally ``Workspace.keys_dir``)."""

    def __init__(
        self,
        directory: Path,
        *,
        scrypt_n: int = SCRYPT_N_STANDARD,
        pbkdf2_rounds: int = PBKDF2_ROUNDS_STANDARD,
    ) -> None:
        self.directory = directory
        self.scrypt_n = scrypt_n
        self.pbkdf2_rounds = pbkdf2_rounds

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r})"

    # --- creating -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        password: str | None,
        *,
        keytype: KeyType = "secp256k1",
        org: str | None = None,
        unsafe_plaintext: bool = False,
    ) -> KeyInfo:
        """Generate and store a new key. ``password=None`` needs ``unsafe_plaintext=True``."""
        if keytype == "secp256k1":
            signer: Signer = Secp256k1Signer.generate()
        elif keytype == "p256":
            signer = P256Signer.generate()
        elif keytype == "ed25519":
            signer = Ed25519Signer.generate()
        else:
            raise InvalidInput(f"unknown key type {keytype!r} (expected {', '.join(KEY_TYPES)})")
        return self.add(name, signer, password, org=org, unsafe_plaintext=unsafe_plaintext)

    def add(
        self,
        name: str,
        signer: Signer,
        password: str | None,
        *,
        org: str | None = None,
        unsafe_plaintext: bool = False,
    ) -> KeyInfo:
        """Store an existing signer under ``name``, encrypted with ``password``."""
        self._check_new(name)
        if password is None and not unsafe_plaintext:
            raise InvalidInput("a password is required to store a key (or unsafe_plaintext)")
        if password == "":
            raise InvalidInput("the password is empty")
        if password is not None and isinstance(signer, Secp256k1Signer):
            doc = encrypt_keystore_v3(signer._secret(), password, scrypt_n=self.scrypt_n)
            data = json.dumps(doc, indent=2).encode() + b"\n"
            file = self.directory / f"{name}.keystore.json"
        else:
            data = dump_pkcs8_pem(_private_key(signer), password, rounds=self.pbkdf2_rounds)
            file = self.directory / f"{name}.pem"
        return self._store(name, signer.public_key, file, data, password is not None, org)

    def import_key(
        self,
        name: str,
        data: bytes,
        password: str | None,
        *,
        org: str | None = None,
        unsafe_plaintext: bool = False,
    ) -> KeyInfo:
        """Import a keystore v3 file (kept as is), a PEM private key (re-encrypted) or a public
        key (see :meth:`import_public`; ``password`` is then unused).

        ``password`` unlocks an encrypted input and protects the stored key; a plaintext PEM
        is stored encrypted with it, or plaintext only with ``unsafe_plaintext``.
        """
        self._check_new(name)
        kind = detect_import_kind(data)
        if kind == "public":
            return self.import_public(name, data, org=org)
        if kind == "keystore-v3":
            if password is None:
                raise InvalidInput("a password is required to import a keystore")
            secret = decrypt_keystore_v3(data, password, source=f"import of {name}")
            public = Secp256k1Signer(secret).public_key
            file = self.directory / f"{name}.keystore.json"
            return self._store(name, public, file, data, True, org)
        key = load_pkcs8_pem(data.lstrip(), password, source=f"import of {name}")
        signer = _signer_from_private(key)
        return self.add(name, signer, password, org=org, unsafe_plaintext=unsafe_plaintext)

    def import_public(self, name: str, data: bytes, *, org: str | None = None) -> KeyInfo:
        """Store another party's public key (SPKI PEM or a securesystemslib key object) so
        that its signatures verify; it can never sign."""
        self._check_new(name)
        public = parse_public_key(data)
        if isinstance(public, Secp256k1PublicKey) and public.point is None:
            raise InvalidInput("import a public key, not an address (pass --address to verify)")
        return self._store(name, public, None, b"", False, org)

    # --- reading --------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """Every key, sorted by name."""
        if not self.directory.is_dir():
            return []
        metas = sorted(self.directory.glob("*.meta.json"))
        return [self.info(p.name.removesuffix(".meta.json")) for p in metas]

    def info(self, name: str) -> KeyInfo:
        """Public facts about ``name``; :class:`NotFound` if there is no such key."""
        _check_name(name)
        meta_path = self.directory / f"{name}.meta.json"
        try:
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            raise NotFound(
                f"no key named {name!r}", hint="list keys with `ailedger keys list`"
            ) from None
        except (OSError, ValueError) as exc:
            raise KeyAccessError(f"{meta_path}: unreadable key metadata ({exc})") from None
        try:
            public = load_public_key(meta["public_key_pem"])
            if public.keytype != meta["type"] or not public.matches(meta["keyid"]):
                raise KeyAccessError(f"{meta_path}: key id does not match the public key")
            return KeyInfo(
                name=name,
                keytype=public.keytype,
                public_key=public,
                org=meta.get("org"),
                created=str(meta["created"]),
                encrypted=bool(meta["encrypted"]),
                file=None if meta["file"] is None else self.directory / str(meta["file"]),
                file_sha256=None if meta["file"] is None else str(meta["file_sha256"]),
            )
        except (KeyError, TypeError, InvalidInput) as exc:
            raise KeyAccessError(f"{meta_path}: corrupted key metadata ({exc!r})") from None

    def public_key(self, name: str) -> PublicKey:
        return self.info(name).public_key

    def find(self, keyid: str) -> KeyInfo | None:
        """The stored key with this key id (address or P-256 hint), if any."""
        return next((k for k in self.list_keys() if k.public_key.matches(keyid)), None)

    def signer(self, name: str, password: str | None) -> Signer:
        """Unlock ``name``. :class:`WrongPassword` or :class:`KeyAccessError` on failure."""
        info = self.info(name)
        if info.file is None:
            raise KeyAccessError(
                f"key {name!r} is an imported public key: it verifies signatures, it cannot sign",
                hint="sign with a key made by `ailedger keys new` or imported with its private key",
            )
        try:
            data = info.file.read_bytes()
        except OSError as exc:
            raise KeyAccessError(f"cannot read key file {info.file}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != info.file_sha256:
            raise KeyAccessError(
                f"{info.file} is corrupted: it changed since the key was stored",
                hint="restore the file from a backup; the key cannot be used as it is",
            )
        if info.encrypted and password is None:
            raise KeyAccessError(f"key {name!r} is encrypted and no password was given")
        source = str(info.file)
        signer: Signer
        try:
            if info.file.name.endswith(".keystore.json"):
                signer = Secp256k1Signer(decrypt_keystore_v3(data, password or "", source=source))
            else:
                signer = _signer_from_private(load_pkcs8_pem(data, password, source=source))
        except WrongPassword:
            # The file matches its recorded digest, so a failed MAC means the password.
            raise WrongPassword(
                f"wrong password for key {name!r}",
                hint="check the password; AILEDGER_PASSWORD or --password-file may be stale",
            ) from None
        if signer.public_key != info.public_key:
            raise KeyAccessError(f"{info.file} does not hold the key its metadata names")
        return signer

    # --- helpers --------------------------------------------------------------------------

    def _check_new(self, name: str) -> None:
        _check_name(name)
        if (self.directory / f"{name}.meta.json").exists():
            raise ConflictError(f"a key named {name!r} already exists")

    def _store(
        self,
        name: str,
        public: PublicKey,
        file: Path | None,
        data: bytes,
        encrypted: bool,
        org: str | None,
    ) -> KeyInfo:
        """Write the key file (unless ``file`` is None: a public key) and its metadata."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        meta = {
            "meta_version": _META_VERSION,
            "name": name,
            "type": public.keytype,
            "keyid": public.keyid,
            "org": org,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "encrypted": encrypted,
            "file": None if file is None else file.name,
            "file_sha256": None if file is None else hashlib.sha256(data).hexdigest(),
            "public_key_pem": public.to_pem(),
        }
        try:
            if file is not None:
                write_private_file(file, data)
            write_private_file(
                self.directory / f"{name}.meta.json", json.dumps(meta, indent=2).encode() + b"\n"
            )
        except FileExistsError:
            raise ConflictError(f"a key named {name!r} already exists") from None
        return self.info(name)


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"invalid key name {name!r}: use letters, digits, '-' and '_' (at most 64)"
        )


def _private_key(signer: Signer) -> PrivateKey:
    if isinstance(signer, P256Signer | Ed25519Signer):
        return signer._private_key()
    if isinstance(signer, Secp256k1Signer):
        value = int.from_bytes(signer._secret(), "big")
        return ec.derive_private_key(value, ec.SECP256K1())
    raise InvalidInput(f"cannot store a {type(signer).__name__}")


def _signer_from_private(key: PrivateKey) -> Signer:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key.curve, ec.SECP256R1):
        return P256Signer(key)
    if isinstance(key.curve, ec.SECP256K1):
        return Secp256k1Signer(key.private_numbers().private_value.to_bytes(32, "big"))
    raise KeyAccessError(f"unsupported curve {key.curve.name} (use secp256k1, P-256 or Ed25519)")
