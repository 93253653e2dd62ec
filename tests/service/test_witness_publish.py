"""``ailedger serve --witness URL=VKEY --witness-threshold K``: a checkpoint is published only
with K valid cosignatures, which land in the log for `log verify` and receipts; with a
witness down, publication stalls (entries are still acknowledged) and resumes on its return."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from _cli import fails, ok
from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, post, server_workspace
from _witness import WitnessProcess, witness_workspace
from ailedger.log import (
    Checkpoint,
    Ed25519Cosigner,
    SignedNote,
    TransparencyLog,
    parse_vkey,
    vkey,
)

GUARD = 12000  # polls of 10 ms at most: a guard against a hang, never a timing assertion


def _published(service: Service) -> SignedNote | None:
    status, _, body = service.request("GET", "/checkpoint")
    if status == 503:
        return None
    assert status == 200, body
    return SignedNote.parse(body.decode())


def _wait_published(service: Service, size: int) -> SignedNote:
    for _ in range(GUARD):
        note = _published(service)
        if note is not None and Checkpoint.parse(note.text).size >= size:
            return note
        time.sleep(0.01)
    raise AssertionError(f"no published checkpoint of size {size}")


def _cosigners(note: SignedNote, witnesses: list[WitnessProcess]) -> int:
    n = 0
    for w in witnesses:
        note.verify_one(parse_vkey(w.vkey))  # raises if absent or wrong
        n += 1
    return n


def test_publishes_with_two_cosignatures_and_stalls_without(tmp_path: Path) -> None:
    server = tmp_path / "server"
    server_workspace(server)
    w1_root, w2_root = tmp_path / "w1", tmp_path / "w2"
    witness_workspace(w1_root, "ed25519")
    witness_workspace(w2_root, "secp256k1")
    w1 = WitnessProcess(w1_root, [LOG_KEY]).start()
    w2 = WitnessProcess(w2_root, [LOG_KEY]).start()
    service = Service(
        server,
        "--allow",
        ALICE.address,
        "--checkpoint-interval-ms",
        "20",
        "--witness",
        w1.spec,
        "--witness",
        w2.spec,
        "--witness-threshold",
        "2",
    )
    try:
        service.start()
        for i in range(5):
            assert post(service, envelope(i))[0] == 201
        note = _wait_published(service, 5)
        assert _cosigners(note, [w1, w2]) == 2
        note.verify_one(LOG_KEY)

        # the receipt the service serves carries both cosignatures: verify it offline with k=2
        status, _, body = service.request("GET", "/v1/receipts/3")
        assert status == 200
        receipt = tmp_path / "r.json"
        receipt.write_bytes(body)
        keys = ["--witness-key", w1.vkey, "--witness-key", w2.vkey]
        args = ["verify", "receipt", receipt, "--log-key", LOG_KEY.address]
        checked = ok([*args, *keys, "--witness-threshold", "2"])
        assert sorted(checked["witnesses"]) == sorted([w1.ready["name"], w2.ready["name"]])

        # one witness down: entries are acknowledged, publication stalls at k=2
        port = w2.url.rsplit(":", 1)[1]
        w2.stop(signal.SIGKILL)
        for i in range(5, 9):
            assert post(service, envelope(i))[0] == 201
        service.wait_stderr("of 2 witness cosignatures needed: not published")
        stalled = _published(service)
        assert stalled is not None
        assert Checkpoint.parse(stalled.text).size == 5
        assert service.request("GET", "/v1/entries/7")[0] == 404  # not covered yet

        # the witness returns (same port, same state): publication resumes
        w2 = WitnessProcess(w2_root, [LOG_KEY], "--port", port).start()
        note = _wait_published(service, 9)
        assert _cosigners(note, [w1, w2]) == 2
        assert service.request("GET", "/v1/entries/7")[0] == 200
        # the cosignatures are in the log: `log verify` sees them (a stranger's key does not
        # make up a threshold)
        home = {"AILEDGER_HOME": str(server)}
        keys = ["--witness-key", w1.vkey, "--witness-key", w2.vkey]
        report = ok(["log", "verify", *keys, "--witness-threshold", "2"], env=home)
        assert report["cosignatures_checked"] >= 4
        assert sorted(report["witnesses"]) == sorted([w1.ready["name"], w2.ready["name"]])
        stranger = vkey(Ed25519Cosigner.generate("witness/stranger"))
        fails(
            ["log", "verify", *keys, "--witness-key", stranger, "--witness-threshold", "3"],
            1,
            "witness-cosignatures-insufficient",
            env=home,
        )

        # restarted while a witness is down: it serves the last cosigned checkpoint it stored,
        # and acknowledges new entries without publishing them
        service.stop()
        w2.stop(signal.SIGKILL)
        service.start()
        restarted = _published(service)
        assert restarted is not None
        assert Checkpoint.parse(restarted.text).size == 9
        assert _cosigners(restarted, [w1, w2]) == 2
        assert post(service, envelope(9))[0] == 201
        service.wait_stderr("of 2 witness cosignatures needed: not published")
        assert _published(service) == restarted
    finally:
        service.stop()
        w1.stop()
        w2.stop()

    # the latest checkpoint (size 10) was never cosigned: a threshold on it fails, while the
    # log itself (entries, tree, every signature and cosignature) verifies
    with TransparencyLog.open(server / ".ailedger" / "log.sqlite", read_only=True) as log:
        assert Checkpoint.parse(log.latest_checkpoint().text).size == 10
        assert len(log.witness_keys()) == 2
    fails(
        ["log", "verify", *keys, "--witness-threshold", "1"],
        1,
        "witness-cosignatures-insufficient",
        env=home,
    )
    assert ok(["log", "verify"], env=home)["cosignatures_checked"] >= 4
