"""SIGKILL ``ailedger serve`` (two witnesses, threshold 2) at seeded-random moments under load,
100 times, on one workspace; the witnesses run throughout and are never restarted.

After every kill and restart, and at the end:

* every acknowledged entry (index and leaf hash) is in the log;
* the log verifies: every stored checkpoint's signature and cosignatures, consistency between
  them, the tree head, and the entries added since the last check (all of them at the end);
* each witness's state holds a checkpoint of this log's tree (the service never showed a
  witness a tree it lost in the crash) and never rolls back, and the restarted service
  publishes again, so the witnesses, unrestarted, accept it;
* every checkpoint clients saw at ``GET /checkpoint`` is signed by the log and cosigned by
  both witnesses, never smaller than one seen before it, and consistent with every earlier
  one (consistency proofs from the final log);
* no witness cosigned two roots for one size (cosignatures read from every checkpoint the
  service stored or published, and from the witnesses' state files, polled during the load
  and read after each kill).

Threshold 2 of 2, not 1 of 2: every published checkpoint must then carry both cosignatures,
so a witness that refused the restarted service would stall publication, which the test
sees; with 1 of 2 the other witness would hide it.

The kill moment is drawn from a seeded RNG (a number of acknowledgements, then a short
delay): how much work is in flight at the kill varies with the machine's speed, but every
assertion holds for any outcome, and the loops that wait are guards against a hang, never
timing checks.
"""

from __future__ import annotations

import http.client
import itertools
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, post, server_workspace
from _witness import WitnessProcess, witness_workspace
from ailedger.errors import AiledgerError
from ailedger.log import AnyNoteKey, Checkpoint, SignedNote, TransparencyLog, parse_vkey
from ailedger.merkle import verify_consistency

ROUNDS = 100
CLIENTS = 3
#: Acknowledgements to wait for in a round before the kill (drawn in 0..MAX_ACKS; 0: a kill
#: while the restarted service is still talking to the witnesses).
MAX_ACKS = 20
#: Then a delay before the kill, drawn in 0..MAX_DELAY_S (load keeps running meanwhile).
MAX_DELAY_S = 0.03
SEED = 13
GUARD = 12000  # polls of 10 ms at most: a guard against a hang, never a timing assertion


@dataclass
class Record:
    """What clients and witnesses were shown, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: index -> leaf hash (hex) of every acknowledged submission.
    acked: dict[int, str] = field(default_factory=dict)
    #: every distinct checkpoint note served at GET /checkpoint, in the order seen.
    published: list[SignedNote] = field(default_factory=list)
    #: (witness vkey, size) -> roots it cosigned.
    cosigned: dict[tuple[str, int], set[bytes]] = field(default_factory=dict)
    #: witness URL -> the size of its state after each kill.
    witness_sizes: dict[str, list[int]] = field(default_factory=dict)
    #: what failed in a client thread (raised again by the test).
    errors: list[BaseException] = field(default_factory=list)

    def thread(self, target: Callable[..., None], *args: object) -> threading.Thread:
        """A client thread whose failure is recorded (pytest would only warn about it)."""

        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:
                with self.lock:
                    self.errors.append(exc)

        return threading.Thread(target=run)

    def cosignatures(self, note: SignedNote, witnesses: dict[str, AnyNoteKey]) -> int:
        """Record every witness cosignature on ``note`` that verifies; how many did."""
        cp = Checkpoint.parse(note.text)
        n = 0
        for text, key in witnesses.items():
            try:
                note.verify_one(key)
            except AiledgerError:
                continue
            n += 1
            with self.lock:
                self.cosigned.setdefault((text, cp.size), set()).add(cp.root)
        return n


def _submit(service: Service, record: Record, numbers: itertools.count[int]) -> None:
    while True:
        try:
            status, doc = post(service, envelope(next(numbers)))
        except (OSError, http.client.HTTPException):
            return  # the service died under us: this one was never acknowledged
        assert status == 201, doc
        with record.lock:
            record.acked[int(doc["index"])] = str(doc["leaf_hash"])


def _read_states(
    witnesses: list[WitnessProcess],
    keys: dict[str, AnyNoteKey],
    record: Record,
    seen: dict[Path, bytes],
) -> None:
    """Record the cosignatures in the witnesses' state files that changed since ``seen``."""
    for w in witnesses:
        for path in (w.root / "state").glob("*.checkpoint"):
            data = path.read_bytes()  # replaced atomically: the old state or the new one
            if seen.get(path) != data:
                seen[path] = data
                assert record.cosignatures(SignedNote.parse(data), keys) >= 1  # its own


def _poll(
    service: Service,
    record: Record,
    witnesses: list[WitnessProcess],
    keys: dict[str, AnyNoteKey],
) -> None:
    """Record every checkpoint served and every state the witnesses store, until the kill."""
    last = b""
    seen: dict[Path, bytes] = {}
    while True:
        _read_states(witnesses, keys, record, seen)
        try:
            status, _, body = service.request("GET", "/checkpoint")
        except (OSError, http.client.HTTPException):
            return
        if status == 200 and body != last:
            last = body
            with record.lock:
                record.published.append(SignedNote.parse(body.decode()))
        else:
            assert status in (200, 503), body  # 503: nothing cosigned yet (first round)
        time.sleep(0.002)


