"""``ailedger log remote`` and ``[log] url``: which log a command uses, and the checks made
before anything goes over the network."""

from __future__ import annotations

from typing import Any

from _cli import fails, ok
from _log_util import LOG_SIGNER
from ailedger.log import Ed25519Cosigner, Secp256k1NoteKey, vkey

URL = "http://127.0.0.1:9"  # nothing listens there: a command that reached it would exit 13
NONE = {"url": None, "log_key": None, "witnesses": [], "witness_threshold": 0}


def test_log_remote_sets_shows_and_unsets_the_default_service(new_workspace: Any) -> None:
    ws, _ = new_workspace()
    assert ok(["log", "remote"]) == NONE
    shown = ok(["log", "remote", URL + "/", "--log-key", LOG_SIGNER.address])
    assert shown == NONE | {"url": URL, "log_key": LOG_SIGNER.address}
    assert 'url = "http://127.0.0.1:9"' in ws.config_path.read_text()
    # the default now applies (and the service is down: exit 13), --log local skips it
    fails(["log", "query"], 13, "unreachable")
    assert ok(["log", "query", "--log", "local"])["entries"] == []
    assert ok(["log", "show", "--log", "local"])["size"] == 0
    assert ok(["log", "remote", "--unset"]) == NONE
    assert ok(["log", "query"])["entries"] == []


def test_log_remote_saves_the_witnesses_its_checkpoints_need(new_workspace: Any) -> None:
    ws, _ = new_workspace()
    witness = vkey(Ed25519Cosigner.generate("witness/one"))
    args = ["log", "remote", URL, "--log-key", LOG_SIGNER.address, "--witness-key", witness]
    shown = ok([*args, "--witness-threshold", "1"])
    assert (shown["witnesses"], shown["witness_threshold"]) == ([witness], 1)
    assert f'witnesses = ["{witness}"]' in ws.config_path.read_text()
    fails([*args, "--witness-threshold", "2"], 3, "needs as many --witness-key")
    fails([*args[:-1], "not-a-key"], 3, "verifier key")
    # another service, or none: its witnesses go with it
    assert ok(["log", "remote", URL, "--log-key", LOG_SIGNER.address])["witnesses"] == []
    ok([*args, "--witness-threshold", "1"])
    assert ok(["log", "remote", "--unset"]) == NONE
    # a malformed [log] witnesses fails in one line (exit 6), before any network call
    ok(["log", "remote", URL, "--log-key", LOG_SIGNER.address])
    text = ws.config_path.read_text().replace("[log]", "[log]\nwitnesses = 3", 1)
    ws.config_path.write_text(text)
    fails(["log", "show"], 6, "[log] witnesses must be a list")


def test_log_remote_refuses_what_it_cannot_trust(new_workspace: Any) -> None:
    new_workspace()
    fails(["log", "remote", URL], 3, "--log-key")
    fails(["log", "remote", "ftp://example.com", "--log-key", LOG_SIGNER.address], 3, "http://")
    fails(["log", "remote", URL, "--log-key", "not-a-key"], 3, "verifier key")
    fails(["log", "remote", URL, "--unset"], 3, "not both")
    good = vkey(Secp256k1NoteKey("example.com/served", LOG_SIGNER.address))
    assert ok(["log", "remote", URL, "--log-key", good])["log_key"] == good


def test_a_broken_log_url_in_the_config_is_exit_6(new_workspace: Any) -> None:
    ws, _ = new_workspace()
    ws.config_path.write_text(ws.config_path.read_text().replace("[log]", "[log]\nurl = 7"))
    fails(["log", "query"], 6, "[log] url must be a string")


def test_attest_to_a_service_signs_no_checkpoint_of_its_own(new_workspace: Any) -> None:
    _, store = new_workspace()
    store.create("trainer", "s3cret-pass")
    fails(
        ["attest", "evaluation", "--key", "trainer", "--subject", "sha256:" + "ab" * 32,
         "--log", URL, "--receipt", "r.json", "--log-key", "trainer"],
        3,
        "a log service signs its own checkpoints",
    )  # fmt: skip


def test_reading_commands_reach_for_the_service_and_fail_in_one_line(
    new_workspace: Any,
) -> None:
    new_workspace()
    # the checkpoint is what a read fetches first: the service is down, exit 13
    fails(["trace", "--env", "prod", "--log", URL], 13, "unreachable")
    fails(["lineage", "r@1", "--log", URL], 13, "unreachable")
    fails(["audit", "report", "--out", "report", "--log", URL, "--chain-check"], 3,
          "--chain-check")  # fmt: skip


def test_registry_writes_go_to_a_configured_service(new_workspace: Any) -> None:
    """With [log] url set, a registry write records in the service (down here: exit 13, one
    line); `--log local` records in the workspace's own log instead."""
    _, store = new_workspace()
    store.create("trainer", "s3cret-pass")
    ok(["log", "remote", URL, "--log-key", LOG_SIGNER.address])
    deprecate = ["deprecate", "r@1", "--key", "trainer", "--reason", "x"]
    out = fails(deprecate, 13, "unreachable")
    assert len(out.strip().splitlines()) <= 2
    fails([*deprecate, "--log", "local"], 4, "unknown model r@1")
