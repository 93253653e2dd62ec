"""C2SP signed notes, checkpoints and cosignatures: Go reference vectors, round trips, parsing
of hostile input, and the stored checkpoints of a log."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from _log_util import LOG_SIGNER, ORIGIN, WITNESS_SIGNER, envelope
from ailedger.errors import (
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    VerificationFailed,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import (
    SECP256K1_COSIGNATURE_TYPE,
    SECP256K1_TYPE,
    Checkpoint,
    Ed25519Cosigner,
    Ed25519NoteKey,
    Secp256k1Cosigner,
    Secp256k1NoteKey,
    SignedNote,
    key_id,
    parse_vkey,
    vkey,
)

# golang.org/x/mod/sumdb/note note_test.go
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
)

LOG_KEY = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)
WITNESS = Secp256k1Cosigner.from_signer(
    "witness.example/w1", WITNESS_SIGNER, clock=lambda: 1700000000
)


def _go_key() -> Ed25519NoteKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[-1])[1:]
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    return Ed25519NoteKey("PeterNeumann", priv.public_key().public_bytes_raw(), priv)


def test_go_reference_note_is_reproduced_byte_for_byte() -> None:
    key = _go_key()
    assert key.key_id.hex() == "c74f20a3"
    assert vkey(key) == GO_VKEY
    note = SignedNote.sign(GO_TEXT, [key])
    assert note.format() == GO_TEXT + "\n" + GO_SIG
    parsed = SignedNote.parse(GO_TEXT + "\n" + GO_SIG)
    verifier = parse_vkey(GO_VKEY)
    assert parsed.verify([verifier])[0].name == "PeterNeumann"
    tampered = SignedNote.parse(GO_TEXT.replace("cryptography", "cryptographY") + "\n" + GO_SIG)
    with pytest.raises(SignatureInvalid):
        tampered.verify([verifier])


def test_secp256k1_note_key_id_and_vkey_round_trip() -> None:
    address = bytes.fromhex(LOG_SIGNER.address[2:])
    assert LOG_KEY.key_id == key_id(ORIGIN, SECP256K1_TYPE, address)
    assert SECP256K1_TYPE.startswith(b"\xff")
    back = parse_vkey(vkey(LOG_KEY))
    assert back == Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address)
    assert parse_vkey(vkey(WITNESS)).key_id == key_id(
        WITNESS.name, SECP256K1_COSIGNATURE_TYPE, bytes.fromhex(WITNESS.address[2:])
    )
    with pytest.raises(InvalidInput, match="does not match"):
        parse_vkey(vkey(LOG_KEY).replace(LOG_KEY.key_id.hex(), "00000000"))


def test_secp256k1_signature_is_domain_separated() -> None:
    cp = Checkpoint(ORIGIN, 3, b"\x01" * 32)
    note = SignedNote.sign(cp.body(), [LOG_KEY])
    sig = note.signatures[0].signature
    assert len(sig) == 65
    # The signature is not a plain personal_sign of the note text.
    assert LOG_SIGNER.sign(cp.body().encode()) != sig
    assert note.verify([Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address)])
    other = Secp256k1NoteKey(ORIGIN, Secp256k1Signer(b"\x55" * 32).address)
    with pytest.raises(SignatureInvalid, match="no signature by a trusted key"):
        note.verify([other])


def test_cosignatures_follow_cosignature_v1() -> None:
    cp = Checkpoint(ORIGIN, 5, b"\x02" * 32, ("extension line",))
    note = SignedNote.sign(cp.body(), [LOG_KEY])
    ed = Ed25519Cosigner.generate("witness.example/ed")
    ed = Ed25519Cosigner(ed.name, ed.public, ed.private, clock=lambda: 1679315147)
    cosigned = note.add([WITNESS, ed])
    by_name = {s.name: s for s in cosigned.signatures}
    ed_sig = by_name["witness.example/ed"].signature
    assert struct.unpack(">Q", ed_sig[:8])[0] == 1679315147
    message = b"cosignature/v1\ntime 1679315147\n" + cp.body().encode()
    assert Ed25519NoteKey(ed.name, ed.public).verify(message, ed_sig[8:])
    assert struct.unpack(">Q", by_name[WITNESS.name].signature[:8])[0] == 1700000000
    round_trip = SignedNote.parse(cosigned.format())
    assert {s.name for s in round_trip.verify([LOG_KEY, WITNESS, ed])} == {
        ORIGIN,
        WITNESS.name,
        ed.name,
    }
    assert Checkpoint.parse(round_trip.text) == cp


@given(
    origin=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1),
    size=st.integers(min_value=0, max_value=2**63),
    root=st.binary(min_size=32, max_size=32),
)
def test_checkpoint_body_round_trips(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert Checkpoint.parse(cp.body()) == cp


@pytest.mark.parametrize(
    "body",
    [
        "origin\n5\n",
        "origin\n05\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n5\nnot base64!\n",
        "origin\n5\nAAAA\n",
        "\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ],
)
def test_bad_checkpoint_bodies(body: str) -> None:
    with pytest.raises(FormatError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    "note",
    [
        "text\n",
        "text\n\n",
        "text\n\n\u2014 name\n",
        "text\n\n- name AAAAAAAA\n",
        "text\n\n\u2014 name !!!!\n",
        "text\n\n\u2014 name AAAA\n",
        "te\x01xt\n\n\u2014 name AAAAAAAA\n",
        "text\n\n\u2014 na+me AAAAAAAA\n",
    ],
)
def test_bad_notes(note: str) -> None:
    with pytest.raises(FormatError):
        SignedNote.parse(note)


@given(st.binary(max_size=200))
def test_note_parser_never_crashes(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        SignedNote.parse(data)


# --- stored checkpoints ----------------------------------------------------------------------


def test_log_checkpoints_are_stored_with_cosignatures(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        with pytest.raises(NotFound):
            log.latest_checkpoint()
        log.append_many([envelope(i) for i in range(5)])
        first = log.checkpoint(LOG_KEY)
        log.append_many([envelope(i) for i in range(5, 9)])
        second = log.checkpoint(LOG_KEY, extensions=["note: second"])
        assert Checkpoint.parse(first.text).size == 5
        cp2 = Checkpoint.parse(second.text)
        assert (cp2.origin, cp2.size, cp2.root) == (ORIGIN, 9, log.root())
        stored = log.add_cosignature(second.add([WITNESS]), WITNESS)
        assert [s.name for s in stored.signatures] == [ORIGIN, WITNESS.name]
        assert log.latest_checkpoint() == stored
        assert len(log.checkpoints()) == 2
        report = log.verify(LOG_KEY, [WITNESS])
        assert (report.checkpoints, report.cosignatures) == (2, 1)


def test_cosignature_of_unknown_checkpoint_or_other_log(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append(envelope(0))
        forged = SignedNote.sign(Checkpoint(ORIGIN, 1, b"\x00" * 32).body(), [LOG_KEY])
        with pytest.raises(NotFound):
            log.add_cosignature(forged.add([WITNESS]), WITNESS)
        other = SignedNote.sign(Checkpoint("other.example", 1, log.root()).body(), [LOG_KEY])
        with pytest.raises(VerificationFailed, match=r"is for log 'other\.example'"):
            log.add_cosignature(other.add([WITNESS]), WITNESS)
        real = log.checkpoint(LOG_KEY)
        with pytest.raises(SignatureInvalid, match="no signature"):
            log.add_cosignature(real, WITNESS)


def test_tampered_stored_checkpoint_is_detected(tmp_path: Path) -> None:

    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append_many([envelope(i) for i in range(4)])
        note = log.checkpoint(LOG_KEY)
        db = sqlite3.connect(log.path)
        db.execute("UPDATE checkpoints SET note = ?", (note.format().replace("\n4\n", "\n3\n"),))
        db.commit()
        db.close()
        with pytest.raises(IntegrityError, match="checkpoint 1"):
            log.verify(LOG_KEY)


@pytest.mark.parametrize("size", [2, 4])
def test_signed_checkpoint_of_a_root_the_tree_never_had_is_detected(
    tmp_path: Path, size: int
) -> None:
    # A checkpoint correctly signed by the log key, stored with matching size and root
    # columns, for a tree that is not this log's (a fork): only the check that the tree had
    # that root at that size catches it (one checkpoint, so no consistency proof runs).
    with TransparencyLog.open(tmp_path / "fork.sqlite", ORIGIN) as fork:
        fork.append_many([envelope(100 + i) for i in range(size)])
        fork_root = fork.root()
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append_many([envelope(i) for i in range(4)])
        log.checkpoint(LOG_KEY)
        log.verify(LOG_KEY)
        assert log.root() != fork_root
        forged = SignedNote.sign(Checkpoint(ORIGIN, size, fork_root).body(), [LOG_KEY])
        with contextlib.closing(sqlite3.connect(log.path)) as db:
            db.execute(
                "UPDATE checkpoints SET size = ?, root = ?, note = ?",
                (size, fork_root, forged.format()),
            )
            db.commit()
        for key in (LOG_KEY, None):
            with pytest.raises(IntegrityError, match=f"size {size}.*root the tree never had"):
                log.verify(key)


def test_checkpoint_with_a_wrong_key_fails_verify(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append(envelope(0))
        log.checkpoint(LOG_KEY)
        impostor = Secp256k1NoteKey(ORIGIN, WITNESS_SIGNER.address)
        with pytest.raises(SignatureInvalid, match="not signed by the log key"):
            log.verify(impostor)


def test_log_key_is_pinned_by_the_first_checkpoint(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append(envelope(0))
        with pytest.raises(InvalidInput, match="named after the origin"):
            log.checkpoint(Secp256k1NoteKey.from_signer("other.example", LOG_SIGNER))
        log.checkpoint(LOG_KEY)
        assert log.log_key() == Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address)
        rogue = Secp256k1NoteKey.from_signer(ORIGIN, Secp256k1Signer(b"\x55" * 32))
        with pytest.raises(ConflictError, match="signed by"):
            log.checkpoint(rogue)
        assert len(log.checkpoints()) == 1
