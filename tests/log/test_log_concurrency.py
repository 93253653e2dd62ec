"""Two processes appending to one log at once lose nothing and never fork the log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _log_util import ALICE, BOB, LOG_SIGNER, ORIGIN, envelope
from ailedger.attest.dsse import Envelope
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey

PER_WRITER = 150

_WRITER = """
import json, sys
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.identity.keys import Secp256k1Signer

path, pool_file, go_file = sys.argv[1:4]
pool = json.load(open(pool_file))
log = TransparencyLog.open(path)
key = Secp256k1NoteKey.from_signer(log.origin, Secp256k1Signer(bytes.fromhex("33" * 32)))
open(pool_file + ".ready", "w").close()
while not __import__("os").path.exists(go_file):
    __import__("time").sleep(0.001)
acked = []
for start in range(0, len(pool), 3):
    batch = [e.encode() for e in pool[start : start + 3]]
    if start % 2:
        acked += [log.append(e) for e in batch]
    else:
        acked += log.append_many(batch)
    if start % 30 == 0:
        log.checkpoint(key)
    if start == 0:  # after its first batch, wait until the other writer has appended too
        while log.size() < 6:
            __import__("time").sleep(0.001)
print(json.dumps(acked))
"""


@pytest.mark.slow
def test_two_processes_append_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    TransparencyLog.open(path, ORIGIN).close()
    go = tmp_path / "go"
    pools = []
    procs = []
    for w, signer in enumerate((ALICE, BOB)):
        pool = [envelope(w * 10_000 + i, (signer,)).decode() for i in range(PER_WRITER)]
        pools.append(pool)
        pool_file = tmp_path / f"pool{w}.json"
        pool_file.write_text(json.dumps(pool))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(path), str(pool_file), str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all(Path(f"{tmp_path}/pool{w}.json.ready").exists() for w in range(2)):
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)
    go.touch()  # both writers are loaded and waiting: start them together
    acked = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        acked.append(json.loads(out))

    with TransparencyLog.open(path) as log:
        assert log.size() == 2 * PER_WRITER
        all_indexes = sorted(acked[0] + acked[1])
        assert all_indexes == list(range(2 * PER_WRITER))  # no index given twice, none lost
        for pool, indexes in zip(pools, acked, strict=True):
            for raw, index in zip(pool, indexes, strict=True):
                assert log.get(index).envelope == Envelope.from_json(raw).canonical_json()
        # The writers really ran at once, however the machine schedules them: each waits
        # after its first batch until the other has appended, so the first to start cannot
        # hold one contiguous block of indexes.
        assert any(indexes != list(range(indexes[0], indexes[0] + PER_WRITER)) for indexes in acked)
        report = log.verify(Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER))
        assert report.checkpoints >= 2  # checkpoints by both writers, all mutually consistent
