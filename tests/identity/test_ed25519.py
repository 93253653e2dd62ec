"""Ed25519 keys (issue 12, item 6): signer and public key, the keystore (stored encrypted as
PKCS#8, like P-256), and public keys imported from other tools (SPKI PEM, securesystemslib)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import InvalidInput, KeyAccessError, SignatureInvalid, WrongPassword
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Ed25519PublicKey,
    Ed25519Signer,
    Keystore,
    P256PublicKey,
    P256Signer,
    Secp256k1Signer,
    detect_import_kind,
    load_public_key,
    parse_public_key,
    public_key_from_dict,
)

PASSWORD = "correct horse"
SIGNER = Ed25519Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(
        tmp_path / "keys", scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )


def _sslib(public: Ed25519PublicKey) -> bytes:
    doc = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public.raw.hex()}}
    return json.dumps(doc).encode()


@settings(max_examples=examples(50))
@given(st.binary(max_size=300), st.binary(min_size=1, max_size=300))
def test_signatures_verify_and_fail_on_another_message(message: bytes, other: bytes) -> None:
    sig = SIGNER.sign(message)
    assert len(sig) == 64
    SIGNER.public_key.verify(message, sig)
    ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key().verify(
        sig, message
    )  # plain RFC 8032 Ed25519 over the message: what securesystemslib and C2SP sign
    if other != message:
        with pytest.raises(SignatureInvalid, match="not made by Ed25519 key"):
            SIGNER.public_key.verify(other, sig)
    with pytest.raises(SignatureInvalid):
        Ed25519Signer.generate().public_key.verify(message, sig)


def test_public_key_forms_round_trip() -> None:
    public = SIGNER.public_key
    assert public.keyid == hashlib.sha256(public.to_pem().encode()).hexdigest()
    assert load_public_key(public.to_pem()) == public
    assert public_key_from_dict(public.to_dict()) == public
    assert Ed25519PublicKey.from_raw(public.raw) == public
    assert parse_public_key(_sslib(public)) == public
    assert public != P256Signer.generate().public_key
    with pytest.raises(InvalidInput, match="32 bytes"):
        Ed25519PublicKey.from_raw(public.raw[:31])


def test_a_wrong_password_that_passes_the_padding_check_is_still_a_wrong_password(
    store: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About one wrong password in 256 decrypts to bytes with valid padding, and the key
    data then fails to parse: cryptography says "could not deserialize", not "password".
    Seen once in CI as "not a readable PEM private key" for a wrong password."""
    store.create("ed", PASSWORD, keytype="ed25519")

    def undecodable(data: bytes, password: bytes | None) -> object:
        raise ValueError("Could not deserialize key data. The data may be in an incorrect format")

    monkeypatch.setattr(serialization, "load_pem_private_key", undecodable)
    with pytest.raises(WrongPassword, match="wrong password"):
        store.signer("ed", "wrong")


def test_keystore_stores_ed25519_encrypted(store: Keystore) -> None:
    info = store.create("ed", PASSWORD, keytype="ed25519")
    assert (info.keytype, info.encrypted, info.public_only) == ("ed25519", True, False)
    assert info.file is not None
    assert info.file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    signer = store.signer("ed", PASSWORD)
    assert isinstance(signer, Ed25519Signer)
    assert signer.public_key == info.public_key
    assert repr(signer) == f"Ed25519Signer(keyid={info.keyid!r})"
    with pytest.raises(WrongPassword):
        store.signer("ed", "wrong")
    with pytest.raises(InvalidInput, match="unknown key type 'ed448'"):
        store.create("x", PASSWORD, keytype="ed448")  # type: ignore[arg-type]


def test_import_of_an_ed25519_private_key_pem(store: Keystore) -> None:
    pem = SIGNER._private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert detect_import_kind(pem) == "pem-plain"
    info = store.import_key("imported", pem, PASSWORD)
    assert info.encrypted
    assert info.public_key == SIGNER.public_key
    assert store.signer("imported", PASSWORD).sign(b"m") == SIGNER.sign(b"m")


@pytest.mark.parametrize(
    "data",
    [
        SIGNER.public_key.to_pem().encode(),
        _sslib(SIGNER.public_key),
    ],
    ids=["pem", "securesystemslib"],
)
def test_import_of_a_public_key_verifies_but_never_signs(store: Keystore, data: bytes) -> None:
    assert detect_import_kind(data) == "public"
    info = store.import_key("theirs", data, None)
    assert info.public_only
    assert info.file is None
    assert info.public_key == SIGNER.public_key
    assert store.info("theirs").to_dict()["public_only"] is True
    assert [k.name for k in store.list_keys()] == ["theirs"]
    assert store.find(SIGNER.keyid) == info
    with pytest.raises(KeyAccessError, match="cannot sign"):
        store.signer("theirs", PASSWORD)
    assert sorted(p.name for p in store.directory.iterdir()) == ["theirs.meta.json"]


def test_securesystemslib_ecdsa_keys_import_as_p256(store: Keystore) -> None:
    p256 = P256Signer.generate().public_key
    doc = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": p256.to_pem()}}
    info = store.import_public("p", json.dumps(doc).encode())
    assert isinstance(info.public_key, P256PublicKey)
    assert info.public_key == p256


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "x"}}, "rsa"),
        ({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}}, "not hex"),
        ({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00" * 31}}, "32"),
        ({"keytype": "ed25519", "scheme": "ed25519", "keyval": {}}, "keyval.public"),
        (
            {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "", "private": "1"}},
            "private key",
        ),
        (
            {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "x"}},
            "PEM",
        ),
    ],
)
def test_unknown_or_malformed_public_keys_fail_closed(
    store: Keystore, doc: dict[str, object], needle: str
) -> None:
    with pytest.raises(InvalidInput, match=needle):
        store.import_public("bad", json.dumps(doc).encode())
    assert store.list_keys() == []


def test_other_key_algorithms_are_refused(store: Keystore) -> None:
    pem = (
        rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInput, match="supported"):
        store.import_key("rsa", pem, None)
    with pytest.raises(InvalidInput, match="not an address"):
        store.import_public("addr", Secp256k1Signer.generate().address.encode())
    assert store.list_keys() == []
