"""Crash safety: a child process streams appends (and now and then a checkpoint) and reports
each acknowledged index; the test SIGKILLs it at random moments (most after it acknowledged a
few entries, so every run does real work however fast the machine), hundreds of times. After
every restart each acknowledged entry is present with its content, the log verifies (the new
entries, the head, node count and every checkpoint; the whole log every 20 restarts), and the
tree is consistent with every earlier tree head seen."""

from __future__ import annotations

import os
import random
import select
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


def _run_and_kill(
    path: Path, pool: list[bytes], seed: int, wait_acks: int, delay: float
) -> list[tuple[int, int]]:
    """Fork a child that appends; SIGKILL it once it has acknowledged ``wait_acks`` entries
    (whatever the machine's speed) and ``delay`` seconds more; return every acknowledgement."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        try:
            _child(path, pool, seed, write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    data = b""
    while data.count(b"\n") < wait_acks:
        # a child that died or hangs fails the test instead of hanging it (a generous bound
        # on liveness, not a timing assertion: the appends themselves take milliseconds)
        ready, _, _ = select.select([read_fd], [], [], 120)
        chunk = os.read(read_fd, 65536) if ready else b""
        if not chunk:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            got = data.count(b"\n")
            pytest.fail(f"the child stopped after {got} of {wait_acks} acknowledgements")
        data += chunk
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
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
    awaited = 0
    for kill in range(KILLS):
        # Most kills come after the child has acknowledged 1-4 entries, then at a random moment
        # (mid-append, mid-checkpoint); one in eight may come before its first append.
        wait_acks = 0 if rng.random() < 1 / 8 else rng.randint(1, 4)
        acks = _run_and_kill(path, pool, kill, wait_acks, rng.uniform(0.0, 0.02))
        assert len(acks) >= wait_acks
        awaited += wait_acks
        assert not acknowledged.keys() & dict(acks).keys()  # an index is acknowledged once
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
    # the children did real work between kills, however fast or slow the machine: every run
    # was killed only after its awaited acknowledgements (the plan above awaits > KILLS)
    assert len(acknowledged) >= awaited > KILLS
