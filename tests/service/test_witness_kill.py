"""SIGKILL a witness while a forking log races two checkpoints of one size at it, again and
again: across every crash and restart the witness never cosigns two different checkpoints of
the same size and never rolls back."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from _witness import WitnessProcess, witness_workspace
from ailedger.identity.keys import Ed25519Signer
from ailedger.log import Checkpoint, Ed25519NoteKey, SignedNote, parse_vkey
from ailedger.merkle import consistency_proof_from_leaf_hashes, leaf_hash, root_from_leaf_hashes
from ailedger.service.witness import format_add_checkpoint

ORIGIN = "example.com/forking"
LOG_KEY = Ed25519NoteKey.from_signer(
    ORIGIN, Ed25519Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
)
ROUNDS = 12


def _note(leaves: list[bytes]) -> SignedNote:
    cp = Checkpoint(ORIGIN, len(leaves), root_from_leaf_hashes(leaves))
    return SignedNote.sign(cp.body(), [LOG_KEY])


def _body(old: int, leaves: list[bytes]) -> bytes:
    proof = consistency_proof_from_leaf_hashes(leaves, old) if old else []
    return format_add_checkpoint(old, proof, _note(leaves))


def test_a_killed_witness_never_cosigns_two_checkpoints_of_one_size(tmp_path: Path) -> None:
    root = tmp_path / "witness"
    witness_workspace(root)
    rng = random.Random(13)
    cosigned: dict[int, set[bytes]] = {}
    sizes_seen: list[int] = []
    lock = threading.Lock()
    trunk: list[bytes] = []
    candidates: tuple[list[bytes], ...] = ()
    kept = 0

    def record(proc: WitnessProcess, leaves: list[bytes], answer: bytes) -> None:
        note = _note(leaves)
        SignedNote.parse(note.text + "\n" + answer.decode()).verify_one(parse_vkey(proc.vkey))
        with lock:
            cosigned.setdefault(len(leaves), set()).add(root_from_leaf_hashes(leaves))

    def send(proc: WitnessProcess, old: int, leaves: list[bytes]) -> tuple[int, bytes]:
        status, _, data = proc.request("POST", "/add-checkpoint", _body(old, leaves))
        if status == 200:
            record(proc, leaves, data)
        return status, data

    for round_ in range(ROUNDS):
        proc = WitnessProcess(root, [LOG_KEY]).start()
        # where does the witness stand after the last crash? (a 409 says its size)
        n = len(trunk)
        status, data = send(proc, 0, trunk)
        size = 0 if status == 200 else int(data)
        assert status in (200, 409)
        sizes_seen.append(size)
        if size == n + 2:  # it kept one of the last two candidates: which one?
            a, b = candidates
            kept += 1
            if send(proc, n + 2, a)[0] == 200:
                trunk = a
            else:
                assert send(proc, n + 2, b)[0] == 200
                trunk = b
        else:
            assert size == n, (size, n)
        # two forks of the trunk with the same size, raced, and a SIGKILL at a random moment
        n = len(trunk)
        candidates = tuple(
            trunk + [leaf_hash(f"{round_}/{side}/{i}".encode()) for i in range(2)] for side in "ab"
        )

        def racer(leaves: list[bytes], proc: WitnessProcess = proc, n: int = n) -> None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                send(proc, n, leaves)  # killed under us: no answer, no cosignature

        threads = [threading.Thread(target=racer, args=(c,)) for c in candidates]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0, 0.004))
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        for t in threads:
            t.join()
        proc.stop(signal.SIGKILL)

    for size, roots in cosigned.items():
        assert len(roots) == 1, f"two checkpoints of size {size} were cosigned"
    assert sizes_seen == sorted(sizes_seen), "the witness rolled back"
    assert kept > 0, "no round got a checkpoint through: the test proved nothing"
