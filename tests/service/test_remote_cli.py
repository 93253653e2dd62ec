"""The CLI against a real ``ailedger serve``: a workflow recorded locally, replayed to the
service, then read back with ``--log URL`` gives the same answers as the local log; an
``attest --log`` round trip ends with a receipt checked offline and against the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _cli import fails, ok, run
from _log_util import LOG_SIGNER
from _service import LOG_KEY, ORIGIN, Service, server_workspace, wait_for_checkpoint
from _workflow_util import Setup, variant
from ailedger.log import vkey
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def _workflow(setup: Setup) -> None:
    """r@1, r@2 registered and deployed to prod, r@2 rolled back (on the local log)."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        for i in (1, 2):
            ref = VersionRef("r", str(i))
            reg.register_model(variant(setup, f"m{i}", f'{{"v": {i}}}'), ref, trainer)
            reg.deploy(ref, "prod", trainer, OPEN)
        reg.rollback("prod", trainer)


def _replay(setup: Setup, url: str) -> int:
    """Submit every local entry, in order, to the service (signed here, long ago)."""
    with setup.registry() as reg:
        envelopes = [reg.log.get(i).envelope for i in range(reg.log.size())]
    files = []
    for i, data in enumerate(envelopes):
        path = setup.root / f"entry-{i}.json"
        path.write_bytes(data)
        files.append(path)
    doc = ok(["log", "append", "--log", url, *files])
    assert doc["indexes"] == list(range(len(files)))
    return len(files)


def _covered(service: Service, size: int) -> None:
    wait_for_checkpoint(service, size)


@pytest.fixture
def service(setup: Setup, tmp_path: Path) -> Any:
    server_workspace(tmp_path / "server")
    allow = [setup.store.info(n).keyid for n in ("trainer", "qa")]
    args = [a for address in allow for a in ("--allow", address)]
    with Service(tmp_path / "server", *args, "--checkpoint-interval-ms", "20") as served:
        yield served


def _strip(doc: Any) -> Any:
    """A document without what differs between two logs of the same statements: append
    times, the checkpoint and whose log it is."""
    if isinstance(doc, dict):
        return {
            k: _strip(v)
            for k, v in doc.items()
            if k
            not in {
                "logged_at",
                "time",
                "checkpoint",
                "tree_head",
                "root",
                "anchor",
                "origin",
                "log_key",
                "generated_at",
                "html",
                "json",
                "log",
                "at",
            }
        }
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def test_trace_lineage_audit_on_the_service_match_the_local_log(
    setup: Setup, service: Service
) -> None:
    _workflow(setup)
    ok(["log", "checkpoint", "--key", "trainer"])  # the local log's own checkpoint
    size = _replay(setup, service.url)
    _covered(service, size)
    remote = ["--log", service.url, "--log-key", LOG_SIGNER.address]

    verified = ok(["log", "verify", *remote])
    assert (verified["remote"]["size"], verified["entries_checked"]) == (size, size)
    assert verified["log_key"] == vkey(LOG_KEY)

    local_trace = ok(["trace", "--env", "prod"])
    remote_trace = ok(["trace", "--env", "prod", *remote])
    assert remote_trace["model"] == local_trace["model"] == "r@1"
    assert _strip(remote_trace) == _strip(local_trace)

    local_lineage = ok(["lineage", "r@2"])
    remote_lineage = ok(["lineage", "r@2", *remote])
    assert _strip(remote_lineage) == _strip(local_lineage)

    local_report = ok(["audit", "report", "--out", setup.root / "local-report"])
    remote_report = ok(["audit", "report", "--out", setup.root / "remote-report", *remote])
    assert remote_report["summary"] == local_report["summary"]
    assert remote_report["summary"]["unverified_items"] == 0

    found = ok(["log", "query", "--type", "https://ailedger.dev/predicates/deploy/v1", *remote])
    local_found = ok(["log", "query", "--type", "https://ailedger.dev/predicates/deploy/v1"])
    assert [e["index"] for e in found["entries"]] == [e["index"] for e in local_found["entries"]]

    # the mirror pinned the key: later reads need no --log-key, and a wrong key is refused
    assert ok(["log", "verify", "--log", service.url])["log_key"] == vkey(LOG_KEY)
    fails(
        ["log", "verify", "--log", service.url, "--log-key", setup.store.info("qa").keyid],
        10,
        "was verified with log key",
    )


def test_attest_to_the_service_then_verify_the_receipt(
    setup: Setup, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = setup.root / "weights.bin"
    artifact.write_bytes(b"weights")
    attest = [
        "attest",
        "evaluation",
        "--key",
        "trainer",
        "--subject",
        artifact,
        "--set",
        "metric=accuracy",
        "--set",
        "value=0.93",
        "--set",
        "comparator=>=",
        "--set",
        "threshold=0.9",
    ]
    # no trusted key yet: nothing fetched is believed (fail closed)
    fails(["log", "query", "--log", service.url], 3, "no trusted log key", "--log-key")
    ok(["log", "remote", service.url, "--log-key", LOG_SIGNER.address])
    doc = ok([*attest, "--out", setup.root / "e.json", "--receipt", setup.root / "r.json"])
    assert doc["log_index"] == 0
    assert ok(["log", "query", "--subject", doc_subject(setup.root / "e.json")])["entries"]
    # nothing was appended to the workspace's own log
    assert ok(["log", "show", "--log", "local"])["size"] == 0

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    receipt = setup.root / "r.json"
    checked = ok(
        ["verify", "receipt", receipt, "--artifact", artifact, "--log-key", LOG_SIGNER.address]
    )
    assert (checked["index"], checked["log_key_trusted"]) == (0, True)
    fresh = ok(
        ["verify", "receipt", receipt, "--log-key", LOG_SIGNER.address, "--log", service.url]
    )
    assert fresh["log_checkpoint"]["size"] >= 1
    fails(["verify", "receipt", receipt, "--log", service.url], 3, "trusted log key")


def doc_subject(envelope: Path) -> str:
    import base64

    payload = json.loads(base64.b64decode(json.loads(envelope.read_text())["payload"]))
    return str(payload["subject"][0]["digest"]["sha256"])


def test_an_unreachable_service_is_one_line_exit_13(setup: Setup, tmp_path: Path) -> None:
    out = fails(
        ["log", "verify", "--log", "http://127.0.0.1:9", "--log-key", LOG_SIGNER.address],
        13,
        "unreachable",
    )
    assert len(out.strip().splitlines()) <= 2  # the error and its hint
    assert ORIGIN
    assert run(["trace", "--env", "prod", "--log", "http://127.0.0.1:9"]).exit_code == 13
