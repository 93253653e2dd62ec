"""``ailedger serve`` as a real process: submissions, duplicates, refusals, reads, receipts."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from pathlib import Path

import pytest

from _cli import PASSWORD, fails, ok, run, run_process
from _log_util import ALICE, BOB, LOG_SIGNER, envelope
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from _workflow_util import fast_keystore
from ailedger.errors import InvalidInput
from ailedger.log import Checkpoint, TransparencyLog, vkey
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.service._sequencer import Sequencer, SequencerSettings
from ailedger.service.client import LogClient
from ailedger.service.problems import Problem
from ailedger.workspace import Workspace


def test_submit_from_a_client_workspace_then_verify_its_receipt_offline(
    served: Service, tmp_path: Path, monkeypatch: object
) -> None:
    # the client's own workspace and key (ALICE's secret imported as "alice")
    client = tmp_path / "client"
    client.mkdir()
    ws = Workspace.init(client, origin="example.com/client")
    store = fast_keystore(ws)
    store.add("alice", ALICE, PASSWORD)
    signer = store.signer("alice", PASSWORD)
    (client / "e.json").write_bytes(envelope(1, (signer,)))
    home = {"AILEDGER_HOME": str(client)}

    doc = ok(["log", "append", "--log", served.url, client / "e.json"], env=home)
    assert doc["indexes"] == [0]
    assert doc["duplicates"] == [False]
    again = ok(["log", "append", "--log", served.url, client / "e.json"], env=home)
    assert again["indexes"] == [0]
    assert again["duplicates"] == [True]

    wait_for_checkpoint(served, 1)
    receipt = client / "r.json"
    trust = ["--log-key", LOG_SIGNER.address]
    ok(["log", "receipt", "0", "--log", served.url, "--out", receipt, *trust], env=home)
    checked = ok(["verify", "receipt", receipt, "--log-key", LOG_SIGNER.address], env=home)
    assert checked["index"] == 0
    assert checked["log_key_trusted"] is True
    assert served.ready["log_key"] == vkey(LOG_KEY)

    # the same receipt against another log key fails: only the checkpoint signature is trusted
    fails(["verify", "receipt", receipt, "--log-key", BOB.address], 1, "log-key-mismatch", env=home)
    # a tampered receipt fails too
    r = json.loads(receipt.read_text())
    r["proof"] = r["proof"].replace("index 0", "index 1")
    receipt.write_text(json.dumps(r))
    assert (
        run(["verify", "receipt", receipt, "--log-key", LOG_SIGNER.address], env=home).exit_code
        == 1
    )


def test_duplicate_returns_the_existing_entry(served: Service) -> None:
    first = post(served, envelope(7))
    second = post(served, envelope(7))
    assert first[0] == 201
    assert second[0] == 200
    assert first[1]["index"] == second[1]["index"] == 0
    assert first[1]["leaf_hash"] == second[1]["leaf_hash"]
    assert post(served, envelope(8))[1]["index"] == 1


def test_unknown_signer_is_refused_with_403_and_nothing_is_appended(served: Service) -> None:
    status, doc = post(served, envelope(1, (BOB,)))
    assert status == 403
    assert doc["status"] == 403
    assert doc["type"] == "https://ailedger.dev/problems/signer-not-allowed"
    assert BOB.address in str(doc["detail"])
    # co-signed by an allowed and an unknown signer: every signer must be allowed
    assert post(served, envelope(2, (ALICE, BOB)))[0] == 403
    assert post(served, envelope(3))[1]["index"] == 0


def test_a_bad_signature_by_an_allowed_signer_is_422(served: Service) -> None:
    doc = json.loads(envelope(1))
    doc["payload"] = base64.b64encode(b'{"tampered": true}').decode()
    status, problem = post(served, json.dumps(doc).encode())
    assert status == 422
    assert "signature" in str(problem["detail"])


def test_oversized_requests_are_413(served: Service) -> None:
    status, doc = post(served, b" " * (2 << 20))
    assert status == 413
    assert doc["type"] == "https://ailedger.dev/problems/too-large"
    # a validly signed envelope whose canonical form does not fit a tlog-tiles entry bundle
    big = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": "ab" * 32}}],
            "predicateType": "https://ailedger.dev/test/v1",
            "predicate": {"blob": "x" * 60_000},
        }
    ).encode()
    status, doc = post(served, envelope(1, payload=big))
    assert status == 413
    assert "65535" in str(doc["detail"])
    assert post(served, envelope(2))[1]["index"] == 0


def test_reads_and_problem_responses(served: Service) -> None:
    for n in range(3):
        post(served, envelope(n))
    wait_for_checkpoint(served, 3)
    status, _, body = served.request("GET", "/v1/entries/1")
    entry = json.loads(body)
    assert status == 200
    assert entry["index"] == 1
    assert len(entry["inclusion_proof"]) == 2
    status, _, body = served.request("GET", f"/v1/entries?signer={ALICE.address}&limit=2")
    assert status == 200
    assert [e["index"] for e in json.loads(body)["entries"]] == [0, 1]
    status, _, body = served.request("GET", "/v1/proof/consistency?old=1&new=3")
    proof = json.loads(body)
    assert status == 200
    assert proof["old_size"] == 1
    assert proof["new_size"] == 3
    for path, code in [
        ("/v1/entries/99", 404),
        ("/v1/entries/abc", 422),
        ("/v1/receipts/99", 404),
        ("/v1/proof/consistency?old=5&new=2", 400),
        ("/v1/entries?limit=1000", 422),
        ("/tile/0/x000/001", 400),
        ("/tile/0/001", 404),
        ("/nowhere", 404),
    ]:
        status, headers, body = served.request("GET", path)
        assert status == code, (path, body)
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert set(problem) >= {"type", "title", "status", "detail"}
        assert problem["status"] == code
    status, _, body = served.request("GET", "/openapi.json")
    paths = json.loads(body)["paths"]
    assert status == 200
    assert "/v1/entries" in paths
    assert "/checkpoint" in paths


def test_the_server_refuses_to_start_without_an_allow_list(tmp_path: Path) -> None:
    server_workspace(tmp_path / "server")
    result = run_process("--workspace", tmp_path / "server", "serve", "--port", "0")
    assert result.returncode == 6, result.stderr
    assert "no signer is allowed" in result.stderr
    result = run_process(
        "--workspace", tmp_path / "server", "serve", "--port", "0", "--allow", "alice"
    )
    assert result.returncode == 3
    assert "not an Ethereum address" in result.stderr


def test_the_allow_list_from_config_toml(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    text = ws.config_path.read_text() + f'\n[serve]\nallow = ["{ALICE.address}"]\n'
    ws.config_path.write_text(text)
    with Service(tmp_path / "server") as service:
        assert post(service, envelope(1))[0] == 201
        assert post(service, envelope(2, (BOB,)))[0] == 403


def test_entries_acknowledged_are_in_the_log_after_a_clean_stop(tmp_path: Path) -> None:
    server_workspace(tmp_path / "server")
    service = Service(tmp_path / "server", "--allow", ALICE.address).start()
    indexes = [post(service, envelope(n))[1]["index"] for n in range(5)]
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit by the signal)
    assert service.stop() in (0, -signal.SIGTERM)
    with TransparencyLog.open(tmp_path / "server/.ailedger/log.sqlite", read_only=True) as log:
        assert log.size() == 5
        assert indexes == list(range(5))
        report = log.verify(LOG_KEY)
        # the shutdown signed a checkpoint covering everything acknowledged
        assert Checkpoint.parse(log.latest_checkpoint().text).size == 5
        assert report.size == 5


def test_the_server_refuses_a_key_that_is_not_the_logs(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    with Service(tmp_path / "server", "--allow", ALICE.address) as service:
        assert post(service, envelope(1))[0] == 201
    fast_keystore(ws).add("other", BOB, PASSWORD)
    result = run_process(
        "--workspace",
        tmp_path / "server",
        "serve",
        "--port",
        "0",
        "--key",
        "other",
        "--allow",
        ALICE.address,
    )
    assert result.returncode == 10, result.stderr
    assert "is signed by" in result.stderr


def test_client_errors_are_one_line_with_an_exit_code(served: Service, tmp_path: Path) -> None:
    bad = tmp_path / "bob.json"
    bad.write_bytes(envelope(1, (BOB,)))
    fails(["log", "append", "--log", served.url, bad], 3, "not allowed", "HTTP 403")
    fails(["log", "receipt", "5", "--log", served.url], 4, "not covered", "HTTP 404")
    fails(["log", "append", "--log", "ftp://example.com", bad], 3, "must start with http")
    status, _ = post(served, envelope(1))
    assert status == 201
    served_url = served.url
    served.stop()
    fails(["log", "append", "--log", served_url, bad], 13, "unreachable")


def test_a_bad_signature_through_the_client_exits_1(served: Service, tmp_path: Path) -> None:
    doc = json.loads(envelope(1))
    doc["payload"] = base64.b64encode(b'{"tampered": true}').decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    fails(["log", "append", "--log", served.url, bad], 1, "signature-invalid", "HTTP 422")


def test_reads_stop_at_the_published_checkpoint(tmp_path: Path) -> None:
    """Review finding: `/v1/entries/{i}` served entries no checkpoint covered yet."""
    server_workspace(tmp_path / "server")
    args = ["--allow", ALICE.address, "--checkpoint-interval-ms", "600000"]
    with Service(tmp_path / "server", *args, "--checkpoint-entries", "100000") as service:
        assert post(service, envelope(1))[0] == 201  # durable, not yet in a checkpoint
        status, headers, body = service.request("GET", "/v1/entries/0")
        assert status == 404
        assert headers["content-type"] == "application/problem+json"
        assert "not covered by the latest checkpoint (size 0)" in json.loads(body)["detail"]
        status, _, body = service.request("GET", f"/v1/entries?signer={ALICE.address}")
        assert (status, json.loads(body)["entries"]) == (200, [])


def test_a_full_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    """Backpressure (review finding: the queue was unbounded and each waiting request holds
    its body): beyond max_pending the writer's queue refuses with 503 + Retry-After."""
    path = tmp_path / "log.sqlite"
    TransparencyLog.open(path, LOG_KEY.name).close()
    signer = Secp256k1NoteKey.from_signer(LOG_KEY.name, LOG_SIGNER)
    sequencer = Sequencer(
        lambda: TransparencyLog.open(path), signer, SequencerSettings(max_pending=0)
    )

    async def submit() -> None:
        await sequencer.start()
        try:
            with TransparencyLog.open(path, read_only=True) as log:
                entry = log.prepare(envelope(1))
            await sequencer.submit(entry)
        finally:
            await sequencer.stop()

    with pytest.raises(Problem) as refused:
        asyncio.run(submit())
    assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "1"})
    with TransparencyLog.open(path, read_only=True) as log:
        assert log.size() == 0


def test_healthz_answers_with_the_published_size(served: Service) -> None:
    """The liveness check of the Dockerfile and deploy/compose.yaml."""
    status, headers, body = served.request("GET", "/healthz")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == {"status": "ok", "size": 0}
    assert post(served, envelope(0))[0] == 201
    wait_for_checkpoint(served, 1)
    assert json.loads(served.request("GET", "/healthz")[2]) == {"status": "ok", "size": 1}


def test_the_client_queries_entries_by_subject_type_and_signer(served: Service) -> None:
    for n in range(3):
        post(served, envelope(n))
    wait_for_checkpoint(served, 3)
    client = LogClient(served.url)
    assert [e["index"] for e in client.query(signer=ALICE.address, limit=2)] == [0, 1]
    second = client.query(signer=ALICE.address)[1]
    subject = second["subjects"][0]["digest"]
    assert [e["index"] for e in client.query(subject=subject)] == [1]
    assert client.query(subject=subject, signer=BOB.address) == []
    assert client.query(predicate_type="https://example.com/nothing/v1") == []
    with pytest.raises(InvalidInput, match=r"limit must be 1\.\.100"):
        client.query(limit=101)
