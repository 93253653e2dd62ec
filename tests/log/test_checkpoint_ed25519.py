"""Ed25519 log and witness keys from workspace keys (issue 12, item 6): C2SP signed notes with
type 0x01, cosignature/v1 with type 0x04, round trips, wrong keys, tampering, and key types
that cannot sign notes failing closed."""

from __future__ import annotations

import base64
import string
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import InvalidInput, SignatureInvalid
from ailedger.identity.keys import Ed25519Signer, P256Signer, Secp256k1Signer
from ailedger.log.checkpoint import (
    COSIGNATURE_V1_TYPE,
    ED25519_TYPE,
    Checkpoint,
    Ed25519Cosigner,
    Ed25519NoteKey,
    Secp256k1Cosigner,
    Secp256k1NoteKey,
    SignedNote,
    cosigner_for,
    key_id,
    note_key_for,
    parse_vkey,
    vkey,
)

SIGNER = Ed25519Signer(Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
WITNESS = Ed25519Signer(Ed25519PrivateKey.from_private_bytes(b"\x08" * 32))

_NAME = st.text(string.ascii_letters + string.digits + "./-_", min_size=1, max_size=40)
_EXT = st.text(string.ascii_letters + string.digits + " :=/", min_size=1, max_size=30)


@settings(max_examples=examples(50))
@given(_NAME, st.integers(0, 2**63 - 1), st.binary(min_size=32, max_size=32), st.lists(_EXT))
def test_ed25519_checkpoint_round_trip(name: str, size: int, root: bytes, ext: list[str]) -> None:
    key = note_key_for(name, SIGNER)
    assert isinstance(key, Ed25519NoteKey)
    cp = Checkpoint(name, size, root, tuple(ext))
    text = SignedNote.sign(cp.body(), [key]).format()
    parsed = SignedNote.parse(text)
    assert parsed.format() == text
    assert Checkpoint.parse(parsed.text) == cp
    verifier = parse_vkey(vkey(key))
    assert verifier == Ed25519NoteKey(name, SIGNER.public_key.raw)
    assert verifier.key_id == key_id(name, ED25519_TYPE, SIGNER.public_key.raw)
    assert parsed.verify_one(verifier).signature == SIGNER.sign(cp.body().encode())
    # another key under the same name is not this log's key
    stranger = Ed25519NoteKey.generate(name)
    with pytest.raises(SignatureInvalid) as missing:
        parsed.verify_one(stranger)
    assert missing.value.code == "checkpoint-signature-missing"


@settings(max_examples=examples(50))
@given(st.integers(1, 2**40), st.binary(min_size=32, max_size=32), st.data())
def test_a_tampered_ed25519_checkpoint_fails(size: int, root: bytes, data: st.DataObject) -> None:
    key = note_key_for("example.com/log", SIGNER)
    body = Checkpoint("example.com/log", size, root).body()
    sig = SignedNote.sign(body, [key]).signatures[0]
    position = data.draw(st.integers(0, len(body) - 2))  # any byte but the final newline
    char = data.draw(st.sampled_from(string.ascii_letters + string.digits))
    tampered = body[:position] + char + body[position + 1 :]
    if tampered == body:
        return
    note = SignedNote(tampered, (sig,))
    with pytest.raises(SignatureInvalid) as invalid:
        note.verify_one(key)
    assert invalid.value.code == "checkpoint-signature-invalid"
    flipped = bytearray(sig.signature)
    flipped[data.draw(st.integers(0, 63))] ^= 1 << data.draw(st.integers(0, 7))
    forged = SignedNote(body, (type(sig)(sig.name, sig.key_id, bytes(flipped)),))
    with pytest.raises(SignatureInvalid):
        forged.verify_one(key)


def test_ed25519_cosignature_is_c2sp_type_4() -> None:
    log_key = note_key_for("example.com/log", SIGNER)
    witness = cosigner_for("witness.example/w", WITNESS, clock=lambda: 1700000000)
    assert isinstance(witness, Ed25519Cosigner)
    body = Checkpoint("example.com/log", 3, b"\x01" * 32).body()
    note = SignedNote.sign(body, [log_key, witness])
    sig = note.verify_one(parse_vkey(vkey(witness)))
    assert base64.b64decode(vkey(witness).split("+", 2)[2])[:1] == COSIGNATURE_V1_TYPE
    assert struct.unpack(">Q", sig.signature[:8]) == (1700000000,)
    message = b"cosignature/v1\ntime 1700000000\n" + body.encode()
    WITNESS.public_key.verify(message, sig.signature[8:])
    # the log key's signature is not a cosignature, nor the reverse
    assert not witness.verify(body.encode(), note.signatures[0].signature)
    assert not log_key.verify(body.encode(), sig.signature)


def test_verifiers_from_public_keys_match_the_signers() -> None:
    secp = Secp256k1Signer.generate()
    assert note_key_for("o", SIGNER.public_key) == note_key_for("o", SIGNER)
    assert note_key_for("o", secp.public_key) == Secp256k1NoteKey("o", secp.address)
    assert cosigner_for("w", WITNESS.public_key) == Ed25519Cosigner("w", WITNESS.public_key.raw)
    assert cosigner_for("w", secp) == Secp256k1Cosigner("w", secp.address)


def test_key_types_that_cannot_sign_notes_fail_closed() -> None:
    p256 = P256Signer.generate()
    for key in (p256, p256.public_key):
        with pytest.raises(InvalidInput, match="p256 key cannot be a log key"):
            note_key_for("o", key)
        with pytest.raises(InvalidInput, match="p256 key cannot be a witness key"):
            cosigner_for("w", key)
    unknown = base64.b64encode(b"\x02" + SIGNER.public_key.raw).decode()
    hash_id = key_id("o", b"\x02", SIGNER.public_key.raw).hex()
    with pytest.raises(InvalidInput, match="unsupported signature type"):
        parse_vkey(f"o+{hash_id}+{unknown}")
