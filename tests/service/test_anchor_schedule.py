"""``ailedger serve --anchor-every N``: the service anchors its published checkpoint on-chain
with the witnesses' EIP-712 cosignatures (``POST /v1/anchor-cosign`` on ``witness serve``),
on the embedded chain (which the service opens only while it anchors) and on anvil.

Real processes: one ``serve``, two ``witness serve`` with secp256k1 keys registered as the
LogAnchors witnesses with threshold 2, while publication needs one cosignature only, so that
a witness that is down stops the anchors and not the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _anvil import Anvil
from _cli import fails, ok
from _log_util import ALICE, envelope
from _service import LOG_KEY, ORIGIN, Service, post, server_workspace
from _witness import WitnessProcess, witness_workspace
from ailedger.chain.anchors import LogAnchors, OnChainAnchor
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.eip712 import log_id
from ailedger.log import Checkpoint, SignedNote, parse_vkey
from ailedger.log.checkpoint import Secp256k1Cosigner
from ailedger.service._anchor_cosign import ANCHOR_COSIGN_PATH
from ailedger.service._anchoring import AnchorPending, AnchorSchedule
from ailedger.workspace import Workspace

GUARD = 6000  # polls of 20 ms at most: a guard against a hang, never a timing assertion
BATCH = 5  # entries per checkpoint, and per anchor


@pytest.fixture(
    params=["embedded", "embedded-no-chain-rpc", pytest.param("anvil", marks=pytest.mark.chain)]
)
def rpc(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """``[]`` (the workspace's embedded chain, served at the service's ``/rpc``, through which
    the service anchors and the test reads), ``["--no-chain-rpc"]`` (not served: the service
    opens it per anchor, the test between anchors) or ``["--rpc", URL]`` of the session's
    anvil."""
    if request.param == "anvil":
        anvil: Anvil = request.getfixturevalue("anvil_node")
        yield ["--rpc", anvil.url]
    elif request.param == "embedded-no-chain-rpc":
        yield ["--no-chain-rpc"]
    else:
        yield []


def _home(root: Path) -> dict[str, str | None]:
    return {"AILEDGER_HOME": str(root)}


def _latest(ws: Workspace, rpc: list[str]) -> tuple[OnChainAnchor | None, int]:
    """The log's latest anchor and anchor count, read from the contract (a short read-only
    open of the embedded chain: it waits while the service anchors)."""
    with open_workspace_chain(ws, rpc[1] if rpc else None, read_only=True) as chain:
        address = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        contract = chain.at("LogAnchors", address.address("LogAnchors"), track=False)
        anchors = LogAnchors(chain, contract)
        lid = log_id(ORIGIN, LOG_KEY.address)
        return anchors.latest(lid), anchors.count(lid)


def _published(service: Service) -> Checkpoint | None:
    status, _, body = service.request("GET", "/checkpoint")
    if status == 503:
        return None
    assert status == 200, body
    return Checkpoint.parse(SignedNote.parse(body.decode()).text)


def _wait_published(service: Service, size: int) -> Checkpoint:
    for _ in range(GUARD):
        cp = _published(service)
        if cp is not None and cp.size >= size:
            return cp
        time.sleep(0.02)
    raise AssertionError(f"no published checkpoint of size {size}")


def _wait_anchor(ws: Workspace, rpc: list[str], size: int) -> OnChainAnchor:
    """Poll the workspace's anchor book, then read the anchor back from the chain."""
    book = ws.path / "anchors.json"
    for _ in range(GUARD):
        if book.exists():
            sizes = [a["size"] for a in json.loads(book.read_text()).get(ORIGIN, [])]
            if size in sizes:
                break
        time.sleep(0.02)
    else:
        raise AssertionError(f"no anchor of size {size} in {book}")
    latest, _ = _latest(ws, rpc)
    assert latest is not None
    return latest


def _submit(service: Service, first: int, count: int) -> None:
    for i in range(first, first + count):
        assert post(service, envelope(i))[0] == 201


