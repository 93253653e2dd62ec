"""``ailedger init`` and ``ailedger keys ...`` through the real entry point (exit codes)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account

import ailedger.cli._keys
import ailedger.cli._statements
from _cli import PASSWORD, run
from _workflow_util import NewWorkspace, fast_keystore
from ailedger.identity.keys import (
    SCRYPT_N_TEST_ONLY,
    P256Signer,
    Secp256k1Signer,
    load_public_key,
)
from ailedger.workspace import Workspace


@pytest.fixture
def ws(new_workspace: NewWorkspace) -> Workspace:
    return new_workspace()[0]


def test_init_and_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(["init", "proj", "--origin", "example.com/p", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["origin"] == "example.com/p"
    assert stat.S_IMODE((tmp_path / "proj/.ailedger/keys").stat().st_mode) == 0o700
    again = run(["init", "proj"])
    assert again.exit_code == 6
    assert "already exists" in again.stderr
    # Outside any workspace: exit 6 and a hint.
    lost = run(["keys", "list"])
    assert lost.exit_code == 6
    assert "ailedger init" in lost.stderr
    # --workspace, AILEDGER_HOME and walking up all find it.
    assert run(["--workspace", "proj", "keys", "list", "--json"]).stdout.strip() == "[]"
    home = run(["keys", "list", "--json"], password=None, env={"AILEDGER_HOME": "proj"})
    assert home.exit_code == 0
    (tmp_path / "proj/a/b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj/a/b")
    assert run(["keys", "list", "--json"]).exit_code == 0


@pytest.mark.slow
def test_keys_new_with_standard_kdf(ws: Workspace) -> None:
    result = run(["keys", "new", "alice", "--org", "acme", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["type"] == "secp256k1"
    assert info["keyid"] == info["address"]
    assert info["org"] == "acme"
    doc = json.loads((ws.keys_dir / "alice.keystore.json").read_text())
    assert doc["crypto"]["kdfparams"]["n"] == 2**18


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
def test_keys_new_p256_prompts_twice(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # CliRunner's stdin is not a terminal; pretend it is so the prompt path runs.
    monkeypatch.setattr(ailedger.cli._keys, "_interactive", lambda: True)
    result = run(["keys", "new", "bob", "--type", "p256"], password=None, stdin="pw1\npw1\n")
    assert result.exit_code == 0, result.output
    assert "bob (p256)" in result.stdout
    assert fast_keystore(ws).signer("bob", "pw1").keyid == fast_keystore(ws).info("bob").keyid
    mismatch = run(["keys", "new", "eve"], password=None, stdin="a\nb\n")
    assert mismatch.exit_code != 0
    assert not (ws.keys_dir / "eve.meta.json").exists()


def test_no_password_and_no_terminal_is_one_clear_error(ws: Workspace) -> None:
    result = run(["keys", "new", "bob"], password=None, stdin="")
    assert result.exit_code == 5
    assert "no terminal" in result.stderr
    assert "AILEDGER_PASSWORD" in result.stderr
    assert not (ws.keys_dir / "bob.meta.json").exists()


def test_keys_new_rejects_bad_type_and_duplicates(ws: Workspace) -> None:
    assert run(["keys", "new", "x", "--type", "rsa"]).exit_code == 3
    fast_keystore(ws).create("taken", PASSWORD)
    dup = run(["keys", "new", "taken", "--type", "p256"])
    assert dup.exit_code == 10
    assert "already exists" in dup.stderr


def test_unsafe_plaintext_warns(ws: Workspace) -> None:
    result = run(["keys", "new", "raw", "--unsafe-plaintext", "--json"], password=None)
    assert result.exit_code == 0, result.output
    assert "UNENCRYPTED" in result.stderr
    assert json.loads(result.stdout)["encrypted"] is False


def test_password_file(ws: Workspace, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("from-file\nignored second line\n")
    fast_keystore(ws).create("k", "from-file", keytype="p256")
    ok = run(
        [
            "attest",
            "approval",
            "--subject",
            "sha256:" + "00" * 32,
            "--set",
            "role=qa",
            "--set",
            "decision=approve",
            "--key",
            "k",
            "--password-file",
            str(pw),
        ],
        password="wrong",
    )
    assert ok.exit_code == 0, ok.output
    assert run(["keys", "new", "k2", "--password-file", str(tmp_path / "none")]).exit_code == 4
    (tmp_path / "empty").write_text("")
    assert run(["keys", "new", "k2", "--password-file", str(tmp_path / "empty")]).exit_code == 3


def test_list_show_and_unknown(ws: Workspace) -> None:
    store = fast_keystore(ws)
    a = store.create("alice", PASSWORD, org="acme")
    store.create("bob", PASSWORD, keytype="p256")
    listed = json.loads(run(["keys", "list", "--json"]).stdout)
    assert [k["name"] for k in listed] == ["alice", "bob"]
    assert "alice" in run(["keys", "list"]).stdout
    shown = json.loads(run(["keys", "show", "alice", "--json"]).stdout)
    assert shown["address"] == a.keyid
    assert "acme" in run(["keys", "show", "alice"]).stdout
    missing = run(["keys", "show", "nobody"])
    assert missing.exit_code == 4
    assert "no key named 'nobody'" in missing.stderr


def test_export_public(ws: Workspace, tmp_path: Path) -> None:
    store = fast_keystore(ws)
    a = store.create("alice", PASSWORD)
    b = store.create("bob", PASSWORD, keytype="p256")
    out = tmp_path / "bob.pub"
    result = run(["keys", "export-public", "bob", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert load_public_key(out.read_bytes()) == b.public_key
    assert json.loads(result.stdout)["keyid"] == b.keyid
    printed = run(["keys", "export-public", "alice"]).stdout
    assert load_public_key(printed).keyid == a.keyid


def test_import_keystore_and_pem(ws: Workspace, tmp_path: Path) -> None:
    account = Account.create()
    keystore = tmp_path / "geth.json"
    keystore.write_text(json.dumps(account.encrypt(PASSWORD, iterations=SCRYPT_N_TEST_ONLY)))
    result = run(["keys", "import", "geth", str(keystore), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["address"] == account.address
    wrong = run(["keys", "import", "geth2", str(keystore)], password="nope")
    assert wrong.exit_code == 5
    assert "wrong password" in wrong.stderr
    truncated = tmp_path / "cut.json"
    truncated.write_text(keystore.read_text()[:50])
    assert run(["keys", "import", "cut", str(truncated)]).exit_code == 5

    pem = tmp_path / "p256.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    imported = run(["keys", "import", "pem", str(pem), "--org", "lab", "--json"])
    assert imported.exit_code == 0, imported.output
    info = json.loads(imported.stdout)
    assert info["type"] == "p256"
    assert info["encrypted"] is True
    assert run(["keys", "import", "x", str(tmp_path / "missing.pem")]).exit_code == 4
    (tmp_path / "junk").write_text("hello")
    assert run(["keys", "import", "x", str(tmp_path / "junk")]).exit_code == 3


def test_private_keys_never_appear_in_output(ws: Workspace, tmp_path: Path) -> None:
    store = fast_keystore(ws)
    store.create("alice", PASSWORD)
    store.create("bob", PASSWORD, keytype="p256")
    alice = store.signer("alice", PASSWORD)
    bob = store.signer("bob", PASSWORD)
    assert isinstance(alice, Secp256k1Signer)
    assert isinstance(bob, P256Signer)
    secrets = [
        alice._secret().hex(),
        format(bob._private_key().private_numbers().private_value, "064x"),
    ]
    envelope = tmp_path / "e.json"
    runs = [
        ["keys", "list"],
        ["keys", "list", "--json"],
        ["keys", "show", "alice"],
        ["keys", "show", "bob", "--json"],
        ["keys", "export-public", "alice", "--json"],
        ["keys", "export-public", "bob"],
        [
            "-v",
            "attest",
            "approval",
            "--subject",
            "sha256:" + "11" * 32,
            "--set",
            "role=qa",
            "--set",
            "decision=approve",
            "--key",
            "alice",
            "--out",
            str(envelope),
            "--json",
        ],
        [
            "attest",
            "approval",
            "--subject",
            "sha256:" + "11" * 32,
            "--set",
            "role=qa",
            "--set",
            "decision=approve",
            "--key",
            "bob",
        ],
        ["verify", "statement", str(envelope), "--key", "alice", "--json"],
    ]
    outputs = []
    for args in runs:
        result = run(args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.stdout + result.stderr)
    for args in (
        [
            "-v",
            "attest",
            "approval",
            "--subject",
            "sha256:" + "11" * 32,
            "--set",
            "role=qa",
            "--set",
            "decision=approve",
            "--key",
            "alice",
        ],
        ["-v", "keys", "show", "alice", "--json"],
    ):
        failed = run(args, password="wrong")
        outputs.append(failed.stdout + failed.stderr)
    text = "\n".join(outputs).lower()
    for secret in secrets:
        assert secret not in text


def test_vkey_prints_the_log_and_the_witness_verifier_keys(ws: Workspace) -> None:
    """What ``witness serve --log ORIGIN=VKEY`` and ``serve --witness URL=VKEY`` take, from
    the keystore's public keys (no password): docs/deploy.md wires the services with it."""
    from ailedger.log import cosigner_for, note_key_for, vkey

    store = fast_keystore(ws)
    alice = store.create("alice", PASSWORD)
    ed = store.create("ed", PASSWORD, keytype="ed25519")
    store.create("bob", PASSWORD, keytype="p256")

    def printed(*args: str) -> str:
        result = run(["keys", "vkey", *args], password=None)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    origin = ws.config.origin
    assert printed("alice") == vkey(note_key_for(origin, alice.public_key))
    assert printed("ed") == vkey(note_key_for(origin, ed.public_key))
    witness = cosigner_for(f"witness/{alice.keyid}", alice.public_key)
    assert printed("alice", "--witness") == vkey(witness)
    assert printed("ed", "--witness") == vkey(
        cosigner_for(f"witness/{ed.keyid[:16]}", ed.public_key)
    )
    named = cosigner_for("witness/acme", alice.public_key)
    assert printed("alice", "--witness", "--name", "witness/acme") == vkey(named)
    p256 = run(["keys", "vkey", "bob"])
    assert p256.exit_code == 3
    assert "a p256 key cannot be a log key" in p256.stderr
    name_alone = run(["keys", "vkey", "alice", "--name", "witness/acme"])
    assert name_alone.exit_code == 3
    assert "--name needs --witness" in name_alone.stderr
    assert run(["keys", "vkey", "nobody"]).exit_code == 4
