"""Remote reads that require witness cosignatures: with ``--witness-key`` / ``[log]
witnesses`` and a threshold K, the mirror believes a service's checkpoint only with K valid
cosignatures by those witnesses. Against a real ``serve --witness`` with a real witness
process; a proxy that strips the cosignatures (a log hiding its witnesses) is refused, and
so is a checkpoint that a witness the client does not name cosigned."""

from __future__ import annotations

import http.server
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli import PASSWORD, fails, ok
from _log_util import ALICE, LOG_SIGNER, envelope
from _service import LOG_KEY, ORIGIN, Service, post, server_workspace
from _witness import WitnessProcess, witness_workspace
from _workflow_util import NewWorkspace
from ailedger.log import Checkpoint, Ed25519Cosigner, SignedNote, vkey


@pytest.fixture
def witnessed(tmp_path: Path) -> Iterator[tuple[Service, WitnessProcess]]:
    server_workspace(tmp_path / "server")
    witness_workspace(tmp_path / "w1")
    with WitnessProcess(tmp_path / "w1", [LOG_KEY]) as witness:
        args = ["--allow", ALICE.address, "--checkpoint-interval-ms", "20"]
        args += ["--witness", witness.spec, "--witness-threshold", "1"]
        with Service(tmp_path / "server", *args) as service:
            for i in range(3):
                assert post(service, envelope(i))[0] == 201
            _wait_published(service, 3)
            yield service, witness


def _wait_published(service: Service, size: int) -> None:
    """Poll /checkpoint (503 until a first cosigned one is published) until it covers
    ``size`` entries: a guard against a hang, never a timing assertion."""
    for _ in range(12000):
        status, _, body = service.request("GET", "/checkpoint")
        if status == 200 and Checkpoint.parse(SignedNote.parse(body.decode()).text).size >= size:
            return
        assert status in (200, 503), body
        time.sleep(0.01)
    raise AssertionError(f"no published checkpoint of size {size}")


class _Stripping(http.server.BaseHTTPRequestHandler):
    """Forwards GETs to ``upstream``; drops every signature but the log's from /checkpoint."""

    upstream = ""

    def do_GET(self) -> None:
        with urllib.request.urlopen(self.upstream + self.path, timeout=60) as response:
            body: bytes = response.read()
            status = response.status
        if self.path == "/checkpoint":
            text, _, sigs = body.decode().partition("\n\n")
            kept = [line for line in sigs.splitlines() if line.startswith(f"— {ORIGIN} ")]
            body = (text + "\n\n" + "".join(f"{line}\n" for line in kept)).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stripping(witnessed: tuple[Service, WitnessProcess]) -> Iterator[str]:
    handler = type("Handler", (_Stripping,), {"upstream": witnessed[0].url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_reads_need_the_named_witnesses_cosignatures(
    new_workspace: NewWorkspace,
    witnessed: tuple[Service, WitnessProcess],
    stripping: str,
) -> None:
    new_workspace("example.com/client")
    service, witness = witnessed
    key = ["--log-key", LOG_SIGNER.address]
    need = ["--witness-key", witness.vkey, "--witness-threshold", "1"]
    stranger = vkey(Ed25519Cosigner.generate("witness/stranger"))

    # a proxy that hides the cosignatures: refused before anything is mirrored
    fails(["log", "show", "--log", stripping, *key, *need], 1,
          "0 of the required 1 valid witness cosignatures")  # fmt: skip
    fails(["trace", "--env", "prod", "--log", stripping, *key, *need], 1, "witness")
    # a witness the client does not name does not count
    fails(["log", "query", "--log", service.url, *key, "--witness-key", stranger,
           "--witness-threshold", "1"], 1, "witness-cosignatures-insufficient")  # fmt: skip
    fails(["log", "show", "--log", service.url, *key, "--witness-threshold", "1"], 3,
          "needs as many witness keys")  # fmt: skip

    # the real service carries the witness's cosignature: believed
    shown = ok(["log", "show", "--log", service.url, *key, *need])
    assert shown["size"] >= 3
    verified = ok(["log", "verify", "--log", service.url, *need])
    assert verified["witnesses"] == [witness.ready["name"]]

    # the same from config.toml, for the configured service; the stripping proxy is
    # another URL, so it takes the options
    ok(["log", "remote", service.url, *key])
    ws_config = Path(".ailedger/config.toml")
    text = ws_config.read_text().replace(
        "[log]", f'[log]\nwitnesses = ["{witness.vkey}"]\nwitness_threshold = 1', 1
    )
    ws_config.write_text(text)
    assert ok(["log", "show"])["size"] >= 3
    ws_config.write_text(text.replace(witness.vkey, stranger))
    fails(["log", "show"], 1, "witness-cosignatures-insufficient")
    fails(["log", "show", "--log", stripping, *key, *need], 1, "witness cosignatures")


def test_a_write_waits_for_a_cosigned_checkpoint_within_the_timeout(
    new_workspace: NewWorkspace, witnessed: tuple[Service, WitnessProcess]
) -> None:
    """A registry write waits for the witnessed publication of its entry; with the witness
    gone, nothing covers it and the wait ends at --timeout (exit 13), the entry logged."""
    _, store = new_workspace("example.com/client")
    store.add("alice", ALICE, PASSWORD)
    service, witness = witnessed
    remote = ["--log", service.url, "--log-key", LOG_SIGNER.address]
    remote += ["--witness-key", witness.vkey, "--witness-threshold", "1"]
    data = Path("data.csv")
    data.write_text("a,b\n1,2\n")
    doc = ok(["dataset", "register", data, "--name", "d", "--version", "1", "--key", "alice",
              "--unsalted", *remote])  # fmt: skip
    assert doc["log_index"] == 3
    witness.stop(signal.SIGKILL)
    other = Path("other.csv")
    other.write_text("a,b\n3,4\n")
    register = ["dataset", "register", other, "--name", "d", "--version", "2", "--key", "alice",
                "--unsalted", *remote]  # fmt: skip
    out = fails([*register, "--timeout", "1"], 13, "logged entry 4 but published no checkpoint")
    assert len(out.strip().splitlines()) <= 2
    assert ok(["log", "show", *remote])["size"] == 4  # the published checkpoint stays put
