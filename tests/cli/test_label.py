"""``ailedger label ...`` on the embedded chain, through the real entry point: a requester posts
a task over a JSONL batch with a hidden gold set, two labelers stake, join, commit and reveal,
the requester reveals the gold and scores them, settles and the accurate labeler claims; each
refusal is one decoded line with a hint (exit 9). Deadlines pass by moving the chain's clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ailedger.cli._chain
import ailedger.cli._label
import ailedger.cli._stake  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok
from _log_util import ALICE
from _workflow_util import NewWorkspace
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.stake import Token
from ailedger.identity.keys import Secp256k1Signer
from ailedger.workspace import Workspace

ETH = 10**18
BOB = Secp256k1Signer(bytes.fromhex("78" * 32))
CAROL = Secp256k1Signer(bytes.fromhex("79" * 32))
GOLD = [[1, 3], [4, 5], [7, 0]]
WINDOW = 100


def advance(ws: Workspace, seconds: int) -> None:
    """Mine a block ``seconds`` later on the workspace's embedded chain."""
    with open_workspace_chain(ws) as chain:
        target = chain.block_timestamp() + seconds
        request: Any = chain.w3.provider.make_request  # type: ignore[union-attr]
        request("testing_timeTravel", [target])
        request("evm_mine", [1])


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> tuple[Workspace, str]:
    ws, store = new_workspace("example.com/cli-label")
    store.add("admin", ALICE, PASSWORD)
    store.add("bob", BOB, PASSWORD)
    store.add("carol", CAROL, PASSWORD)
    ok(["chain", "deploy", "--key", "admin", "--unbonding-delay", "1"])
    with open_workspace_chain(ws) as chain:
        chain.fund(ALICE.address, 10 * ETH)
        token = chain.deploy(
            "ConsortiumToken", "Consortium", "CON", ALICE.address, 10**6 * ETH, signer=ALICE
        )
        for who in (BOB, CAROL):
            Token(chain, token).transfer(who.address, 100 * ETH, signer=ALICE)
    advance(ws, 3)  # past the StakeManager's governance delay: the market is active
    with (tmp_path / "batch.jsonl").open("w") as fh:
        for i in range(10):
            fh.write(json.dumps({"item": i, "pixels": [i] * 4}) + "\n")
    (tmp_path / "gold.json").write_text(json.dumps(GOLD))
    right = [0] * 10
    for item, label in GOLD:
        right[item] = label
    (tmp_path / "bob.json").write_text(json.dumps(right))
    (tmp_path / "carol.json").write_text(json.dumps([(v + 1) % 10 for v in right]))
    return ws, token.address


def test_a_task_from_post_to_claim(ws: tuple[Workspace, str]) -> None:
    workspace, token = ws
    task = ok(
        [
            "label", "task", "--batch", "batch.jsonl", "--gold", "gold.json", "--token", token,
            "--pool", "100", "--min-stake", "10", "--threshold", "0.6", "--window", WINDOW,
            "--key", "admin",
        ]
    )  # fmt: skip
    assert (task["task"], task["item_count"], task["gold_count"]) == (1, 10, 3)
    assert task["pool"] == 100 * ETH
    fails(["label", "join", "1", "--key", "bob"], 9, "InsufficientFree", "hint:")
    for who in ("bob", "carol"):
        ok(["stake", "deposit", "20", "--token", token, "--key", who])
    ok(["label", "join", "1", "--key", "bob"])
    ok(["label", "commit", "1", "--labels", "bob.json", "--key", "bob"])
    joined = ok(["label", "join", "1", "--labels", "carol.json", "--key", "carol"])
    assert joined["commitment"].startswith("0x")  # joined and committed in one transaction
    fails(["label", "join", "1", "--key", "admin"], 9, "RequesterCannotLabel", "hint:")
    fails(["label", "reveal", "1", "--key", "bob"], 9, "TooEarly", "hint:")
    fails(["label", "score", "1", "--key", "admin"], 9, "TooEarly")
    advance(workspace, WINDOW + 1)
    for who in ("bob", "carol"):
        ok(["label", "reveal", "1", "--key", who])
    fails(["label", "settle", "1", "--key", "admin"], 9, "TooEarly")
    advance(workspace, WINDOW + 1)
    scores = ok(["label", "score", "1", "--key", "admin"])["scores"]
    assert scores == {BOB.address: 3, CAROL.address: 0}
    settled = ok(["label", "settle", "1", "--key", "admin"])
    by = {r["labeler"]: r for r in settled["labelers"]}
    assert by[BOB.address]["outcome"] == "paid"
    assert by[BOB.address]["amount"] == 100 * ETH
    assert by[CAROL.address]["outcome"] == "low-accuracy"
    assert by[CAROL.address]["amount"] == 10 * ETH
    assert settled["to_requester"] == 0
    fails(["label", "settle", "1", "--key", "admin"], 9, "AlreadySettled")
    assert ok(["label", "claim", "--token", token, "--key", "bob"])["claimed"] == 100 * ETH
    fails(["label", "claim", "--token", token, "--key", "bob"], 9, "NothingOwed")
    status = ok(["label", "status", "1"])
    assert status["settled"] is True
    assert status["labelers"][CAROL.address]["correct"] == 0
    fails(["label", "status", "7"], 4, "no task 7")
    stake = ok(["stake", "status", "--key", "carol", "--token", token])["stake"]
    assert stake["slashed"] == 10 * ETH


def test_bad_labels_and_gold_files_are_one_line(ws: tuple[Workspace, str], tmp_path: Path) -> None:
    _, token = ws
    (tmp_path / "bad-gold.json").write_text(json.dumps([[50, 1]]))
    base = ["label", "task", "--batch", "batch.jsonl", "--token", token, "--pool", "1"]
    base += ["--min-stake", "1", "--key", "admin"]
    fails([*base, "--gold", "bad-gold.json"], 3, "outside the batch")
    fails([*base, "--gold", "nope.json"], 3, "no gold file")
    ok([*base, "--gold", "gold.json"])
    (tmp_path / "short.json").write_text("[1, 2]")
    ok(["stake", "deposit", "5", "--token", token, "--key", "bob"])
    ok(["label", "join", "1", "--key", "bob"])
    fails(["label", "commit", "1", "--labels", "short.json", "--key", "bob"], 3, "10 labels")
    fails(["label", "reveal", "1", "--key", "bob"], 4, "no commitment")
