"""The workspace's default log key (issue 11, item 14): set at ``init``, changed with
``log default-key`` or ``[log] key`` in config.toml, used by every command with --log-key
when the option is omitted, overridden by the option, and a wrong config fails closed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import ailedger.cli._keys
import ailedger.cli._log
import ailedger.cli._statements  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok, run
from _log_util import LOG_SIGNER, WITNESS_SIGNER, envelope
from _workflow_util import NewWorkspace
from ailedger.identity.keys import P256Signer
from ailedger.workspace import Workspace

ORIGIN = "example.com/cli-log-key"


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace(ORIGIN)
    store.add("logkey", LOG_SIGNER, PASSWORD)
    store.add("other", WITNESS_SIGNER, PASSWORD)
    store.add("p256", P256Signer.generate(), PASSWORD)
    (tmp_path / "e0.json").write_bytes(envelope(0))
    return ws


def _config_key(ws: Workspace) -> object:
    return tomllib.loads(ws.config_path.read_text())["log"].get("key")


def test_init_sets_the_default_log_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = ok(["init", "--origin", ORIGIN, "--log-key", "logkey"])
    ws = Workspace.open(tmp_path)
    assert _config_key(ws) == "logkey"
    assert ws.config.log_key == "logkey"
    keyid = doc["log_key"]["keyid"]
    assert ok(["keys", "show", "logkey"])["type"] == "secp256k1"
    # the commands take it without --log-key / --key: attest's receipt, checkpoint, verify
    (tmp_path / "subject.bin").write_bytes(b"subject")
    fields = ["metric=accuracy", "value=0.93", "comparator=>=", "threshold=0.9"]
    sets = [arg for field in fields for arg in ("--set", field)]
    attested = ok(["attest", "evaluation", "--key", "logkey", "--subject", "subject.bin",
                   *sets, "--receipt", "r.json"])  # fmt: skip
    assert attested["receipt"] == "r.json"
    receipt = ok(["verify", "receipt", "r.json"])
    assert receipt["log_key_trusted"] is True
    assert [s.lower() for s in receipt["signers"]] == [keyid.lower()]
    assert ok(["log", "checkpoint"])["size"] == 1
    assert ok(["log", "verify"])["log_key_trusted"] is True


def test_init_without_a_log_key_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert ok(["init", "--origin", ORIGIN])["log_key"] is None
    fails(["log", "checkpoint"], 3, "no log key", "default-key")
    fails(["init", "sub", "--log-key", "k"], 5, "no password", password=None)
    assert not (tmp_path / "sub" / ".ailedger").exists()
    assert not (tmp_path / ".ailedger" / "keys" / "logkey.meta.json").exists()
    fails(["init", "sub", "--log-key", "bad name!"], 6, "invalid log key name")
    assert not (tmp_path / "sub" / ".ailedger").exists()


def test_default_key_is_changed_and_validated(ws: Workspace) -> None:
    assert ok(["log", "default-key"])["log_key"] is None
    assert ok(["log", "default-key", "other"])["log_key"]["name"] == "other"
    assert ok(["log", "default-key", "logkey"])["log_key"]["name"] == "logkey"
    assert _config_key(ws) == "logkey"
    # refused when set: a missing key (4), a key that cannot sign notes (3); config unchanged
    fails(["log", "default-key", "ghost"], 4, "no key named 'ghost'")
    fails(["log", "default-key", "p256"], 3, "must be ed25519 or secp256k1")
    assert _config_key(ws) == "logkey"
    ok(["log", "append", "e0.json"])
    assert ok(["log", "checkpoint"])["size"] == 1  # signed by the default
    assert ok(["log", "verify"])["log_key_trusted"] is True
    assert ok(["log", "default-key", "--unset"])["log_key"] is None
    assert _config_key(ws) is None
    assert ok(["log", "verify"])["log_key_trusted"] is False


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("ghost", "'ghost', which is not a key of this workspace"),
        ("p256", "must be ed25519 or secp256k1"),
    ],
)
def test_a_config_naming_a_bad_key_fails_closed(ws: Workspace, name: str, needle: str) -> None:
    """A hand-edited [log] key that is no note-signing key of the workspace is one error line
    with exit 6 (WorkspaceError) in every command that would use it; nothing falls back."""
    text = ws.config_path.read_text().replace("[log]\n", f'[log]\nkey = "{name}"\n')
    ws.config_path.write_text(text)
    assert Workspace.open(ws.root).config.log_key == name
    ok(["log", "append", "e0.json"])
    for args in (["log", "checkpoint"], ["log", "verify"], ["log", "default-key"]):
        out = fails(args, 6, needle, "config.toml")
        assert len(out.strip().splitlines()) <= 2, out  # the error and its hint
    # the option overrides the config, which is then not consulted
    assert ok(["log", "checkpoint", "--key", "logkey"])["size"] == 1
    assert ok(["log", "verify", "--log-key", LOG_SIGNER.address])["log_key_trusted"] is True


def test_the_option_overrides_the_default(ws: Workspace) -> None:
    ok(["log", "default-key", "other"])
    ok(["log", "append", "e0.json"])
    assert ok(["log", "checkpoint", "--key", "logkey"])["size"] == 1
    # the checkpoint is signed by logkey, so trusting the default (other) fails ...
    refused = run(["log", "verify"])
    assert refused.exit_code == 1, refused.output
    assert "not signed by the log key" in refused.stderr
    # ... and trusting the key named by the option passes
    assert ok(["log", "verify", "--log-key", LOG_SIGNER.address])["log_key_trusted"] is True


def test_a_malformed_config_key_is_refused(ws: Workspace) -> None:
    text = ws.config_path.read_text().replace("[log]\n", "[log]\nkey = 7\n")
    ws.config_path.write_text(text)
    fails(["log", "show"], 6, "[log] key must be the name of a workspace key")
