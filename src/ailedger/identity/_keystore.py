"""Private-key file formats: Ethereum keystore v3 and PKCS#8 PEM (encrypted or not).

Every function takes and returns bytes; nothing here logs or formats a secret. Errors never
include key material: a wrong password is :class:`WrongPassword`, anything unreadable is
:class:`KeyAccessError` naming the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ailedger import _json
from ailedger.errors import FormatError, KeyAccessError, WrongPassword
from ailedger.identity._signers import keccak256

__all__ = [
    "PrivateKey",
    "decrypt_keystore_v3",
    "dump_pkcs8_pem",
    "encrypt_keystore_v3",
    "load_pkcs8_pem",
    "pem_is_encrypted",
    "write_private_file",
]


#: The private keys a PEM file here may hold.
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def encrypt_keystore_v3(secret: bytes, password: str, *, scrypt_n: int) -> dict[str, Any]:
    """An Ethereum keystore v3 document (scrypt, r=8, p=1, cost ``scrypt_n``)."""
    from eth_account import Account  # imported here: it costs ~0.4 s of every CLI start

    doc: dict[str, Any] = Account.encrypt(secret, password, kdf="scrypt", iterations=scrypt_n)
    return doc


#: The most memory a keystore's scrypt may ask for (128 * n * r bytes): geth's standard
#: N=2^18, r=8 needs exactly this. A file asking for more is refused, not run for minutes.
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
#: The most PBKDF2 rounds a keystore may ask for (geth writes 262,144).
MAX_PBKDF2_ROUNDS = 10_000_000


def _int_param(params: dict[str, Any], name: str, low: int, high: int, source: str) -> int:
    value = params.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise KeyAccessError(
            f"{source}: keystore KDF parameter {name}={value!r} is not an integer in "
            f"[{low}, {high}]",
            hint="the file is corrupt or was made with settings ailedger does not accept",
        )
    return value


def _check_kdf(crypto: dict[str, Any], source: str) -> None:
    """Refuse KDF settings that eth-keyfile would assert on, or that would run for minutes."""
    if crypto.get("cipher") != "aes-128-ctr":
        raise KeyAccessError(
            f"{source}: keystore cipher {crypto.get('cipher')!r} is not aes-128-ctr"
        )
    params = crypto.get("kdfparams")
    if not isinstance(params, dict):
        raise KeyAccessError(f"{source}: keystore has no kdfparams")
    _int_param(params, "dklen", 32, 32, source)
    salt = params.get("salt")
    if not isinstance(salt, str) or not salt or len(salt) > 1024:
        raise KeyAccessError(f"{source}: keystore KDF salt is missing or malformed")
    if crypto["kdf"] == "scrypt":
        n = _int_param(params, "n", 2, 1 << 30, source)
        if n & (n - 1):
            raise KeyAccessError(f"{source}: keystore scrypt n={n} is not a power of two")
        r = _int_param(params, "r", 1, 1024, source)
        _int_param(params, "p", 1, 16, source)
        if 128 * n * r > MAX_SCRYPT_MEMORY:
            raise KeyAccessError(
                f"{source}: keystore scrypt n={n}, r={r} needs {128 * n * r >> 20} MiB, "
                f"more than the {MAX_SCRYPT_MEMORY >> 20} MiB ailedger allows",
                hint="re-encrypt the key with standard settings (geth's n=262144, r=8, p=1)",
            )
    else:
        if params.get("prf") != "hmac-sha256":
            raise KeyAccessError(
                f"{source}: keystore PBKDF2 prf {params.get('prf')!r} is not hmac-sha256"
            )
        _int_param(params, "c", 1, MAX_PBKDF2_ROUNDS, source)


def _hex(value: object) -> bytes:
    """A hex field of a keystore (``0x`` allowed, as eth-keyfile reads it)."""
    if not isinstance(value, str):
        raise TypeError("not a hex string")
    return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)


def _derived_key(crypto: dict[str, Any], password: bytes) -> bytes:
    """The KDF output (checked by :func:`_check_kdf` first)."""
    params = crypto["kdfparams"]
    salt = _hex(params["salt"])
    if crypto["kdf"] == "scrypt":
        # pycryptodome's scrypt, as eth-keyfile's: OpenSSL's (hashlib, cryptography) refuses
        # n >= 2^(16 r), and eth-keyfile writes r=1 with n=2^18
        from Crypto.Protocol.KDF import scrypt

        # (it takes str and encodes it as latin-1: eth-keyfile passes bytes that way)
        text, salt_text = password.decode("latin-1"), salt.decode("latin-1")
        key = scrypt(text, salt_text, 32, N=params["n"], r=params["r"], p=params["p"])
        assert isinstance(key, bytes)
        return key
    return hashlib.pbkdf2_hmac("sha256", password, salt, params["c"], 32)


def decrypt_keystore_v3(raw: bytes, password: str, *, source: str) -> bytes:
    """The 32-byte secret of a keystore v3 file.

    The same computation as eth-keyfile's (scrypt or PBKDF2-HMAC-SHA256, a Keccak-256 MAC over
    the second half of the derived key and the ciphertext, AES-128-CTR with the IV as the
    initial 128-bit counter), written here because importing eth-account costs ~0.35 s of
    CPU (it computes BLS pairing constants at import) at every start of a command that
    unlocks a key, ``ailedger serve`` included; tests/identity/test_keys.py checks that the two
    agree.

    A MAC mismatch means a wrong password *or* altered ciphertext; callers that recorded the
    file's digest (the :class:`~ailedger.identity.keys.Keystore` does) tell the two apart first.
    """
    try:
        doc = _json.loads(raw, what=f"{source}: keystore", max_bytes=1 << 20)
    except FormatError as exc:
        raise KeyAccessError(exc.message) from None
    if not isinstance(doc, dict) or doc.get("version") != 3:
        raise KeyAccessError(f"{source}: not an Ethereum keystore v3 file")
    crypto = doc.get("crypto", doc.get("Crypto"))
    if not isinstance(crypto, dict) or crypto.get("kdf") not in ("scrypt", "pbkdf2"):
        raise KeyAccessError(f"{source}: keystore has no usable 'crypto' section")
    _check_kdf(crypto, source)
    try:
        derived = _derived_key(crypto, password.encode())
        ciphertext = _hex(crypto["ciphertext"])
        if not hmac.compare_digest(keccak256(derived[16:32] + ciphertext), _hex(crypto["mac"])):
            raise WrongPassword(
                f"{source}: wrong password (or the keystore was altered)",
                hint="check the password; AILEDGER_PASSWORD or --password-file may be stale",
            )
        iv = int.from_bytes(_hex(crypto["cipherparams"]["iv"]))
        if iv >> 128:
            raise ValueError("the IV is over 128 bits")
        counter = modes.CTR(iv.to_bytes(16))
        decryptor = Cipher(algorithms.AES(derived[:16]), counter).decryptor()
        secret = decryptor.update(ciphertext) + decryptor.finalize()
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise KeyAccessError(f"{source}: corrupted keystore ({type(exc).__name__})") from None
    if len(secret) != 32:
        raise KeyAccessError(f"{source}: corrupted keystore (secret is not 32 bytes)")
    return secret


# --- PKCS#8 -----------------------------------------------------------------------------
# cryptography's BestAvailableEncryption uses a low PBKDF2 count for PKCS#8, so encrypted
# keys are written here as a standard PBES2 EncryptedPrivateKeyInfo (RFC 8018: PBKDF2 with
# HMAC-SHA256, AES-256-CBC) with a chosen iteration count. OpenSSL, cryptography and
# model-signing read it with the password alone.

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out.extend(reversed(chunk))
    return _der(0x06, bytes(out))


def dump_pkcs8_pem(key: PrivateKey, password: str | None, *, rounds: int) -> bytes:
    """PKCS#8 PEM of ``key``: PBES2-encrypted with ``password``, or plain when it is None."""
    if password is None:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = os.urandom(16), os.urandom(16)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=rounds)
    aes_key = kdf.derive(password.encode("utf-8"))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    pbkdf2_params = _seq(_der(0x04, salt), _int(rounds), _seq(_oid(_OID_HMAC_SHA256), b"\x05\x00"))
    algorithm = _seq(
        _oid(_OID_PBES2),
        _seq(_seq(_oid(_OID_PBKDF2), pbkdf2_params), _seq(_oid(_OID_AES256_CBC), _der(0x04, iv))),
    )
    der = _seq(algorithm, _der(0x04, ciphertext))
    return _pem("ENCRYPTED PRIVATE KEY", der)


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def pem_is_encrypted(pem: bytes) -> bool:
    """Whether a PEM private key needs a password to load."""
    return b"ENCRYPTED" in pem.split(b"\n", 2)[0] or b"Proc-Type: 4,ENCRYPTED" in pem


def load_pkcs8_pem(pem: bytes, password: str | None, *, source: str) -> PrivateKey:
    """Load an EC or Ed25519 private key from PEM (PKCS#8 or traditional), encrypted or not."""
    secret = password.encode("utf-8") if password is not None and pem_is_encrypted(pem) else None
    if pem_is_encrypted(pem) and secret is None:
        raise KeyAccessError(f"{source}: the key is encrypted and no password was given")
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except ValueError as exc:
        # a wrong password usually fails the decryption's padding check, but about one in
        # 256 passes it and fails as undecodable key data: for an encrypted key, any failure
        # to load is a wrong password (or an altered file), never "not a key"
        text = str(exc).lower()
        if secret is not None or "password" in text or "decrypt" in text:
            raise WrongPassword(f"{source}: wrong password (or the key file was altered)") from None
        raise KeyAccessError(f"{source}: not a readable PEM private key") from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise KeyAccessError(
            f"{source}: not a readable PEM private key ({type(exc).__name__})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyAccessError(f"{source}: not an elliptic-curve or Ed25519 private key")
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``, atomically, refusing to overwrite."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails with FileExistsError instead of replacing a key
    finally:
        tmp.unlink(missing_ok=True)