def test_serve_anchors_the_published_checkpoint(tmp_path: Path, rpc: list[str]) -> None:
    server = tmp_path / "server"
    ws = server_workspace(server)
    home = _home(server)
    chain = [a for a in rpc if a != "--no-chain-rpc"]  # where `chain deploy` finds the chain
    ok(["chain", "deploy", "--key", "logkey", *chain], env=home)
    roots = [tmp_path / "w1", tmp_path / "w2"]
    for root in roots:
        witness_workspace(root, "secp256k1")
    w1 = WitnessProcess(roots[0], [LOG_KEY]).start()
    w2 = WitnessProcess(roots[1], [LOG_KEY]).start()
    addresses = []
    for w in (w1, w2):
        key = parse_vkey(w.vkey)
        assert isinstance(key, Secp256k1Cosigner)
        addresses.append(key.address)
    # the log is registered with both witnesses, threshold 2; publication needs one of them
    with open(ws.config_path, "a", encoding="utf-8") as f:
        f.write(f"\n[anchor]\nwitnesses = {json.dumps(addresses)}\nthreshold = 2\n")
        f.write(f"\n[serve]\nanchor_every = {BATCH}\n")  # as --anchor-every {BATCH}
    service = Service(
        server,
        "--allow",
        ALICE.address,
        "--checkpoint-entries",
        str(BATCH),
        "--checkpoint-interval-ms",
        "600000",
        "--witness",
        w1.spec,
        "--witness",
        w2.spec,
        "--witness-threshold",
        "1",
        *rpc,
    )
    try:
        service.start()
        # the chain as the test reads it: the service's own /rpc while it holds the embedded one
        reads = chain or ([] if rpc else ["--rpc", f"{service.url}/rpc"])
        _submit(service, 0, BATCH)
        published = _wait_published(service, BATCH)
        anchor = _wait_anchor(ws, reads, BATCH)
        assert (anchor.index, anchor.size, anchor.root) == (0, published.size, published.root)
        assert anchor.cosignatures == 2
        assert anchor.consistency_proven

        # a witness down: the log still publishes (k = 1), but no anchor (2 needed)
        port = w2.url.rsplit(":", 1)[1]
        w2.stop(signal.SIGKILL)
        _submit(service, BATCH, BATCH)
        assert _wait_published(service, 2 * BATCH).size == 2 * BATCH
        service.wait_stderr(f"1 of 2 witness anchor cosignatures needed for size {2 * BATCH}")
        latest, count = _latest(ws, reads)
        assert (latest is not None and latest.size, count) == (BATCH, 1)

        # the witness returns: it cosigns the next checkpoint, which is anchored with the
        # consistency proof from the last anchor
        w2 = WitnessProcess(roots[1], [LOG_KEY], "--port", port).start()
        _submit(service, 2 * BATCH, BATCH)
        published = _wait_published(service, 3 * BATCH)
        anchor = _wait_anchor(ws, reads, 3 * BATCH)
        assert (anchor.index, anchor.size, anchor.root) == (1, published.size, published.root)
        assert anchor.cosignatures == 2
        assert anchor.consistency_proven

        # a receipt the service serves is covered by that anchor: `verify receipt` sees it
        status, _, body = service.request("GET", "/v1/receipts/12")
        assert status == 200
        receipt = tmp_path / "r.json"
        receipt.write_bytes(body)
        where = reads or ["--rpc", "workspace"]
        args = ["verify", "receipt", receipt, "--log-key", LOG_KEY.address, *where]
        checked: dict[str, Any] = ok(args, env=home)
        assert checked["anchor_verified"]["anchor"]["size"] == 3 * BATCH
        assert checked["anchor_verified"]["consistency_proven"] is True
    finally:
        service.stop()
        w1.stop()
        w2.stop()


