"""A malicious or broken log service is refused by the client, with one line and an exit code.

A small test server (standard library, in this process) serves views of logs built here and
signed with the served log's key: a rollback, a fork (another tree, same key), a tampered
entry, a checkpoint by another key, and broken answers (5xx, not JSON, oversized)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from _cli import fails, ok
from _log_util import ALICE, BOB, LOG_SIGNER, envelope
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import Secp256k1NoteKey, TransparencyLog
from ailedger.service.client import MAX_RESPONSE_BYTES

ORIGIN = "example.com/malicious"
KEY = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)
TRUST = ["--log-key", LOG_SIGNER.address]


@dataclass
class View:
    """What the server answers: precomputed from a log (SQLite stays on the test thread)."""

    checkpoint: str
    entries: list[dict[str, Any]]
    consistency: dict[int, dict[str, Any]]
    receipts: dict[int, dict[str, Any]] = field(default_factory=dict)
    raw: tuple[int, bytes] | None = None  # (status, body) for every request


def view(
    path: Path,
    bodies: list[bytes],
    *,
    size: int | None = None,
    signer: Secp256k1Signer = LOG_SIGNER,
) -> View:
    with TransparencyLog.open(path, ORIGIN) as log:
        if log.size() == 0:
            log.append_many(bodies)
        n = log.size() if size is None else size
        note = log.checkpoint(Secp256k1NoteKey.from_signer(ORIGIN, signer), size=n)
        entries = []
        for i in range(n):
            e = log.get(i)
            entries.append(e.to_dict() | {"envelope": json.loads(e.envelope), "time_ms": e.time_ms})
        consistency = {
            old: {"hashes": [h.hex() for h in log.consistency_proof(old, n).hashes]}
            for old in range(n + 1)
        }
        receipts = {i: log.receipt(i, KEY, note).to_dict() for i in range(n)}
    return View(note.format(), entries, consistency, receipts)


class Fake:
    def __init__(self) -> None:
        self.view: View | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                v = fake.view
                assert v is not None
                parts = urlsplit(self.path)
                query = {k: int(vs[0]) for k, vs in parse_qs(parts.query).items()}
                status, body = 200, b""
                if v.raw is not None:
                    status, body = v.raw
                elif parts.path == "/checkpoint":
                    body = v.checkpoint.encode()
                elif parts.path == "/v1/entries":
                    start, limit = query["start"], query["limit"]
                    body = json.dumps({"entries": v.entries[start : start + limit]}).encode()
                elif parts.path == "/v1/proof/consistency":
                    body = json.dumps(v.consistency[query["old"]]).encode()
                elif parts.path.startswith("/v1/receipts/"):
                    body = json.dumps(v.receipts[int(parts.path.rsplit("/", 1)[1])]).encode()
                else:
                    status = 404
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Fake:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def fake(new_workspace: Any) -> Iterator[Fake]:
    new_workspace("example.com/client")
    with Fake() as server:
        yield server


def _bodies(*ns: int) -> list[bytes]:
    return [envelope(n, (ALICE,)) for n in ns]


def test_a_rollback_and_a_fork_are_refused(fake: Fake, tmp_path: Path) -> None:
    honest = tmp_path / "honest.sqlite"
    fake.view = view(honest, _bodies(1, 2, 3))
    synced = ok(["log", "verify", "--log", fake.url, *TRUST])
    assert synced["remote"]["size"] == 3

    fake.view = view(honest, [], size=2)  # an older checkpoint of the same log
    fails(["log", "verify", "--log", fake.url], 1, "[checkpoint-rollback]", "size 2")

    fake.view = view(tmp_path / "fork.sqlite", _bodies(1, 2, 30, 40))  # same key, other tree
    fails(["log", "verify", "--log", fake.url], 1, "[consistency-proof-invalid]", "forked")
    fake.view = view(tmp_path / "fork3.sqlite", _bodies(1, 2, 30))  # same size, other root
    fails(["log", "query", "--log", fake.url], 1, "[consistency-proof-invalid]", "forked")
    fails(["trace", "--env", "prod", "--log", fake.url], 1, "[consistency-proof-invalid]")

    # the honest log, grown: consistent with what was seen, accepted
    grown = view(tmp_path / "grown.sqlite", _bodies(1, 2, 3, 4, 5))
    fake.view = grown
    assert ok(["log", "verify", "--log", fake.url])["remote"]["size"] == 5


def test_a_receipt_is_refused_against_a_forked_service(fake: Fake, tmp_path: Path) -> None:
    honest = view(tmp_path / "honest.sqlite", _bodies(1, 2, 3))
    receipt = tmp_path / "r.json"
    receipt.write_text(json.dumps(honest.receipts[1]))
    fake.view = honest
    assert ok(["verify", "receipt", receipt, *TRUST, "--log", fake.url])["index"] == 1
    fake.view = view(tmp_path / "fork.sqlite", _bodies(1, 20, 30, 40))
    fails(["verify", "receipt", receipt, *TRUST, "--log", fake.url], 1, "forked")
    fake.view = view(tmp_path / "older.sqlite", _bodies(1, 2))
    fails(["verify", "receipt", receipt, *TRUST, "--log", fake.url], 1, "[checkpoint-rollback]")


def test_tampered_entries_and_foreign_checkpoints_are_refused(fake: Fake, tmp_path: Path) -> None:
    tampered = view(tmp_path / "a.sqlite", _bodies(1, 2, 3))
    other = view(tmp_path / "b.sqlite", _bodies(7))
    tampered.entries[1] = other.entries[0] | {"index": 1}  # validly signed, not in the tree
    fake.view = tampered
    fails(["log", "verify", "--log", fake.url, *TRUST], 1, "[remote-entry-mismatch]")
    fails(["log", "show", "--log", fake.url, *TRUST], 1, "[remote-entry-mismatch]")

    fake.view = view(tmp_path / "c.sqlite", _bodies(1), signer=BOB)  # not the log's key
    fails(["log", "verify", "--log", fake.url, *TRUST], 1, "signature")

    bad = view(tmp_path / "d.sqlite", _bodies(1, 2))
    doc = bad.entries[0]["envelope"]
    doc["signatures"][0]["sig"] = other.entries[0]["envelope"]["signatures"][0]["sig"]
    fake.view = bad
    fails(["log", "verify", "--log", fake.url, *TRUST], 1, "signature does not verify")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ((500, b"<html>oops</html>"), "HTTP 500"),
        ((503, b'{"detail": "down for\\nmaintenance"}'), "down for maintenance"),
        ((429, b"slow down"), "HTTP 429"),
        ((200, b"not a checkpoint"), "malformed checkpoint"),
        ((200, b"x" * (MAX_RESPONSE_BYTES + 1)), "more than"),
    ],
)
def test_a_broken_service_is_one_line_exit_13(
    fake: Fake, raw: tuple[int, bytes], needle: str
) -> None:
    fake.view = View("", [], {}, raw=raw)
    out = fails(["log", "verify", "--log", fake.url, *TRUST], 13, needle)
    assert len([line for line in out.splitlines() if line.startswith("error")]) == 1


def test_a_malformed_page_is_exit_13(fake: Fake, tmp_path: Path) -> None:
    broken = view(tmp_path / "a.sqlite", _bodies(1, 2))
    broken.entries[0] = {"index": 0, "envelope": "nope"}
    fake.view = broken
    fails(["log", "verify", "--log", fake.url, *TRUST], 13, "malformed entry 0")


def test_a_service_that_never_answers_times_out_as_unavailable() -> None:
    import socket

    from ailedger.errors import ServiceError
    from ailedger.service.client import LogClient, ServiceUnavailable

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        client = LogClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2)
        with pytest.raises(ServiceUnavailable, match="timed out") as refused:
            client.checkpoint()
    assert isinstance(refused.value, ServiceError)
    assert refused.value.exit_code == 13
