"""Standard C2SP clients check our served checkpoints: ``ailedger serve --key`` with an Ed25519
log key and an Ed25519 ``ailedger witness serve``; Go's reference note package
(golang.org/x/mod/sumdb/note) verifies the published checkpoint's log signature and the
witness's cosignature/v1 (tests/service/go/cosigcheck.go). Skipped only without Go and x/mod
(Debian: golang-go, golang-golang-x-mod-dev)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from _cli import PASSWORD
from _log_util import ALICE, envelope
from _service import ORIGIN, Service, post
from _witness import WitnessProcess, witness_workspace
from _workflow_util import fast_keystore
from ailedger.log import (
    Checkpoint,
    Ed25519Cosigner,
    Ed25519NoteKey,
    SignedNote,
    note_key_for,
    parse_vkey,
    vkey,
)
from ailedger.workspace import Workspace

GO_NOTE = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/note")


@pytest.fixture(scope="module")
def cosigcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not GO_NOTE.is_dir():
        pytest.skip("go or golang.org/x/mod (GOPATH /usr/share/gocode) is not installed")
    tmp = tmp_path_factory.mktemp("go")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(tmp / "gocache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    binary = tmp / "cosigcheck"
    source = Path(__file__).parent / "go" / "cosigcheck.go"
    build = subprocess.run(
        [go, "build", "-o", str(binary), str(source)], env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return binary


def test_serve_signs_with_an_ed25519_log_key(tmp_path: Path) -> None:
    """Without Go too: the served checkpoint carries C2SP's own Ed25519 type (0x01)."""
    ws = Workspace.init(tmp_path, origin=ORIGIN, log_key="logkey")
    fast_keystore(ws).create("logkey", PASSWORD, keytype="ed25519")
    log_key = note_key_for(ORIGIN, fast_keystore(ws).public_key("logkey"))
    assert isinstance(log_key, Ed25519NoteKey)
    with Service(tmp_path, "--allow", ALICE.address) as service:
        assert service.ready["log_key"] == vkey(log_key)
        assert post(service, envelope(1))[0] == 201
        status, _, body = service.request("GET", "/checkpoint")
    assert status == 200
    SignedNote.parse(body).verify_one(log_key)


def test_go_verifies_an_ed25519_log_checkpoint_and_its_cosignature(
    cosigcheck: Path, tmp_path: Path
) -> None:
    server = tmp_path / "server"
    server.mkdir()
    ws = Workspace.init(server, origin=ORIGIN, log_key="logkey")
    fast_keystore(ws).create("logkey", PASSWORD, keytype="ed25519")
    # the witness needs the log's vkey before the log serves: read it from the keystore
    log_key = note_key_for(ORIGIN, fast_keystore(ws).public_key("logkey"))
    witness_workspace(tmp_path / "witness", "ed25519")
    with (
        WitnessProcess(tmp_path / "witness", [log_key]) as witness,
        Service(
            server,
            "--allow",
            ALICE.address,
            "--checkpoint-interval-ms",
            "20",
            "--witness",
            witness.spec,
        ) as service,
    ):
        assert parse_vkey(service.ready["log_key"]) == log_key
        for i in range(3):
            assert post(service, envelope(i))[0] == 201
        for _ in range(12000):  # a guard against a hang, not a timing assertion
            status, _, body = service.request("GET", "/checkpoint")
            if status == 200 and Checkpoint.parse(SignedNote.parse(body).text).size == 3:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("no published checkpoint of size 3")
    path = tmp_path / "checkpoint"
    path.write_bytes(body)
    checked = subprocess.run(
        [str(cosigcheck), service.ready["log_key"], witness.vkey, str(path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == SignedNote.parse(body).text + f"cosigned by {witness.ready['name']}\n"
    # a tampered checkpoint, or a cosignature under another witness key, fails in Go too
    path.write_bytes(body.replace(b"\n3\n", b"\n4\n", 1))
    tampered = subprocess.run(
        [str(cosigcheck), service.ready["log_key"], witness.vkey, str(path)],
        capture_output=True,
        text=True,
    )
    assert tampered.returncode == 1
    assert "invalid signature" in tampered.stderr
    path.write_bytes(body)
    other = vkey(Ed25519Cosigner.generate(witness.ready["name"]))  # same name, another key
    wrong = subprocess.run(
        [str(cosigcheck), service.ready["log_key"], other, str(path)],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1
    assert "missing a verified signature" in wrong.stderr
