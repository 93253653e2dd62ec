"""``ailedger log ...`` and ``ailedger verify receipt`` through the real entry point."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

import ailedger.cli._keys
import ailedger.cli._log  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, ok, run
from _log_util import ALICE, LOG_SIGNER, PREDICATE, WITNESS_SIGNER, envelope
from _workflow_util import NewWorkspace
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log.checkpoint import Secp256k1NoteKey, vkey
from ailedger.workspace import Workspace

ORIGIN = "example.com/cli-log"
ARTIFACT = b"the artifact bytes"


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace(ORIGIN)
    store.add("logkey", LOG_SIGNER, PASSWORD)
    store.add("witness", WITNESS_SIGNER, PASSWORD)
    digest = hashlib.sha256(ARTIFACT).hexdigest()
    for i in range(4):
        (tmp_path / f"e{i}.json").write_bytes(envelope(i, digest=digest if i == 2 else None))
    (tmp_path / "artifact.bin").write_bytes(ARTIFACT)
    return ws


def _populate() -> None:
    assert ok(["log", "append", "e0.json", "e1.json", "e2.json"])["indexes"] == [0, 1, 2]
    assert ok(["log", "checkpoint", "--key", "logkey"])["size"] == 3
    cos = ok(["log", "cosign", "--key", "witness", "--name", "witness.example/w1"])
    assert "\u2014 witness.example/w1 " in str(cos["checkpoint"])


def test_log_lifecycle(ws: Workspace) -> None:
    _populate()
    summary = ok(["log", "show"])
    assert (summary["origin"], summary["size"]) == (ORIGIN, 3)
    report = ok(["log", "verify"])
    assert (report["ok"], report["checkpoints_checked"], report["cosignatures_checked"]) == (
        True,
        1,
        1,
    )
    trusted = ok(["log", "verify", "--log-key", LOG_SIGNER.address])
    assert trusted["log_key_trusted"] is True
    stranger = run(["log", "verify", "--log-key", Secp256k1Signer(b"\x98" * 32).address])
    assert stranger.exit_code == 1
    assert "not signed by the log key" in stranger.stderr
    entry = ok(["log", "show", "2"])
    assert entry["predicate_type"] == PREDICATE
    assert entry["envelope"]["payloadType"] == "application/vnd.in-toto+json"  # type: ignore[index]


def test_queries(ws: Workspace) -> None:
    _populate()
    digest = hashlib.sha256(ARTIFACT).hexdigest()

    def indexes(*args: str) -> list[int]:
        return [e["index"] for e in ok(["log", "query", *args])["entries"]]  # type: ignore[attr-defined]

    assert indexes("--subject", f"sha256:{digest}") == [2]
    assert indexes("--signer", ALICE.keyid) == [0, 1, 2]
    assert indexes("--type", PREDICATE, "--limit", "2") == [0, 1]
    assert indexes("--since", "2000-01-01") == [0, 1, 2]
    assert indexes("--until", "2000-01-01T00:00:00+00:00") == []
    bad = run(["log", "query", "--since", "yesterday"])
    assert bad.exit_code == 3
    assert "ISO 8601" in bad.stderr


def test_receipt_round_trip(ws: Workspace, tmp_path: Path) -> None:
    _populate()
    assert ok(["log", "receipt", "2", "--out", "r.json"])["index"] == 2
    result = ok(["verify", "receipt", "r.json", "--artifact", "artifact.bin"])
    assert (result["index"], result["log_key_trusted"]) == (2, False)
    log_key = vkey(Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address))
    trusted = ok(["verify", "receipt", "r.json", "--log-key", log_key])
    assert trusted["log_key_trusted"] is True
    by_address = ok(["verify", "receipt", "r.json", "--log-key", LOG_SIGNER.address])
    assert by_address["log_key_trusted"] is True
    human = run(["verify", "receipt", "r.json", "--artifact", "artifact.bin"])
    assert human.exit_code == 0
    assert "is a subject" in human.stdout

    wrong_artifact = run(["verify", "receipt", "r.json", "--artifact", "e0.json"])
    assert wrong_artifact.exit_code == 1
    assert "not a subject" in wrong_artifact.stderr
    other = Secp256k1Signer(b"\x99" * 32).address
    other_log = run(["verify", "receipt", "r.json", "--log-key", other])
    assert other_log.exit_code == 1
    assert "another log" in other_log.stderr
    text = (tmp_path / "r.json").read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    truncated = run(["verify", "receipt", "cut.json"])
    assert truncated.exit_code == 3
    assert run(["verify", "receipt", "missing.json"]).exit_code == 4


def test_bad_envelopes(ws: Workspace, tmp_path: Path) -> None:
    raw = (tmp_path / "e0.json").read_bytes()
    (tmp_path / "cut.json").write_bytes(raw[:-10])
    truncated = run(["log", "append", "cut.json"])
    assert truncated.exit_code == 3
    assert "truncated" in truncated.stderr
    doc = json.loads(raw)
    doc["signatures"][0]["sig"] = doc["signatures"][0]["sig"][::-1]
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    tampered = run(["log", "append", "tampered.json"])
    assert tampered.exit_code in (1, 3)  # a garbled signature: invalid or malformed
    doc = json.loads(raw)
    doc["signatures"][0]["keyid"] = "some-unknown-key"
    (tmp_path / "unknown.json").write_text(json.dumps(doc))
    unknown = run(["log", "append", "unknown.json"])
    assert unknown.exit_code == 1
    assert "unknown key" in unknown.stderr
    assert ok(["log", "show"])["size"] == 0


def test_corrupted_database_is_reported(ws: Workspace) -> None:
    _populate()
    db = sqlite3.connect(ws.path / "log.sqlite")
    db.execute("UPDATE nodes SET hash = ? WHERE level = 1 AND idx = 0", (b"\x00" * 32,))
    db.commit()
    db.close()
    result = run(["log", "verify"])
    assert result.exit_code == 7
    assert "node (1, 0)" in result.stderr


def test_cosign_needs_a_checkpoint_and_a_secp256k1_key(ws: Workspace) -> None:
    assert run(["log", "cosign", "--key", "witness"]).exit_code == 4
    assert run(["log", "checkpoint", "--key", "nobody"]).exit_code == 4
