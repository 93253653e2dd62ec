"""``log checkpoint``, ``log cosign`` and ``anchor`` with ``--log URL`` against a real
``ailedger serve``: a client never signs the service's checkpoints; a witness cosigns the
checkpoint its mirror verified; the operator (holding the log key) anchors the published
checkpoint from another workspace, and nobody else can."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli import PASSWORD, fails, ok
from _log_util import ALICE, LOG_SIGNER, WITNESS_SIGNER, envelope
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from _workflow_util import NewWorkspace
from ailedger.log import Checkpoint, SignedNote, parse_vkey
from ailedger.workspace import Workspace

SIZE = 3


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    server_workspace(tmp_path / "server")
    args = ("--allow", ALICE.address, "--checkpoint-interval-ms", "20")
    with Service(tmp_path / "server", *args) as served:
        for i in range(SIZE):
            assert post(served, envelope(i))[0] == 201
        wait_for_checkpoint(served, SIZE)
        yield served


@pytest.fixture
def client(new_workspace: NewWorkspace) -> Workspace:
    ws, store = new_workspace("example.com/client")
    store.create("w", PASSWORD, keytype="ed25519")
    store.add("logkey", LOG_SIGNER, PASSWORD)
    store.add("witness", WITNESS_SIGNER, PASSWORD)
    store.add("admin", ALICE, PASSWORD)
    return ws


def test_log_checkpoint_is_refused_against_a_service(client: Workspace, service: Service) -> None:
    out = fails(["log", "checkpoint", "--key", "logkey", "--log", service.url], 3,
                "signs its own checkpoints")  # fmt: skip
    assert len(out.strip().splitlines()) <= 2
    ok(["log", "remote", service.url, "--log-key", LOG_SIGNER.address])
    fails(["log", "checkpoint", "--key", "logkey"], 3, "--log local")
    assert ok(["log", "checkpoint", "--key", "logkey", "--log", "local"])["size"] == 0


def test_log_cosign_witnesses_the_verified_remote_checkpoint(
    client: Workspace, service: Service
) -> None:
    remote = ["--log", service.url]
    fails(["log", "cosign", "--key", "w", *remote], 3, "no trusted log key")
    doc = ok(["log", "cosign", "--key", "w", *remote, "--log-key", LOG_SIGNER.address])
    assert doc["size"] == SIZE
    note = SignedNote.parse(doc["checkpoint"])
    note.verify_one(LOG_KEY)
    note.verify_one(parse_vkey(doc["witness"]))
    assert Checkpoint.parse(note.text).origin == LOG_KEY.name
    # the mirror keeps it; the workspace's own log is untouched
    assert ok(["log", "show", "--log", "local"])["size"] == 0
    # another log key than the one the mirror was verified with is refused
    fails(["log", "cosign", "--key", "w", *remote, "--log-key", ALICE.address], 10,
          "was verified with log key")  # fmt: skip


def test_anchor_the_published_checkpoint_with_the_log_key_only(
    client: Workspace, service: Service
) -> None:
    ok(["chain", "deploy", "--key", "admin"])
    remote = ["--log", service.url, "--log-key", LOG_SIGNER.address]
    refused = ["anchor", "--key", "admin", "--witness-key", "witness", *remote]
    fails(refused, 3, "only its operator", "--anchor-every")
    doc = ok(["anchor", "--key", "logkey", "--witness-key", "witness", *remote])
    assert doc["registered"] is True
    assert (doc["anchor"]["size"], doc["anchor"]["log_signer"]) == (SIZE, LOG_SIGNER.address)
    status = service.request("GET", "/checkpoint")
    published = Checkpoint.parse(SignedNote.parse(status[2].decode()).text)
    assert doc["anchor"]["root"] == published.root.hex()
    # nothing new to anchor: the same checkpoint again is refused by the chain's rules
    fails(["anchor", "--key", "logkey", "--witness-key", "witness", *remote], 10,
          "already anchored")  # fmt: skip
    assert ok(["log", "show", "--log", "local"])["size"] == 0