def test_witness_cosigns_anchors_only_for_its_latest_checkpoint(tmp_path: Path) -> None:
    """``POST /v1/anchor-cosign`` signs what the witness verified and stored, nothing else."""
    from _log_util import LOG_SIGNER
    from _witness import add_checkpoint, sign
    from ailedger.chain.anchoring import Eip712Cosignature
    from ailedger.log import TransparencyLog
    from ailedger.log.checkpoint import Secp256k1NoteKey

    root = tmp_path / "w"
    witness_workspace(root, "secp256k1")
    contract = "0x" + "ab" * 20
    with (
        WitnessProcess(root, [LOG_KEY]) as w,
        TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log,
    ):
        signer = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)
        log.append_many([envelope(i) for i in range(3)])
        note = sign(log, signer)

        def ask(n: SignedNote, **extra: Any) -> tuple[int, dict[str, Any]]:
            doc = {"checkpoint": n.format(), "chain_id": 31337, "contract": contract, **extra}
            status, _, body = w.request("POST", ANCHOR_COSIGN_PATH, json.dumps(doc).encode())
            return status, json.loads(body)

        assert ask(note)[0] == 409  # not cosigned yet
        assert add_checkpoint(w, 0, (), note)[0] == 200
        status, doc = ask(note)
        assert status == 200, doc
        cosig = Eip712Cosignature.from_dict(doc)  # checks the signature
        key = parse_vkey(w.vkey)
        assert isinstance(key, Secp256k1Cosigner)
        assert (cosig.signer, cosig.size, cosig.contract.lower()) == (key.address, 3, contract)
        assert cosig.log_signer == LOG_SIGNER.address
        # another root of the same size, a larger tree, a stranger's signature: refused
        log.append_many([envelope(3)])
        assert ask(sign(log, signer))[0] == 409
        stranger = Secp256k1NoteKey.from_signer(ORIGIN, ALICE)
        assert ask(sign(log, stranger, 3))[0] == 403
        assert ask(note, extra=1)[0] == 400
        status, _, _ = w.request("POST", ANCHOR_COSIGN_PATH, b"not json")
        assert status == 400


def test_anchoring_options_are_checked_at_start(tmp_path: Path) -> None:
    server = tmp_path / "server"
    server_workspace(server)
    home = _home(server)
    base = ["serve", "--allow", ALICE.address, "--port", "0"]
    fails([*base, "--anchor-every", "3"], 3, "witnesses with secp256k1 keys", env=home)
    fails([*base, "--anchor-key", "logkey"], 3, "--anchor-every", env=home)
    (server / ".ailedger" / "config.toml").open("a").write("\n[serve]\nanchor_interval = -1\n")
    fails(base, 6, "anchor_interval must be a number > 0", env=home)


# --- the schedule itself, in process, with a fake chain -----------------------------------


class _FakeJob:
    """Records what the schedule asks; fails the first ``failures`` anchors."""

    def __init__(self, failures: int = 0) -> None:
        self.anchored: list[int] = []
        self.failures = failures

    def anchored_size(self) -> int:
        return 0

    def anchor(self, note: SignedNote) -> int:
        size = Checkpoint.parse(note.text).size
        if self.failures:
            self.failures -= 1
            raise AnchorPending(f"1 of 2 witness anchor cosignatures needed for size {size}")
        self.anchored.append(size)
        return size


def _note(size: int) -> SignedNote:
    from _log_util import LOG_SIGNER
    from ailedger.log.checkpoint import Secp256k1NoteKey

    body = Checkpoint(ORIGIN, size, bytes([size % 256]) * 32).body()
    return SignedNote.sign(body, [Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)])


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(GUARD):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def test_schedule_anchors_every_n_entries() -> None:
    async def scenario() -> list[int]:
        job = _FakeJob()
        state: dict[str, SignedNote | None] = {"note": None}
        changed = asyncio.Event()
        schedule = AnchorSchedule(job, lambda: state["note"], changed, every=4)

        def publish(size: int) -> None:
            state["note"] = _note(size)
            changed.set()

        await schedule.start()
        for size in (1, 3, 4, 5, 7, 9):  # due at 4 (4 past 0) and at 9 (5 past 4), not between
            publish(size)
            await _until(lambda: not changed.is_set())
        await _until(lambda: job.anchored[-1:] == [9])
        await schedule.stop()
        return job.anchored

    assert asyncio.run(scenario()) == [4, 9]


def test_schedule_interval_and_retry_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[int]:
        job = _FakeJob(failures=3)
        changed = asyncio.Event()
        note = _note(2)  # never N entries: only the interval makes it due
        schedule = AnchorSchedule(
            job, lambda: note, changed, every=1000, interval=0.05, retry_s=0.01
        )
        await schedule.start()
        await _until(lambda: job.anchored == [2])
        await schedule.stop()
        return job.anchored

    with caplog.at_level(logging.WARNING, logger="ailedger.service"):
        assert asyncio.run(scenario()) == [2]
    failures = [r for r in caplog.records if "anchoring failed" in r.getMessage()]
    assert len(failures) == 1  # three identical failures, logged once
