"""Salted leaves for dataset fingerprints.

A dataset leaf is the RFC 9162 entry ``D[i]``; its leaf hash is ``SHA-256(0x00 || D[i])``::

    D[i] = salt || record      salted schemes (the salt is always 32 bytes)
    D[i] = record              unsalted-v1

``record`` is the record's encoded bytes (see :mod:`ailedger.fingerprint._formats`). Since the salt
has a fixed size, ``(salt, record)`` is recovered from ``D[i]`` without ambiguity, and a verifier
rebuilds the leaf from the record and the salt printed in a proof.

Salt schemes (the secret is any byte string of at least 16 bytes, kept off-chain):

``salted-blake3-index-v1`` (input order)
    ``K = BLAKE3.derive_key("ailedger 2026-11 dataset leaf salt by index v1", secret)``;
    ``salt_i`` is bytes ``32*i .. 32*i+32`` of the keyed BLAKE3 XOF output
    ``BLAKE3(key=K, input="")``. One XOF call yields the salts of a whole dataset, and BLAKE3's
    seekable output gives any single salt directly. Salts are pseudorandom under ``K``: a salt
    (or many) reveals nothing about the others or the secret.
``salted-blake3-record-v1`` (sorted order)
    ``K = BLAKE3.derive_key("ailedger 2026-11 dataset leaf salt by record v1", secret)``;
    ``salt = BLAKE3(key=K, input=record)``. The salt does not depend on the position, so an
    absent record has a well-defined leaf hash and non-membership can be shown. A verifier
    cannot check that a disclosed salt was derived from the secret; only a holder of the secret
    (the data owner, or an auditor given it) can.
``unsalted-v1``
    No salt, for public data. A short record could be guessed from its leaf hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from blake3 import blake3

from ailedger.errors import InvalidInput, NotFound

__all__ = [
    "MIN_SECRET_SIZE",
    "SALTED_BY_INDEX",
    "SALTED_BY_RECORD",
    "SALT_SCHEMES",
    "SALT_SIZE",
    "UNSALTED",
    "create_secret_file",
    "derive_key",
    "index_salt",
    "index_salts",
    "leaf_entry",
    "leaf_hashes",
    "read_secret_file",
    "record_salt",
    "secret_id",
]

SALT_SIZE = 32
MIN_SECRET_SIZE = 16
UNSALTED = "unsalted-v1"
SALTED_BY_INDEX = "salted-blake3-index-v1"
SALTED_BY_RECORD = "salted-blake3-record-v1"
SALT_SCHEMES = (SALTED_BY_INDEX, SALTED_BY_RECORD, UNSALTED)

_CONTEXTS = {
    SALTED_BY_INDEX: "ailedger 2026-11 dataset leaf salt by index v1",
    SALTED_BY_RECORD: "ailedger 2026-11 dataset leaf salt by record v1",
}
_SECRET_ID_CONTEXT = "ailedger 2026-11 dataset secret id v1"


def derive_key(secret: bytes, scheme: str) -> bytes:
    """The 32-byte BLAKE3 key of a salted ``scheme`` for ``secret``."""
    context = _CONTEXTS.get(scheme)
    if context is None:
        raise InvalidInput(f"salt scheme {scheme!r} takes no key")
    if len(secret) < MIN_SECRET_SIZE:
        raise InvalidInput(f"dataset secret is {len(secret)} bytes, at least {MIN_SECRET_SIZE}")
    return blake3(secret, derive_key_context=context).digest()


def secret_id(secret: bytes) -> str:
    """A short public name of a secret (it reveals nothing about it), kept in index files."""
    return blake3(secret, derive_key_context=_SECRET_ID_CONTEXT).digest(length=8).hex()


def index_salt(key: bytes, index: int) -> bytes:
    """``salt_i`` of ``salted-blake3-index-v1``."""
    return blake3(key=key).digest(length=SALT_SIZE, seek=SALT_SIZE * index)


def index_salts(key: bytes, count: int, start: int = 0) -> bytes:
    """``salt_start || ... || salt_{start+count-1}`` in one XOF call."""
    return blake3(key=key).digest(length=SALT_SIZE * count, seek=SALT_SIZE * start)


def record_salt(key: bytes, record: bytes) -> bytes:
    """The salt of ``record`` under ``salted-blake3-record-v1``."""
    return blake3(record, key=key).digest()


def leaf_entry(record: bytes, salt: bytes | None) -> bytes:
    """The RFC 9162 entry of a record: ``salt || record`` (or the record when unsalted)."""
    if salt is None:
        return record
    if len(salt) != SALT_SIZE:
        raise InvalidInput(f"salt is {len(salt)} bytes, expected {SALT_SIZE}")
    return salt + record


def leaf_hashes(
    records: Sequence[bytes], scheme: str, secret: bytes | None, start: int = 0
) -> list[bytes]:
    """Leaf hashes of ``records`` in input order, the first being record number ``start``
    (record ``i`` has index salt ``i``).

    One SHA-256 per record; the salts of ``salted-blake3-index-v1`` come from one XOF call.
    """
    sha = hashlib.sha256
    if scheme == UNSALTED:
        if secret is not None:
            raise InvalidInput("an unsalted scheme takes no secret")
        return [sha(b"\x00" + r).digest() for r in records]
    if secret is None:
        raise InvalidInput(f"salt scheme {scheme} needs the dataset secret")
    key = derive_key(secret, scheme)
    if scheme == SALTED_BY_INDEX:
        stream = index_salts(key, len(records), start)
        return [
            sha(b"\x00" + stream[o : o + SALT_SIZE] + r).digest()
            for o, r in zip(range(0, len(stream), SALT_SIZE), records, strict=True)
        ]
    if scheme == SALTED_BY_RECORD:
        return [sha(b"\x00" + blake3(r, key=key).digest() + r).digest() for r in records]
    raise InvalidInput(f"unknown salt scheme {scheme!r}")


# --- Secret files ------------------------------------------------------------------------------


def read_secret_file(path: Path) -> bytes:
    """A dataset secret: the file's bytes without trailing whitespace (at least 16 bytes)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"salt secret file not found: {path}",
            hint="pass --salt-secret FILE with the secret used to fingerprint, or --unsalted",
        ) from None
    except IsADirectoryError:
        raise InvalidInput(f"salt secret path is a directory: {path}") from None
    secret = raw.rstrip(b" \t\r\n")
    if len(secret) < MIN_SECRET_SIZE:
        raise InvalidInput(
            f"salt secret in {path} is {len(secret)} bytes, at least {MIN_SECRET_SIZE} needed"
        )
    return secret


def create_secret_file(path: Path) -> bytes:
    """Write a new random secret (64 hex digits) to ``path`` with mode 0600; never overwrite."""
    secret = os.urandom(32).hex().encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"refusing to overwrite existing secret file {path}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
    return secret
