"""Ed25519 keys in the CLI (issue 12, item 6) and DSSE keyids as hints (item 5): ``keys new
--type ed25519``, statements, the log key (C2SP type 0x01), witness cosignatures (type 0x04),
imported securesystemslib public keys, and the one clear error of ``anchor``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import ailedger.cli._chain
import ailedger.cli._keys
import ailedger.cli._log
import ailedger.cli._statements  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok
from _workflow_util import NewWorkspace
from ailedger.attest import dsse
from ailedger.identity.keys import Ed25519Signer, Keystore
from ailedger.log import COSIGNATURE_V1_TYPE, ED25519_TYPE, Ed25519NoteKey, parse_vkey
from ailedger.workspace import Workspace

ORIGIN = "example.com/cli-ed25519"
EVAL = ["--set", "metric=accuracy", "--set", "value=0.93", "--set", "comparator=>=",
        "--set", "threshold=0.9"]  # fmt: skip


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace(ORIGIN)
    store.create("ed", PASSWORD, keytype="ed25519")
    store.create("edwitness", PASSWORD, keytype="ed25519")
    store.create("secp", PASSWORD)
    (tmp_path / "model.bin").write_bytes(b"weights" * 10)
    return ws


def test_keys_new_ed25519_is_stored_encrypted(ws: Workspace) -> None:
    doc = ok(["keys", "new", "fresh", "--type", "ed25519"])
    assert doc["type"] == "ed25519"
    assert doc["encrypted"] is True
    assert doc["public_only"] is False
    pem = Path(doc["file"]).read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "PRIVATE" not in json.dumps(doc)  # the public facts only
    store = Keystore(ws.keys_dir)
    assert isinstance(store.signer("fresh", PASSWORD), Ed25519Signer)
    fails(["keys", "new", "odd", "--type", "ed448"], 3, "unknown key type 'ed448'")


def test_statement_signed_and_verified_with_ed25519(ws: Workspace, tmp_path: Path) -> None:
    ok(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "ed", "--out", "e.json"])
    env = dsse.Envelope.from_json((tmp_path / "e.json").read_bytes())
    public = Keystore(ws.keys_dir).public_key("ed")
    assert env.signatures[0].keyid == public.keyid
    assert len(env.signatures[0].sig) == 64
    assert ok(["verify", "statement", "e.json", "--key", "ed"])["signers"] == [public.keyid]
    fails(["verify", "statement", "e.json", "--key", "edwitness"], 1, "0 of the required 1")


def test_ed25519_log_key_checkpoints_cosignatures_and_receipts(ws: Workspace) -> None:
    ok(["log", "default-key", "ed"])
    doc = ok(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "secp",
              "--out", "e.json", "--receipt", "r.json"])  # fmt: skip
    assert doc["log_index"] == 0
    cp = ok(["log", "checkpoint"])
    key = parse_vkey(cp["log_key"])
    assert isinstance(key, Ed25519NoteKey)
    assert base64.b64decode(cp["log_key"].split("+", 2)[2])[:1] == ED25519_TYPE
    raw = Keystore(ws.keys_dir).public_key("ed")
    assert key.public == raw.raw  # type: ignore[attr-defined]
    cosigned = ok(["log", "cosign", "--key", "edwitness", "--name", "witness.example/ed"])
    witness = cosigned["witness"]
    assert base64.b64decode(witness.split("+", 2)[2])[:1] == COSIGNATURE_V1_TYPE
    verified = ok(["log", "verify"])
    assert verified["log_key_trusted"] is True
    assert verified["cosignatures_checked"] == 1
    receipt = ok(["verify", "receipt", "r.json"])
    assert receipt["log_key_trusted"] is True
    assert receipt["log_key"] == cp["log_key"]
    ok(["log", "receipt", "0", "--out", "r2.json"])
    with_witness = ok(["verify", "receipt", "r2.json", "--witness-key", witness,
                       "--witness-threshold", "1"])  # fmt: skip
    assert with_witness["witnesses"] == ["witness.example/ed"]
    # the secp256k1 key is not the log's key: its checkpoint is refused
    fails(["log", "checkpoint", "--key", "secp"], 10, "is signed by")


def test_statement_signed_with_ed25519_verifies_in_a_receipt(ws: Workspace) -> None:
    ok(["log", "default-key", "secp"])
    ok(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "ed",
        "--out", "e.json", "--receipt", "r.json"])  # fmt: skip
    assert ok(["verify", "receipt", "r.json"])["signers"] == [
        Keystore(ws.keys_dir).public_key("ed").keyid
    ]
    # without the workspace, the signer's public key is given as a file
    pem = Path("ed.pub")
    pem.write_text(Keystore(ws.keys_dir).public_key("ed").to_pem())
    other = Path("elsewhere")
    other.mkdir()
    env = {"AILEDGER_HOME": str(other)}
    fails(["verify", "receipt", "r.json"], 1, "signer-unknown", env=env)
    ok(["--workspace", str(other), "verify", "receipt", "r.json", "--public-key", pem])


def test_anchor_refuses_an_ed25519_log_key(ws: Workspace) -> None:
    fails(["anchor", "--key", "ed"], 3, "must be secp256k1")
    ok(["log", "default-key", "ed"])
    ok(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "secp",
        "--out", "e.json", "--receipt", "r.json"])  # fmt: skip
    out = fails(["anchor", "--key", "secp"], 3, "Ed25519 log key", "secp256k1 log key")
    assert len(out.strip().splitlines()) <= 2, out


def test_p256_and_public_keys_cannot_sign_notes(ws: Workspace, tmp_path: Path) -> None:
    Keystore(ws.keys_dir).create("p", PASSWORD, keytype="p256")
    fails(["log", "checkpoint", "--key", "p"], 3, "must be ed25519 or secp256k1")
    ok(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "secp",
        "--log-key", "secp", "--receipt", "r.json"])  # fmt: skip
    fails(["log", "cosign", "--key", "p"], 3, "a witness key must be ed25519 or secp256k1")
    pub = tmp_path / "ed.pem"
    pub.write_text(Ed25519Signer.generate().public_key.to_pem())
    doc = ok(["keys", "import", "theirs", pub], password=None)
    assert doc["public_only"] is True
    assert doc["file"] is None
    fails(["log", "checkpoint", "--key", "theirs"], 3, "public key only")
    fails(["attest", "evaluation", "--subject", "model.bin", *EVAL, "--key", "theirs"],
          5, "cannot sign")  # fmt: skip
