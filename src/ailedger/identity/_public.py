"""Public-key files other tools write: SPKI PEM, Ethereum addresses and securesystemslib keys.

A securesystemslib (and in-toto / TUF) public key is a JSON object
``{"keytype", "scheme", "keyval": {"public"}}``: for ``ed25519`` the public value is the
32-byte key in hex, for ``ecdsa`` / ``ecdsa-sha2-nistp256`` an SPKI PEM. Private values
(``keyval.private``) are refused here: a public key file must not carry one.
"""

from __future__ import annotations

import json
from typing import Any

from ailedger.errors import InvalidInput
from ailedger.identity._signers import (
    Ed25519PublicKey,
    P256PublicKey,
    PublicKey,
    load_public_key,
)

__all__ = ["is_public_key_file", "parse_public_key"]

_SSLIB_ED25519 = ("ed25519", "ed25519")
_SSLIB_P256 = {
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
}


def _json_object(data: bytes) -> dict[str, Any] | None:
    if not data.lstrip().startswith(b"{") or len(data) > 1 << 16:
        return None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_public_key_file(data: bytes) -> bool:
    """Whether ``data`` looks like a public key (PEM ``PUBLIC KEY`` or a securesystemslib
    key object) rather than a private key or keystore."""
    head = data.lstrip()[:64]
    if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
        return True
    doc = _json_object(data)
    return doc is not None and "keyval" in doc and "keytype" in doc


def _from_sslib(doc: dict[str, Any]) -> PublicKey:
    keyval = doc.get("keyval")
    if not isinstance(keyval, dict) or not isinstance(keyval.get("public"), str):
        raise InvalidInput("securesystemslib key has no keyval.public string")
    if keyval.get("private"):
        raise InvalidInput("the key file holds a private key: import only its public part")
    kind = (doc.get("keytype"), doc.get("scheme"))
    public = keyval["public"]
    if kind == _SSLIB_ED25519:
        try:
            raw = bytes.fromhex(public)
        except ValueError:
            raise InvalidInput("securesystemslib ed25519 key is not hex") from None
        return Ed25519PublicKey.from_raw(raw)
    if kind in _SSLIB_P256:
        key = load_public_key(public)
        if not isinstance(key, P256PublicKey):
            raise InvalidInput("securesystemslib ecdsa key is not a P-256 key")
        return key
    raise InvalidInput(
        f"unsupported securesystemslib key type {kind[0]!r} / scheme {kind[1]!r} "
        "(supported: ed25519, ecdsa-sha2-nistp256)"
    )


def parse_public_key(data: bytes | str) -> PublicKey:
    """A public key from SPKI PEM (P-256, secp256k1, Ed25519), an Ethereum address, or a
    securesystemslib key object (ed25519, ecdsa-sha2-nistp256)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    doc = _json_object(raw)
    if doc is not None:
        return _from_sslib(doc)
    return load_public_key(raw)