def _wait_published(service: Service, record: Record, size: int) -> None:
    """Poll until a checkpoint covering ``size`` entries is published (recorded)."""
    for _ in range(GUARD):
        status, _, body = service.request("GET", "/checkpoint")
        if status == 200:
            note = SignedNote.parse(body.decode())
            with record.lock:
                if not record.published or record.published[-1].format() != note.format():
                    record.published.append(note)
            if Checkpoint.parse(note.text).size >= size:
                return
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of size {size} was published after the restart")


def _check_log(
    db: Path,
    record: Record,
    witnesses: list[WitnessProcess],
    keys: dict[str, AnyNoteKey],
    verified: int,
) -> int:
    """The checks after a kill (the service down); the log's size."""
    with TransparencyLog.open(db, read_only=True) as log:
        size = log.size()
        for index, leaf in record.acked.items():
            assert log.get(index).leaf_hash.hex() == leaf, f"acknowledged entry {index} lost"
        # entries from `verified` on; the tree head and every checkpoint in full
        log.verify(LOG_KEY, list(keys.values()), start=verified)
        for note in log.checkpoints():
            record.cosignatures(note, keys)
        for w in witnesses:
            state = list((w.root / "state").glob("*.checkpoint"))
            if not state:
                continue  # nothing cosigned yet
            (path,) = state
            note = SignedNote.parse(path.read_bytes())
            cp = Checkpoint.parse(note.text)
            assert cp.size <= size, f"witness {w.url} cosigned size {cp.size} > log {size}"
            assert log.root(cp.size) == cp.root, f"witness {w.url} holds a root the log lost"
            assert record.cosignatures(note, keys) >= 1  # its own cosignature
            sizes = record.witness_sizes.setdefault(w.url, [])
            assert not sizes or sizes[-1] <= cp.size, f"witness {w.url} rolled back"
            sizes.append(cp.size)
    return size


@pytest.mark.slow
def test_acknowledged_entries_and_witnesses_survive_100_sigkills(tmp_path: Path) -> None:
    root = tmp_path / "server"
    server_workspace(root)
    db = root / ".ailedger" / "log.sqlite"
    witnesses = []
    for name, keytype in (("w1", "ed25519"), ("w2", "secp256k1")):
        witness_workspace(tmp_path / name, keytype)  # type: ignore[arg-type]
        witnesses.append(WitnessProcess(tmp_path / name, [LOG_KEY]))
    args = ["--allow", ALICE.address, "--no-chain-rpc", "--checkpoint-interval-ms", "5"]
    args += ["--witness-threshold", "2"]
    rng = random.Random(SEED)
    record = Record()
    numbers = itertools.count()
    verified = 0
    try:
        for w in witnesses:
            w.start()
            args += ["--witness", w.spec]
        keys = {w.vkey: parse_vkey(w.vkey) for w in witnesses}
        for _ in range(ROUNDS):
            service = Service(root, *args).start()
            # the unrestarted witnesses accept the restarted service: it publishes again
            _wait_published(service, record, verified)
            threads = [record.thread(_submit, service, record, numbers) for _ in range(CLIENTS)]
            threads.append(record.thread(_poll, service, record, witnesses, keys))
            with record.lock:
                target = len(record.acked) + rng.randint(0, MAX_ACKS)
            delay = rng.uniform(0, MAX_DELAY_S)
            for t in threads:
                t.start()
            for _ in range(GUARD * 10):  # a guard against a hang, not a timing assertion
                with record.lock:
                    if len(record.acked) >= target or record.errors:
                        break
                time.sleep(0.001)
            time.sleep(delay)
            service.stop(signal.SIGKILL)
            for t in threads:
                t.join()
            if record.errors:
                raise record.errors[0]
            assert len(record.acked) >= target
            verified = _check_log(db, record, witnesses, keys, verified)

        # the last restart: everything acknowledged gets published, then a clean stop
        with Service(root, *args) as service:
            _wait_published(service, record, verified)
        with TransparencyLog.open(db, read_only=True) as log:
            final_size = log.size()
            report = log.verify(LOG_KEY, list(keys.values()))
            assert report.cosignatures > 0
            for note in log.checkpoints():
                record.cosignatures(note, keys)
            final_root = log.root(final_size)
            previous: Checkpoint | None = None
            for note in record.published:
                note.verify_one(LOG_KEY)
                assert record.cosignatures(note, keys) == 2, "published with < 2 cosignatures"
                cp = Checkpoint.parse(note.text)
                if previous is not None:
                    assert cp.size >= previous.size, "a published checkpoint rolled back"
                    proof = log.consistency_proof(previous.size, cp.size).hashes
                    verify_consistency(previous.size, cp.size, previous.root, cp.root, proof)
                # consistent with the final tree, hence with every earlier published one
                proof = log.consistency_proof(cp.size, final_size).hashes
                verify_consistency(cp.size, final_size, cp.root, final_root, proof)
                previous = cp
        assert previous is not None
        assert previous.size == final_size
        for (text, size), roots in record.cosigned.items():
            assert len(roots) == 1, f"witness {text} cosigned two roots of size {size}"
        assert max(record.acked) < final_size
    finally:
        for w in witnesses:
            w.stop()
