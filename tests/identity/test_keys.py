"""Keystore files, signers and public keys (secp256k1 and P-256)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys as eth_keys
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import (
    ConflictError,
    InvalidInput,
    KeyAccessError,
    NotFound,
    SignatureInvalid,
    WrongPassword,
)
from ailedger.identity._keystore import decrypt_keystore_v3
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_STANDARD,
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_STANDARD,
    SCRYPT_N_TEST_ONLY,
    SECP256K1_N,
    Keystore,
    P256PublicKey,
    P256Signer,
    Secp256k1PublicKey,
    Secp256k1Signer,
    checksum_address,
    load_public_key,
    public_key_from_dict,
    recover_address,
    recover_digest,
)

PASSWORD = "correct horse"


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(
        tmp_path / "keys", scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )


def test_stored_keys_use_standard_costs_by_default(tmp_path: Path) -> None:
    store = Keystore(tmp_path)
    assert store.scrypt_n == SCRYPT_N_STANDARD == 2**18
    assert store.pbkdf2_rounds == PBKDF2_ROUNDS_STANDARD >= 600_000


def test_secp256k1_key_is_a_standard_keystore_v3(store: Keystore) -> None:
    info = store.create("alice", PASSWORD, org="acme")
    assert info.keytype == "secp256k1"
    assert info.org == "acme"
    assert info.encrypted
    doc = json.loads(info.file.read_text())
    assert doc["version"] == 3
    assert doc["crypto"]["kdf"] == "scrypt"
    assert doc["crypto"]["kdfparams"]["n"] == SCRYPT_N_TEST_ONLY
    secret = Account.decrypt(doc, PASSWORD)  # what geth / eth-account would do
    assert Account.from_key(secret).address == info.keyid
    for path in store.directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700


def test_p256_key_is_encrypted_pkcs8(store: Keystore) -> None:
    info = store.create("bob", PASSWORD, keytype="p256")
    pem = info.file.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, None)
    key = serialization.load_pem_private_key(pem, PASSWORD.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert info.keyid == hashlib.sha256(spki).hexdigest()


@pytest.mark.interop
def test_p256_keyid_is_the_model_signing_hint(store: Keystore) -> None:
    from model_signing._signing import sign_ec_key

    info = store.create("bob", PASSWORD, keytype="p256")
    signer = sign_ec_key.Signer(info.file, PASSWORD.encode())  # type: ignore[arg-type]
    assert signer._get_verification_material().public_key.hint == info.keyid


@pytest.mark.parametrize("keytype", ["secp256k1", "p256"])
def test_unlock_sign_verify(store: Keystore, keytype: str) -> None:
    info = store.create("k", PASSWORD, keytype=keytype)  # type: ignore[arg-type]
    signer = store.signer("k", PASSWORD)
    assert signer.keyid == info.keyid
    sig = signer.sign(b"message")
    store.public_key("k").verify(b"message", sig)
    with pytest.raises(SignatureInvalid):
        store.public_key("k").verify(b"other message", sig)


@pytest.mark.parametrize("keytype", ["secp256k1", "p256"])
def test_wrong_password(store: Keystore, keytype: str) -> None:
    store.create("k", PASSWORD, keytype=keytype)  # type: ignore[arg-type]
    with pytest.raises(WrongPassword, match="wrong password for key 'k'"):
        store.signer("k", "not it")


@pytest.mark.parametrize("keytype", ["secp256k1", "p256"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_keystore_is_not_a_wrong_password(
    store: Keystore, keytype: str, damage: str
) -> None:
    info = store.create("k", PASSWORD, keytype=keytype)  # type: ignore[arg-type]
    data = bytearray(info.file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data = bytearray(b"{not json")
    info.file.chmod(0o600)
    info.file.write_bytes(bytes(data))
    with pytest.raises(KeyAccessError, match="corrupted") as exc:
        store.signer("k", PASSWORD)
    assert not isinstance(exc.value, WrongPassword)


def test_keystore_parse_errors_without_digest() -> None:
    with pytest.raises(KeyAccessError, match="not valid JSON"):
        decrypt_keystore_v3(b'{"version": 3, "cry', PASSWORD, source="x")
    with pytest.raises(KeyAccessError, match="not an Ethereum keystore v3"):
        decrypt_keystore_v3(b'{"version": 4}', PASSWORD, source="x")
    doc = Account.encrypt(b"\x01" * 32, PASSWORD, kdf="scrypt", iterations=SCRYPT_N_TEST_ONLY)
    del doc["crypto"]["cipherparams"]
    with pytest.raises(KeyAccessError, match="corrupted keystore"):
        decrypt_keystore_v3(json.dumps(doc).encode(), PASSWORD, source="x")


@settings(max_examples=examples(25))
@given(
    secret=st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32)),
    password=st.text(max_size=20),
    other=st.text(max_size=20),
    kdf=st.sampled_from(["scrypt", "pbkdf2"]),
)
def test_keystore_v3_decrypt_agrees_with_eth_account(
    secret: bytes, password: str, other: str, kdf: str
) -> None:
    """decrypt_keystore_v3 is written without eth-account (its import is slow): the same
    secret as eth-account for its own files, and a wrong password is WrongPassword."""
    cost = SCRYPT_N_TEST_ONLY if kdf == "scrypt" else PBKDF2_ROUNDS_TEST_ONLY
    doc = Account.encrypt(secret, password, kdf=kdf, iterations=cost)  # type: ignore[arg-type]
    raw = json.dumps(doc).encode()
    assert decrypt_keystore_v3(raw, password, source="x") == secret
    assert bytes(Account.decrypt(doc, password)) == secret
    assume(other != password)
    with pytest.raises(WrongPassword):
        decrypt_keystore_v3(raw, other, source="x")


def test_keystore_v3_decrypt_reads_geths_test_vector() -> None:
    """The keystore v3 test vector of the Web3 Secret Storage Definition (scrypt, n=262144)."""
    doc = {
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
            "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": 32,
                "n": 262144,
                "p": 8,
                "r": 1,
                "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
            },
            "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
        },
        "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
        "version": 3,
    }
    secret = decrypt_keystore_v3(json.dumps(doc).encode(), "testpassword", source="x")
    assert secret.hex() == "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"


def test_metadata_must_match_key_file(store: Keystore) -> None:
    store.create("a", PASSWORD)
    b = store.create("b", PASSWORD)
    meta = json.loads((store.directory / "a.meta.json").read_text())
    meta["file"], meta["file_sha256"] = b.file.name, b.file_sha256
    (store.directory / "a.meta.json").write_text(json.dumps(meta))
    with pytest.raises(KeyAccessError, match="does not hold the key"):
        store.signer("a", PASSWORD)


def test_names_and_lookup(store: Keystore) -> None:
    with pytest.raises(NotFound, match="no key named 'ghost'"):
        store.info("ghost")
    with pytest.raises(InvalidInput, match="invalid key name"):
        store.create("../evil", PASSWORD)
    a = store.create("a", PASSWORD)
    with pytest.raises(ConflictError):
        store.create("a", PASSWORD)
    b = store.create("b", PASSWORD, keytype="p256")
    assert [k.name for k in store.list_keys()] == ["a", "b"]
    assert store.find(a.keyid.lower()) == a
    assert store.find(b.keyid) == b
    assert store.find("0x" + "00" * 20) is None


def test_plaintext_needs_the_unsafe_flag(store: Keystore) -> None:
    with pytest.raises(InvalidInput, match="password is required"):
        store.create("k", None)
    with pytest.raises(InvalidInput, match="empty"):
        store.create("k", "")
    info = store.create("k", None, unsafe_plaintext=True)
    assert not info.encrypted
    assert info.file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert store.signer("k", None).keyid == info.keyid


def test_import_keystore_v3_keeps_the_file(store: Keystore) -> None:
    account = Account.create()
    doc = account.encrypt(PASSWORD, kdf="scrypt", iterations=SCRYPT_N_TEST_ONLY)
    data = json.dumps(doc).encode()
    info = store.import_key("imported", data, PASSWORD)
    assert info.keyid == account.address
    assert info.file.read_bytes() == data
    assert store.signer("imported", PASSWORD).keyid == account.address
    with pytest.raises(WrongPassword):
        store.import_key("again", data, "wrong")
    with pytest.raises(KeyAccessError, match="not valid JSON"):
        store.import_key("cut", data[:40], PASSWORD)


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP256R1()])
@pytest.mark.parametrize("encrypted", [True, False])
def test_import_pem(store: Keystore, curve: ec.EllipticCurve, encrypted: bool) -> None:
    key = ec.generate_private_key(curve)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(b"pem-pass")
        if encrypted
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    info = store.import_key("k", pem, "pem-pass")
    expected = load_public_key(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert info.public_key == expected
    assert info.encrypted
    assert store.signer("k", "pem-pass").keyid == expected.keyid
    if encrypted:
        with pytest.raises(WrongPassword):
            store.import_key("k2", pem, "nope")


def test_secrets_stay_out_of_reprs(store: Keystore) -> None:
    store.create("k", PASSWORD)
    signer = store.signer("k", PASSWORD)
    assert isinstance(signer, Secp256k1Signer)
    secret = signer._secret().hex()
    texts = [repr(signer), str(signer), repr(store), repr(store.info("k")), repr(signer.public_key)]
    texts.append(json.dumps(store.info("k").to_dict()))
    assert not any(secret in t.lower() for t in texts)


def test_secp256k1_signature_is_eth_personal_sign() -> None:
    signer = Secp256k1Signer.generate()
    message = b"DSSEv1 4 type 5 hello"
    ours = signer.sign(message)
    theirs = Account.sign_message(encode_defunct(primitive=message), signer._secret())
    assert ours == bytes(theirs.signature)
    assert Account.recover_message(encode_defunct(primitive=message), signature=ours) == (
        signer.address
    )
    assert recover_address(message, ours) == signer.address


def _high_s_twin(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def test_high_s_twin_is_rejected() -> None:
    signer = Secp256k1Signer.generate()
    digest = hashlib.sha256(b"x").digest()
    sig = signer.sign_digest(digest)
    twin = _high_s_twin(sig)
    # The twin is a mathematically valid signature by the same key (eth-keys accepts it) ...
    plain = eth_keys.Signature(twin[:64] + bytes([twin[64] - 27]))
    assert plain.recover_public_key_from_msg_hash(digest).to_checksum_address() == signer.address
    # ... and ailedger refuses it.
    with pytest.raises(SignatureInvalid, match="high s"):
        recover_digest(digest, twin)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[:64], "65 bytes"),
        (lambda s: s[:64] + b"\x00", "v=0"),
        (lambda s: s[:64] + b"\x1d", "v=29"),
        (lambda s: b"\x00" * 32 + s[32:], "out of range"),
    ],
)
def test_malformed_secp256k1_signatures(mutate: object, message: str) -> None:
    signer = Secp256k1Signer.generate()
    sig = signer.sign(b"m")
    with pytest.raises(SignatureInvalid, match=message):
        recover_address(b"m", mutate(sig))  # type: ignore[operator]


def test_address_only_public_key_verifies_by_recovery() -> None:
    signer = Secp256k1Signer.generate()
    public = Secp256k1PublicKey(signer.address.lower())
    assert public.keyid == signer.address
    public.verify(b"m", signer.sign(b"m"))
    with pytest.raises(SignatureInvalid):
        public.verify(b"m", Secp256k1Signer.generate().sign(b"m"))
    with pytest.raises(InvalidInput, match="only the address"):
        public.to_pem()
    assert public_key_from_dict(public.to_dict()) == public


def test_address_checksum_is_checked() -> None:
    address = Secp256k1Signer.generate().address
    broken = address[:2] + address[2:].swapcase()
    if broken[2:] not in (broken[2:].lower(), broken[2:].upper()):
        with pytest.raises(InvalidInput, match="checksum"):
            Secp256k1PublicKey(broken)
    with pytest.raises(InvalidInput, match="not an Ethereum address"):
        Secp256k1PublicKey("0x1234")


@pytest.mark.parametrize("signer", [Secp256k1Signer.generate(), P256Signer.generate()])
def test_public_key_serialization_round_trip(signer: Secp256k1Signer | P256Signer) -> None:
    public = signer.public_key
    assert public_key_from_dict(public.to_dict()) == public
    assert load_public_key(public.to_pem()) == public
    tampered = dict(public.to_dict(), keyid="0" * 64)
    with pytest.raises(InvalidInput, match="does not match"):
        public_key_from_dict(tampered)


def test_load_public_key_rejects_other_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed448

    pem = (
        ed448.Ed448PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInput, match="Ed25519 public keys are supported"):
        load_public_key(pem)
    with pytest.raises(InvalidInput):
        load_public_key("garbage")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(InvalidInput, match="P-256"):
        P256PublicKey(p384)


_SECP = Secp256k1Signer.generate()
_P256 = P256Signer.generate()


@settings(max_examples=examples(40))
@given(message=st.binary(max_size=300), which=st.sampled_from([_SECP, _P256]))
def test_sign_verify_any_message(message: bytes, which: Secp256k1Signer | P256Signer) -> None:
    sig = which.sign(message)
    which.public_key.verify(message, sig)
    with pytest.raises(SignatureInvalid):
        which.public_key.verify(message + b"\x00", sig)


@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw: bytes) -> None:
    from eth_utils.address import to_checksum_address

    from ailedger.identity._signers import _checksum

    assert _checksum(raw) == to_checksum_address(raw)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["lower", "upper", "checksum"]))
def test_checksum_address_agrees_with_eth_utils(raw: bytes, case: str) -> None:
    from eth_utils.address import to_checksum_address

    expected = to_checksum_address(raw)
    text = {"lower": "0x" + raw.hex(), "upper": "0x" + raw.hex().upper(), "checksum": expected}
    assert checksum_address(text[case]) == expected


@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_refuses_a_wrong_mixed_case(raw: bytes) -> None:
    from eth_utils.address import to_checksum_address

    good = to_checksum_address(raw)
    letters = [i for i, c in enumerate(good) if i > 1 and c.isalpha()]
    assume(len(letters) >= 2 and good[2:] not in (good[2:].lower(), good[2:].upper()))
    i = letters[0]
    bad = good[:i] + good[i].swapcase() + good[i + 1 :]
    assume(bad[2:] not in (bad[2:].lower(), bad[2:].upper()))
    with pytest.raises(InvalidInput, match="EIP-55"):
        checksum_address(bad)


@pytest.mark.parametrize(
    "text", ["", "0x", "0x" + "g" * 40, "ab" * 20, "0x" + "a" * 39, "0x" + "a" * 41]
)
def test_checksum_address_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(InvalidInput, match="not an Ethereum address"):
        checksum_address(text)


def _keystore(kdf: str) -> dict[str, Any]:
    secret = bytes(range(1, 33))
    return Account.encrypt(secret, PASSWORD, kdf=kdf, iterations=2 if kdf == "pbkdf2" else 1024)


@pytest.mark.parametrize(
    ("kdf", "change", "message"),
    [
        ("pbkdf2", {"prf": "hmac-md5"}, "prf 'hmac-md5' is not hmac-sha256"),
        ("pbkdf2", {"c": 0}, r"c=0 is not an integer"),
        ("pbkdf2", {"c": -5}, r"c=-5 is not an integer"),
        ("pbkdf2", {"c": 10**9}, r"c=1000000000 is not an integer"),
        ("pbkdf2", {"c": "1000"}, r"c='1000' is not an integer"),
        ("pbkdf2", {"c": True}, r"c=True is not an integer"),
        ("scrypt", {"r": 2**20 + 1}, r"r=1048577 is not an integer"),
        ("scrypt", {"n": 2**20, "r": 8}, r"needs 1024 MiB"),
        ("scrypt", {"n": 1000}, "not a power of two"),
        ("scrypt", {"p": 0}, r"p=0 is not an integer"),
        ("scrypt", {"dklen": 64}, r"dklen=64"),
        ("scrypt", {"salt": 7}, "salt is missing or malformed"),
    ],
)
def test_hostile_kdf_parameters_are_refused_before_any_work(
    kdf: str, change: dict[str, Any], message: str
) -> None:
    """Issue 11 item 5: parameters that made eth-keyfile assert (exit 70) or run for minutes
    are one clear KeyAccessError (exit 5) raised before the KDF runs."""
    doc = _keystore(kdf)
    doc["crypto"]["kdfparams"].update(change)
    with pytest.raises(KeyAccessError, match=message) as info:
        decrypt_keystore_v3(json.dumps(doc).encode(), PASSWORD, source="k.json")
    assert info.value.exit_code == 5


def test_a_keystore_with_another_cipher_is_refused() -> None:
    doc = _keystore("scrypt")
    doc["crypto"]["cipher"] = "aes-256-gcm"
    with pytest.raises(KeyAccessError, match="cipher 'aes-256-gcm'"):
        decrypt_keystore_v3(json.dumps(doc).encode(), PASSWORD, source="k.json")


@pytest.mark.parametrize("kdf", ["scrypt", "pbkdf2"])
def test_standard_keystores_of_both_kdfs_still_open(kdf: str) -> None:
    doc = _keystore(kdf)
    assert decrypt_keystore_v3(json.dumps(doc).encode(), PASSWORD, source="k") == bytes(
        range(1, 33)
    )
