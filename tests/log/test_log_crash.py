"""Crash safety: a child process streams appends (and now and then a checkpoint) and reports
each acknowledged index; the test SIGKILLs it at random moments, hundreds of times. After
every restart each acknowledged entry is present with its content, the log verifies (the new
entries, the head, node count and every checkpoint; the whole log every 20 restarts), and the
tree is consistent with every earlier tree head seen."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from _log_util import LOG_SIGNER, ORIGIN, envelope
from ailedger.attest.dsse import Envelope
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.merkle import verify_consistency

LOG_KEY = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)
KILLS = 200
POOL = 64


def _child(path: Path, pool: list[bytes], seed: int, ack_fd: int) -> None:
    # Runs in the forked child: append forever, acknowledging "index pool_position" lines.
    rng = random.Random(seed)
    log = TransparencyLog.open(path)
    batches = 0
    while True:
        picks = [rng.randrange(len(pool)) for _ in range(rng.randint(1, 4))]
        indexes = log.append_many([pool[p] for p in picks])
        os.write(
            ack_fd, "".join(f"{i} {p}\n" for i, p in zip(indexes, picks, strict=True)).encode()
        )
        batches += 1
        if batches % 5 == 0:
            log.checkpoint(LOG_KEY)


def _run_and_kill(path: Path, pool: list[bytes], seed: int, delay: float) -> list[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        try:
            _child(path, pool, seed, write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    acks = []
    for line in data.decode().split("\n"):
        parts = line.split()
        if len(parts) == 2:  # a line cut by the kill was not acknowledged
            acks.append((int(parts[0]), int(parts[1])))
    return acks


@pytest.mark.slow
def test_sigkill_during_appends_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    TransparencyLog.open(path, ORIGIN).close()
    pool = [envelope(i) for i in range(POOL)]
    canonical = [Envelope.from_json(e).canonical_json() for e in pool]
    rng = random.Random(20261125)
    acknowledged: dict[int, int] = {}
    heads: list[tuple[int, bytes]] = []
    for kill in range(KILLS):
        acks = _run_and_kill(path, pool, kill, rng.uniform(0.0, 0.045))
        acknowledged.update(acks)
        with TransparencyLog.open(path) as log:
            size = log.size()
            assert size >= len(acknowledged)
            for index, position in acks:
                assert log.get(index).envelope == canonical[position], index
            if kill % 20 == 0 or kill == KILLS - 1:
                for index, position in acknowledged.items():
                    assert log.get(index).envelope == canonical[position], index
                log.verify(LOG_KEY)  # everything, from entry 0
            else:  # the entries since the last restart in full; head, nodes, checkpoints all
                log.verify(LOG_KEY, start=heads[-1][0] if heads else 0)
            root = log.root()
            for old_size, old_root in heads:
                proof = log.consistency_proof(old_size).hashes
                verify_consistency(old_size, size, old_root, root, proof)
            heads.append((size, root))
    assert len(acknowledged) > KILLS  # the children did real work between kills
