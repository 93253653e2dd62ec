"""``ailedger vouch ...`` on the embedded chain, through the real entry point: `chain deploy`
deploys DatasetVouching and registers it with the StakeManager; the owner lists iris (as a
root of a registered model version), a curator stakes and vouches, a challenger audits with
the sample size the bound gives, the owner answers from the data, the audit settles (passed,
curators rewarded); the bound is printed; every refusal is one decoded line with a hint."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import sklearn.datasets

import ailedger.cli._chain
import ailedger.cli._stake
import ailedger.cli._vouch  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok
from _log_util import ALICE
from _workflow_util import NewWorkspace
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.membership import Membership
from ailedger.chain.registry import ModelRegistry
from ailedger.chain.stake import Token
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer
from ailedger.workspace import Workspace

ETH = 10**18
TRAINER = Secp256k1Signer(bytes.fromhex("71" * 32))
CURATOR = Secp256k1Signer(bytes.fromhex("72" * 32))
CHALLENGER = Secp256k1Signer(bytes.fromhex("73" * 32))
IRIS = Path(sklearn.datasets.__file__).parent / "data" / "iris.csv"


def test_bound_is_printed() -> None:
    doc = ok(["vouch", "bound", "--bad", "0.05", "--risk", "0.01", "--size", "150"])
    assert (doc["k"], doc["k_without_replacement"]) == (90, 65)
    assert doc["miss_probability"] <= 0.01
    out = fails(["vouch", "bound", "--bad", "0", "--risk", "0.01"], 3, "(0, 1)")
    assert len([line for line in out.splitlines() if line.strip()]) == 1


@pytest.fixture
def world(new_workspace: NewWorkspace, tmp_path: Path) -> tuple[Workspace, str, str, Path]:
    """A deployed workspace; a trainer's model version with iris as its dataset root; a
    token the trainer, curator and challenger hold. (workspace, version id, token, data)"""
    ws, store = new_workspace("example.com/cli-vouch")
    for name, key in (("admin", ALICE), ("trainer", TRAINER), ("curator", CURATOR)):
        store.add(name, key, PASSWORD)
    store.add("challenger", CHALLENGER, PASSWORD)
    ok(["chain", "deploy", "--key", "admin", "--unbonding-delay", "1"])
    data = tmp_path / "iris.csv"
    shutil.copy(IRIS, data)
    fp = fingerprint_dataset(data, secret=None)
    dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).all()[0]
    with open_workspace_chain(ws) as chain:
        for who in (ALICE, TRAINER, CURATOR, CHALLENGER):
            chain.fund(who.address, 10 * ETH)
        membership = Membership(chain, dep.open(chain, "Membership"))
        registry = ModelRegistry(chain, dep.open(chain, "ModelRegistry"))
        membership.create_org("iris-lab", ALICE.address, signer=ALICE)
        membership.enrol("iris-lab", TRAINER, "trainer", signer=ALICE)
        registry.register_version(
            "iris-model", "1", b"\x01" * 32, b"\x02" * 32, [fp.root], signer=TRAINER
        )
        org = membership.org_of(TRAINER.address)
        version = bytes(chain.call(registry.contract, "versionIdOf", org, "iris-model", "1"))
        supply = 10**6 * ETH
        token_c = chain.deploy(
            "ConsortiumToken", "Consortium", "CON", ALICE.address, supply, signer=ALICE
        )
        token = Token(chain, token_c)
        for who in (TRAINER, CURATOR, CHALLENGER):
            token.transfer(who.address, 1_000 * ETH, signer=ALICE)
    time.sleep(2.5)  # the governance delay (twice the 1 s unbonding delay) has passed
    return ws, "0x" + version.hex(), token.address, data


def test_list_vouch_audit_answer_settle(world: tuple[Workspace, str, str, Path]) -> None:
    _, version, token, data = world
    listed = ok([
        "vouch", "list", version, "--dataset", data, "--unsalted", "--token", token,
        "--bond", "10", "--reward", "0", "--min-vouch", "1", "--key", "trainer",
        "--answer-window", "3600", "--dispute-window", "1", "--min-length", "20",
        "--max-length", "40", "--prefix", '["', "--label-prefix", ',"', "--label-suffix", '"]',
        "--label-max", "2",
    ])  # fmt: skip
    dataset = listed["dataset_id"]
    assert listed["terms"]["size"] == 150
    assert listed["terms"]["salt_length"] == 0
    ok(["stake", "deposit", "100", "--token", token, "--key", "curator"])
    doc = ok(["vouch", "stake", dataset, "50", "--dataset", data, "--unsalted", "--key", "curator"])
    assert doc["vouched"] == 50 * ETH
    fails(["vouch", "stake", dataset, "500", "--key", "curator"], 9, "InsufficientFree", "hint:")
    opened = ok([
        "vouch", "audit", "open", dataset, "--bad", "0.1", "--risk", "0.05",
        "--key", "challenger",
    ])  # fmt: skip
    assert opened["bound"]["k"] == opened["audit"]["k"] == 29
    audit = str(opened["audit"]["audit_id"])
    out = fails(["vouch", "audit", "draw", audit, "--key", "challenger"], 9, "SeedNotMined")
    assert len([line for line in out.splitlines() if line.strip()]) == 2  # error + hint
    fails(["vouch", "stake", dataset, "1", "--key", "curator"], 9, "AuditOpen", "hint:")
    ok(["stake", "deposit", "1", "--token", token, "--key", "curator"])  # mines the seed block
    drawn = ok(["vouch", "audit", "draw", audit, "--key", "challenger"])
    assert drawn["drawn"]
    assert len(drawn["indices"]) == 29
    fails(["vouch", "audit", "answer", audit, "--dataset", data, "--unsalted",
           "--key", "curator"], 9, "NotOwner")  # fmt: skip
    answered = ok(
        ["vouch", "audit", "answer", audit, "--dataset", data, "--unsalted", "--key", "trainer"]
    )
    assert answered["passed"]
    assert answered["indices"] == drawn["indices"]
    time.sleep(2.1)  # the 1 s dispute window
    ok(["stake", "deposit", "1", "--token", token, "--key", "curator"])  # mines a later block
    settled = ok(["vouch", "audit", "settle", audit, "--key", "challenger"])
    assert settled["audit"]["status"] == "passed"
    status = ok(["vouch", "status", "--audit", audit])
    assert status["audit"]["status"] == "passed"
    assert status["reason"] is None
    claimed = ok(["vouch", "claim", "--token", token, "--key", "curator"])
    assert claimed["claimed"] == 10 * ETH  # the challenger's bond: one curator takes it all
    info = ok(["vouch", "status", "--dataset-id", dataset])
    assert info["vouches"] == {CURATOR.address: 50 * ETH}
    fails(["vouch", "status"], 3, "exactly one of")
    fails(["vouch", "unstake", dataset, "1", "--key", "curator"], 9, "UnvouchNotDue", "hint:")
    assert ok(["vouch", "request-unstake", dataset, "--key", "curator"])["unstake_from"] > 0
