"""The C2SP tlog-witness: every check of add-checkpoint, with the spec's status codes, in
process (:class:`Witness`) and as a real ``ailedger witness serve`` process."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from _log_util import envelope
from _witness import WitnessProcess, add_checkpoint, request_from, sign, witness_workspace
from ailedger.errors import ConflictError
from ailedger.identity.keys import Ed25519Signer, Secp256k1Signer
from ailedger.log import (
    Checkpoint,
    Ed25519Cosigner,
    Ed25519NoteKey,
    Secp256k1Cosigner,
    Secp256k1NoteKey,
    SignedNote,
    TransparencyLog,
    parse_vkey,
)
from ailedger.service.witness import Refusal, Witness, format_add_checkpoint

ORIGIN = "example.com/witnessed"


def _ed(seed: str) -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed * 32)))


LOG_KEY = Ed25519NoteKey.from_signer(ORIGIN, _ed("44"))
OTHER_KEY = Ed25519NoteKey.from_signer(ORIGIN, _ed("55"))
COSIGNER = Ed25519Cosigner.from_signer("witness.example/w1", _ed("66"))


def _log(path: Path, first: int, count: int) -> TransparencyLog:
    log = TransparencyLog.open(path, ORIGIN)
    log.append_many([envelope(i) for i in range(first, first + count)])
    return log


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[Witness]:
    with Witness([COSIGNER], {ORIGIN: [LOG_KEY]}, tmp_path / "state") as w:
        yield w


def _refused(witness: Witness, body: bytes) -> Refusal:
    with pytest.raises(Refusal) as info:
        witness.add_checkpoint(body)
    return info.value


def _cosigned(note: SignedNote, lines: str) -> SignedNote:
    return SignedNote.parse(note.text + "\n" + lines)


def test_cosigns_a_first_checkpoint_then_a_consistent_one(witness: Witness, tmp_path: Path) -> None:
    with _log(tmp_path / "log.sqlite", 0, 5) as log:
        body, note = request_from(log, 0, LOG_KEY)
        lines = witness.add_checkpoint(body)
        assert lines.startswith("\u2014 witness.example/w1 ")
        assert lines.count("\n") == 1
        _cosigned(note, lines).verify_one(COSIGNER)
        log.append_many([envelope(i) for i in range(5, 12)])
        body, note = request_from(log, 5, LOG_KEY)
        _cosigned(note, witness.add_checkpoint(body)).verify_one(COSIGNER)
        latest = witness.latest(ORIGIN)
        assert latest is not None
        assert latest.size == 12
        # the same checkpoint again (a log retrying after a lost answer): cosigned again
        again = format_add_checkpoint(12, (), note)
        _cosigned(note, witness.add_checkpoint(again)).verify_one(COSIGNER)


def test_unknown_origin_is_404_and_untrusted_signature_is_403(
    witness: Witness, tmp_path: Path
) -> None:
    with TransparencyLog.open(tmp_path / "other.sqlite", "example.com/other") as other:
        other.append_many([envelope(1)])
        key = Ed25519NoteKey.generate("example.com/other")
        assert _refused(witness, request_from(other, 0, key)[0]).status == 404
    with _log(tmp_path / "log.sqlite", 0, 3) as log:
        assert _refused(witness, request_from(log, 0, OTHER_KEY)[0]).status == 403
        # a trusted key's signature over other text (tampered size) is 403 too
        note = sign(log, LOG_KEY)
        forged = SignedNote(note.text.replace("\n3\n", "\n4\n"), note.signatures)
        assert _refused(witness, format_add_checkpoint(0, (), forged)).status == 403
    assert witness.latest(ORIGIN) is None


def test_stale_old_size_is_409_with_the_latest_size(witness: Witness, tmp_path: Path) -> None:
    with _log(tmp_path / "log.sqlite", 0, 4) as log:
        witness.add_checkpoint(request_from(log, 0, LOG_KEY)[0])
        log.append_many([envelope(9)])
        body, _ = request_from(log, 0, LOG_KEY)  # the log does not know the witness's size
        r = _refused(witness, body)
        assert (r.status, r.size) == (409, 4)
        body, _ = request_from(log, 2, LOG_KEY)
        assert _refused(witness, body).size == 4
        witness.add_checkpoint(request_from(log, 4, LOG_KEY)[0])


def test_rollback_is_refused(witness: Witness, tmp_path: Path) -> None:
    with _log(tmp_path / "log.sqlite", 0, 6) as log:
        small = sign(log, LOG_KEY, 3)
        witness.add_checkpoint(request_from(log, 0, LOG_KEY)[0])
        # a checkpoint of an older, smaller tree: old size above its size is 400 ...
        proof = log.consistency_proof(3, 6).hashes
        assert _refused(witness, format_add_checkpoint(6, proof, small)).status == 400
        # ... and from the sizes it would need, 409
        assert _refused(witness, format_add_checkpoint(0, (), small)).size == 6
        assert _refused(witness, format_add_checkpoint(3, (), small)).size == 6
    latest = witness.latest(ORIGIN)
    assert latest is not None
    assert latest.size == 6


def test_fork_is_refused(witness: Witness, tmp_path: Path) -> None:
    """A log that shows the witness two trees sharing a size, or a tree that does not extend
    the one the witness saw: 409 at equal sizes, 422 for the consistency proof."""
    with _log(tmp_path / "a.sqlite", 0, 5) as honest, _log(tmp_path / "b.sqlite", 100, 5) as fork:
        witness.add_checkpoint(request_from(honest, 0, LOG_KEY)[0])
        # same size, another root
        note = sign(fork, LOG_KEY)
        assert _refused(witness, format_add_checkpoint(5, (), note)).status == 409
        # a bigger tree that does not extend the witnessed one, with its own honest-looking proof
        fork.append_many([envelope(200), envelope(201)])
        r = _refused(witness, request_from(fork, 5, LOG_KEY)[0])
        assert r.status == 422
        # a proof with one hash flipped
        honest.append_many([envelope(7), envelope(8)])
        note = sign(honest, LOG_KEY)
        proof = list(honest.consistency_proof(5, 7).hashes)
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
        assert _refused(witness, format_add_checkpoint(5, proof, note)).status == 422
    latest = witness.latest(ORIGIN)
    assert latest is not None
    assert latest.size == 5


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 1\n",
        b"new 0\n\nx\n",
        b"old 01\n\n",
        b"old -1\n\n",
        b"old 0\n\nnot a note",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + base64.b64encode(b"short") + b"\n\n",
        b"old 0\n" + b"\n".join([base64.b64encode(bytes(32))] * 64) + b"\n\n",
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_are_400(witness: Witness, body: bytes) -> None:
    assert _refused(witness, body).status == 400


def test_state_survives_a_restart_and_one_process_holds_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with _log(tmp_path / "log.sqlite", 0, 3) as log:
        with Witness([COSIGNER], {ORIGIN: [LOG_KEY]}, state) as w:
            w.add_checkpoint(request_from(log, 0, LOG_KEY)[0])
            with pytest.raises(ConflictError, match="another witness process"):
                Witness([COSIGNER], {ORIGIN: [LOG_KEY]}, state)
        (state / "leftover.checkpoint.tmp").write_text("a crashed write")
        with Witness([COSIGNER], {ORIGIN: [LOG_KEY]}, state) as w:
            latest = w.latest(ORIGIN)
            assert latest is not None
            assert latest.size == 3
            assert _refused(w, request_from(log, 0, LOG_KEY)[0]).size == 3


def test_secp256k1_witness_and_log_keys(tmp_path: Path) -> None:
    log_key = Secp256k1NoteKey.from_signer(ORIGIN, Secp256k1Signer(bytes.fromhex("77" * 32)))
    cosigner = Secp256k1Cosigner.from_signer("w/k1", Secp256k1Signer(bytes.fromhex("88" * 32)))
    with (
        Witness([cosigner], {ORIGIN: [log_key]}, tmp_path / "state") as w,
        _log(tmp_path / "log.sqlite", 0, 2) as log,
    ):
        body, note = request_from(log, 0, log_key)
        _cosigned(note, w.add_checkpoint(body)).verify_one(cosigner)


# --- the real process ------------------------------------------------------------------------


def test_served_witness_speaks_the_protocol_and_keeps_its_state(tmp_path: Path) -> None:
    root = tmp_path / "witness"
    witness_workspace(root)
    with _log(tmp_path / "log.sqlite", 0, 4) as log:
        with WitnessProcess(root, [LOG_KEY]) as proc:
            key = parse_vkey(proc.vkey)
            assert isinstance(key, Ed25519Cosigner)
            assert proc.ready["name"] == key.name
            note = sign(log, LOG_KEY)
            status, headers, body = add_checkpoint(proc, 0, (), note)
            assert status == 200, body
            assert headers["content-type"].startswith("text/plain")
            _cosigned(note, body.decode()).verify_one(key)
            status, headers, body = add_checkpoint(proc, 0, (), note)
            assert (status, headers["content-type"], body) == (409, "text/x.tlog.size", b"4\n")
            status, headers, body = add_checkpoint(proc, 0, (), sign(log, OTHER_KEY))
            assert status == 403
            assert headers["content-type"] == "application/problem+json"
            assert proc.request("GET", "/add-checkpoint")[0] == 405
            assert proc.request("POST", "/nowhere", b"")[0] == 404
        log.append_many([envelope(10), envelope(11)])
        note = sign(log, LOG_KEY)
        with WitnessProcess(root, [LOG_KEY]) as proc:  # restarted: same state, same key
            assert parse_vkey(proc.vkey) == key
            assert add_checkpoint(proc, 0, (), note)[2] == b"4\n"
            proof = log.consistency_proof(4, 6).hashes
            status, _, body = add_checkpoint(proc, 4, proof, note)
            assert status == 200, body
            cosigned = _cosigned(note, body.decode())
            cosigned.verify_one(key)
            assert Checkpoint.parse(cosigned.text).size == 6
            # a malicious log: another tree of the witnessed size (409, not a size to retry
            # from), and a bigger tree that does not extend it (422)
            with _log(tmp_path / "fork.sqlite", 50, 6) as fork:
                status, headers, _ = add_checkpoint(proc, 6, (), sign(fork, LOG_KEY))
                assert status == 409
                assert headers["content-type"] == "application/problem+json"
                fork.append_many([envelope(60), envelope(61)])
                proof = fork.consistency_proof(6, 8).hashes
                assert add_checkpoint(proc, 6, proof, sign(fork, LOG_KEY))[0] == 422
            assert add_checkpoint(proc, 0, (), note)[2] == b"6\n"
