"""The service under load in CI: 64 concurrent keep-alive clients submit 2,000 distinct signed
envelopes (and resubmit some): every submission is answered 201 once and 200 for a duplicate,
never a 5xx or a dropped connection; every acknowledged entry is in the log at the index the
service gave, no index twice; the log verifies. No timing is asserted (benchmarks/bench_serve.py
measures the rate and the latency)."""

from __future__ import annotations

import http.client
import json
import queue
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, server_workspace
from ailedger.log import TransparencyLog

CLIENTS = 64
SUBMISSIONS = 2000
#: Every 10th envelope is submitted twice at once (by two clients).
RESUBMIT_EVERY = 10


def test_sixty_four_clients_get_every_submission_acknowledged_once(tmp_path: Path) -> None:
    root = tmp_path / "server"
    server_workspace(root)
    bodies = [envelope(n) for n in range(SUBMISSIONS)]
    work: queue.Queue[tuple[int, bytes]] = queue.Queue()
    for n, body in enumerate(bodies):
        work.put((n, body))
        if n % RESUBMIT_EVERY == 0:  # right behind: often in flight in the same batch
            work.put((n, body))
    answers: list[tuple[int, int, dict[str, Any]]] = []
    failures: list[str] = []
    lock = threading.Lock()

    with Service(root, "--allow", ALICE.address) as service:
        parts = urlsplit(service.url)

        def client() -> None:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
            try:
                while True:
                    try:
                        n, body = work.get_nowait()
                    except queue.Empty:
                        return
                    conn.request("POST", "/v1/entries", body, {"content-type": "application/json"})
                    response = conn.getresponse()
                    doc = json.loads(response.read())
                    with lock:
                        answers.append((n, response.status, doc))
            except Exception as exc:  # reported below: a failure, never swallowed
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert failures == []
    assert len(answers) == SUBMISSIONS + SUBMISSIONS // RESUBMIT_EVERY
    statuses = {status for _, status, _ in answers}
    assert statuses <= {200, 201}, [doc for _, s, doc in answers if s not in (200, 201)][:3]
    created = [(n, doc) for n, status, doc in answers if status == 201]
    # each envelope was created exactly once; a resubmission got the same entry back
    assert sorted(n for n, _ in created) == list(range(SUBMISSIONS))
    index_of = {n: int(doc["index"]) for n, doc in created}
    assert len(set(index_of.values())) == SUBMISSIONS
    for n, status, doc in answers:
        if status == 200:
            assert int(doc["index"]) == index_of[n]

    with TransparencyLog.open(root / ".ailedger" / "log.sqlite", read_only=True) as log:
        assert log.size() == SUBMISSIONS
        for _, doc in created:
            entry = log.get(int(doc["index"]))
            assert entry.leaf_hash.hex() == doc["leaf_hash"]
        log.verify(LOG_KEY)
