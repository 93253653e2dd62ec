"""SIGKILL the service while clients submit: every acknowledged entry survives, the log
verifies (entries, tree, every checkpoint's signature and consistency with the one before)."""

from __future__ import annotations

import http.client
import itertools
import signal
import threading
import time
from pathlib import Path

from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, post, server_workspace
from ailedger.log import TransparencyLog

CLIENTS = 4
ROUNDS = 3
ACKS_PER_ROUND = 40


def test_acknowledged_entries_survive_sigkill(tmp_path: Path) -> None:
    root = tmp_path / "server"
    server_workspace(root)
    db = root / ".ailedger" / "log.sqlite"
    acked: dict[int, str] = {}
    lock = threading.Lock()
    numbers = itertools.count()

    for round_ in range(ROUNDS):
        service = Service(root, "--allow", ALICE.address).start()
        stop = threading.Event()

        def submit(service: Service = service, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                body = envelope(next(numbers))
                try:
                    status, doc = post(service, body)
                except (OSError, http.client.HTTPException):
                    return  # the server died under us: this one was never acknowledged
                assert status in (200, 201), doc
                with lock:
                    acked[int(doc["index"])] = str(doc["leaf_hash"])

        threads = [threading.Thread(target=submit) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        target = ACKS_PER_ROUND * (round_ + 1)
        for _ in range(60_000):  # a guard against a hang, not a timing assertion
            with lock:
                if len(acked) >= target:
                    break
            time.sleep(0.005)
        service.stop(signal.SIGKILL)  # mid-flight: some requests are in a batch being committed
        stop.set()
        for t in threads:
            t.join()
        assert len(acked) >= target

        with TransparencyLog.open(db, read_only=True) as log:
            for index, leaf in acked.items():
                assert log.get(index).leaf_hash.hex() == leaf
            log.verify(LOG_KEY)

    # the restarted service still serves and extends the same log
    with Service(root, "--allow", ALICE.address) as service:
        status, doc = post(service, envelope(next(numbers)))
        assert status == 201
        assert doc["index"] >= max(acked) + 1
    with TransparencyLog.open(db, read_only=True) as log:
        log.verify(LOG_KEY)
