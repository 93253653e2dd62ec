"""``ailedger status [--repair]`` (issue 11 item 10) on the embedded chain and on anvil.

A deploy killed (SIGKILL, in a child process) between the log append and the chain
transaction leaves the log saying v2 serves and the contract v1: ``status`` reports it with
exit 12, the chain-backed commands warn (and refuse a deploy or rollback that would skip the
logged step), ``status --repair`` replays the deploy from the log, and the contract then
serves v2. A deploy on the chain with no log entry is reported and never repaired. Without a
chain, only the log and the index are compared, and the output says so.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _cli import PASSWORD, run
from _workflow_util import Setup, variant
from ailedger.chain import ANVIL_CHAIN_ID, Chain, connect_rpc, open_embedded
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.registry import version_key
from ailedger.identity.keys import Secp256k1Signer
from ailedger.registry._chain import ChainBackend
from ailedger.registry.status import _match

POLICY = """\
version = 1
[all]
artifact_must_match = true
[env.prod]
min_organisations = 2
[env.prod.approvals]
qa = 1
auditor = 1
"""
V1, V2 = version_key("acme", "triage", "1.0"), version_key("acme", "triage", "2.0")

#: ``ailedger ARGS`` in a child process whose ChainBackend.deploy kills the process: the
#: deployment statement is in the log, the transaction never sent.
_KILLED_DEPLOY = """
import os, signal, sys
from ailedger.registry._chain import ChainBackend

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

ChainBackend.deploy = killed
from ailedger.cli._app import main
main(sys.argv[1:])
"""


class World:
    """A workspace with contracts on one chain: trainer and qa in acme, the auditor in
    globex, the admin deploys; triage@1.0 and @2.0 registered and approved, 1.0 in prod."""

    def __init__(self, setup: Setup, rpc: str | None) -> None:
        self.setup = setup
        self.rpc = rpc
        self.policy = setup.root / "chain-policy.toml"
        self.policy.write_text(POLICY)

    def run(self, *args: object) -> Any:
        env = {"AILEDGER_RPC_URL": self.rpc} if self.rpc else None
        return run(list(args), env=env)

    def ok(self, *args: object) -> dict[str, Any]:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert isinstance(doc, dict)
        return doc

    def status(self, *args: object, code: int) -> dict[str, Any]:
        result = self.run("status", *args, "--json")
        assert result.exit_code == code, result.output
        doc = json.loads(result.stdout)
        assert isinstance(doc, dict)
        return doc

    def build(self) -> None:
        setup = self.setup
        setup.store.create("admin", PASSWORD)
        setup.store.create("auditor", PASSWORD, org="globex")
        setup.grant("admin", "deployer")  # for the deploys through --backend local
        addr = {k.name: k.keyid for k in setup.store.list_keys()}
        self.ok("chain", "deploy", "--key", "admin")
        for who, org, by in (("trainer", "acme", "admin"), ("qa", "acme", "trainer"),
                             ("auditor", "globex", "admin")):  # fmt: skip
            self.ok("chain", "grant", addr[who], "--org", org, "--role", who, "--key", by,
                    "--consent-key", who)  # fmt: skip
        self.ok("dataset", "register", setup.data, "--name", "patients", "--version", "1",
                "--key", "trainer")  # fmt: skip
        v2 = variant(setup, "model2", '{"v": 2}')
        for version, path in (("1.0", setup.model), ("2.0", v2)):
            self.ok("model", "register", path, "--name", "triage", "--version", version,
                    "--dataset", "patients@1", "--key", "trainer")  # fmt: skip
            self.ok("approve", f"triage@{version}", "--role", "qa", "--key", "qa")
            self.ok("approve", f"triage@{version}", "--role", "auditor", "--key", "auditor")
        self.deploy("1.0")

    def deploy(self, version: str) -> dict[str, Any]:
        return self.ok("deploy", f"triage@{version}", "--env", "prod", "--key", "admin",
                       "--policy", self.policy)  # fmt: skip

    def killed_deploy(self, version: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("AILEDGER_HOME",)}
        env["AILEDGER_PASSWORD"] = PASSWORD
        env.pop("AILEDGER_RPC_URL", None)
        if self.rpc:
            env["AILEDGER_RPC_URL"] = self.rpc
        args = ["deploy", f"triage@{version}", "--env", "prod", "--key", "admin",
                "--policy", str(self.policy)]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", _KILLED_DEPLOY, *args],
            cwd=self.setup.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == -9, done.stderr

    @contextmanager
    def chain(self) -> Iterator[tuple[Chain, ChainBackend]]:
        """The chain opened outside the CLI, with the registry backend over its contracts."""
        if self.rpc:
            chain = connect_rpc(self.rpc, chain_id=ANVIL_CHAIN_ID)
        else:
            chain = open_embedded(self.setup.ws.path / "chain")
        with chain:
            dep = DeploymentBook(self.setup.ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
            yield chain, ChainBackend.from_deployment(chain, dep, owner_org="acme")

    def serving(self) -> bytes | None:
        with self.chain() as (_, backend):
            return backend.registry.current("prod")


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def world(request: pytest.FixtureRequest, setup: Setup) -> World:
    rpc = request.getfixturevalue("anvil_node").url if request.param == "anvil" else None
    w = World(setup, rpc)
    w.build()
    return w


def _kinds(doc: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in doc["findings"])


def test_a_deploy_killed_between_the_log_and_the_chain_is_reported_and_repaired(
    world: World,
) -> None:
    w = world
    clean = w.status(code=0)
    assert clean["in_step"]
    assert clean["chain"]["checked"]
    assert w.serving() == V1

    w.killed_deploy("2.0")
    # the issue: log, trace and gate say 2.0 serves; the contract says 1.0
    trace = w.ok("trace", "--env", "prod")
    assert trace["model"] == "triage@2.0"
    assert w.serving() == V1

    doc = w.status(code=12)
    assert not doc["in_step"]
    assert _kinds(doc) == ["chain-event-missing", "serving-differs"]
    assert all(f["repairable"] for f in doc["findings"])
    text = w.run("status")
    assert text.exit_code == 12
    assert "prod: the log says triage@2.0 serves" in text.output
    assert "the chain says triage@1.0 [repairable]" in text.output
    assert "hint: ailedger status --repair" in text.output

    # chain-backed reads warn (one line) and still answer; a rollback that would skip the
    # logged step is refused
    gate = w.run("gate", "triage@2.0", "--policy", w.policy, "--env", "prod")
    assert gate.exit_code == 0, gate.output
    warnings = [line for line in gate.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "ailedger status --repair" in warnings[0]
    audit = w.run("audit", "report", "--out", w.setup.root / "audit", "--chain-check")
    assert audit.exit_code == 0, audit.output
    assert audit.stderr.count("warning: out of step: prod:") == 1
    refused = w.run("rollback", "--env", "prod", "--key", "admin", "--to", "triage@1.0")
    assert refused.exit_code == 12, refused.output
    assert "status --repair" in refused.output
    assert w.serving() == V1

    repaired = w.status("--repair", code=0)
    assert repaired["in_step"]
    assert any("deploy triage@2.0 in prod" in step for step in repaired["repaired"])
    assert w.serving() == V2
    again = w.status("--repair", code=0)  # idempotent: nothing left to do
    assert again["repaired"] == []
    assert w.status(code=0)["in_step"]
    gate = w.run("gate", "triage@2.0", "--policy", w.policy, "--env", "prod")
    assert "warning:" not in gate.stderr


def test_a_chain_deploy_the_log_does_not_explain_is_reported_never_repaired(
    world: World,
) -> None:
    w = world
    admin = w.setup.store.signer("admin", PASSWORD)
    assert isinstance(admin, Secp256k1Signer)
    with w.chain() as (_, backend):
        info = backend.registry.version(V2)
        assert info is not None
        backend.registry.deploy("prod", V2, info.subject_digest, signer=admin)  # no log entry
    doc = w.status(code=12)
    kinds = _kinds(doc)
    assert "chain-event-unexplained" in kinds
    assert "serving-differs" in kinds
    assert not any(f["repairable"] for f in doc["findings"])
    repaired = w.status("--repair", code=12)
    assert repaired["repaired"] == []
    assert w.serving() == V2  # left as found: only the log's steps are replayed
    out = w.run("status")
    assert "has no log entry [not repairable]" in out.output
    assert "for a person to look into" in out.output
    # a deploy that would build on the unexplained state is refused
    refused = w.run("deploy", "triage@2.0", "--env", "prod", "--key", "admin",
                    "--policy", w.policy)  # fmt: skip
    assert refused.exit_code == 12, refused.output
    assert "does not explain" in refused.output
    assert "status --repair" not in refused.output
    gate = w.run("gate", "triage@1.0", "--policy", w.policy, "--env", "prod")
    assert gate.exit_code == 0, gate.output
    assert "run `ailedger status`" in gate.stderr


def test_registration_and_approval_missing_on_chain_are_replayed(world: World) -> None:
    """A model registered and approved through the local backend (the chain never told):
    the log proves both, so the repair sends them, each by the key that signed it."""
    w = world
    v3 = variant(w.setup, "model3", '{"v": 3}')
    w.ok("model", "register", v3, "--name", "triage", "--version", "3.0",
         "--dataset", "patients@1", "--key", "trainer", "--backend", "local")  # fmt: skip
    w.setup.grant("qa", "qa")
    w.ok("approve", "triage@3.0", "--role", "qa", "--key", "qa", "--backend", "local")
    doc = w.status(code=12)
    assert _kinds(doc) == ["chain-approval-missing", "chain-registration-missing"]
    w.status("--repair", code=0)
    with w.chain() as (_, backend):
        vid = version_key("acme", "triage", "3.0")
        assert backend.registry.version(vid) is not None
        assert backend.registry.approval_count(vid, "qa") == 1


def test_a_write_warns_about_the_version_it_touches(world: World) -> None:
    """A deprecation only the log took: registering that version again (a retry, signs
    nothing) succeeds and prints one warning naming it and the repair."""
    w = world
    w.ok("deprecate", "triage@2.0", "--reason", "recall", "--key", "trainer",
         "--backend", "local")  # fmt: skip
    again = w.run("model", "register", w.setup.root / "model2", "--name", "triage",
                  "--version", "2.0", "--dataset", "patients@1", "--key", "trainer")  # fmt: skip
    assert again.exit_code == 0, again.output
    warnings = [line for line in again.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: out of step: triage@2.0: deprecated in the log (entry 8), not on the "
        "chain; run `ailedger status --repair`"
    ]
    w.status("--repair", code=0)
    again = w.run("model", "register", w.setup.root / "model2", "--name", "triage",
                  "--version", "2.0", "--dataset", "patients@1", "--key", "trainer")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "warning:" not in again.stderr


LOCAL_POLICY = """\
version = 1
[env.prod.approvals]
qa = 1
"""


def test_trailing_steps_are_replayed_in_log_order(world: World) -> None:
    """Killed deploy of 2.0, then a rollback to 1.0 and a deprecation of 2.0 that only the
    log took (local backend): the contract serves 1.0 either way, but its history lacks
    both steps; the repair replays deploy, rollback and deprecation in log order."""
    w = world
    w.killed_deploy("2.0")
    w.ok("rollback", "--env", "prod", "--key", "admin", "--backend", "local")
    w.ok("deprecate", "triage@2.0", "--reason", "recall", "--key", "trainer",
         "--backend", "local")  # fmt: skip
    doc = w.status(code=12)
    assert _kinds(doc) == [
        "chain-deprecation-missing",
        "chain-event-missing",
        "chain-event-missing",
    ]
    repaired = w.status("--repair", code=0)
    assert [s.split(" (")[0] for s in repaired["repaired"]] == [
        "deploy triage@2.0 in prod",
        "rollback triage@1.0 in prod",
        "deprecate triage@2.0",
    ]
    with w.chain() as (chain, backend):
        assert backend.registry.current("prod") == V1
        info = backend.registry.version(V2)
        assert info is not None
        assert info.deprecated
        events = [e.event for e in chain.events(backend.registry.contract)]
        assert events[-3:] == ["Deployed", "RolledBack", "Deprecated"]
    assert w.status(code=0)["in_step"]


def test_a_step_the_chain_moved_on_without_is_a_gap_not_repaired(world: World) -> None:
    """Log: 1.0, 2.0 (killed before the chain), 3.0; chain: 1.0, 3.0. Replaying 2.0 now would
    write a history that never happened: reported as a gap, exit 12, nothing sent."""
    w = world
    v3 = variant(w.setup, "model3", '{"v": 3}')
    w.ok("model", "register", v3, "--name", "triage", "--version", "3.0",
         "--dataset", "patients@1", "--key", "trainer")  # fmt: skip
    w.ok("approve", "triage@3.0", "--role", "qa", "--key", "qa")
    w.ok("approve", "triage@3.0", "--role", "auditor", "--key", "auditor")
    w.killed_deploy("2.0")
    local = w.setup.root / "local-policy.toml"
    local.write_text(LOCAL_POLICY)
    w.ok("deploy", "triage@3.0", "--env", "prod", "--key", "admin", "--policy", local,
         "--backend", "local")  # fmt: skip
    admin = w.setup.store.signer("admin", PASSWORD)
    assert isinstance(admin, Secp256k1Signer)
    v3_id = version_key("acme", "triage", "3.0")
    with w.chain() as (_, backend):
        info = backend.registry.version(v3_id)
        assert info is not None
        backend.registry.deploy("prod", v3_id, info.subject_digest, signer=admin)
    doc = w.status(code=12)
    assert _kinds(doc) == ["chain-history-gap"]
    assert "moved on without it" in doc["findings"][0]["message"]
    assert w.status("--repair", code=12)["repaired"] == []
    assert w.serving() == v3_id


# --- without a chain ------------------------------------------------------------------------


def _register(setup: Setup) -> None:
    result = run(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
                  "--key", "trainer", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_without_a_chain_only_log_and_index_are_compared(setup: Setup) -> None:
    _register(setup)
    result = run(["status", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["in_step"]
    assert doc["chain"] == {
        "checked": False,
        "reason": "no contracts are recorded for the workspace's chain (`ailedger chain deploy`)",
    }
    text = run(["status"]).output
    assert "not checked" in text
    assert "log and index agree" in text
    assert "chain agree" not in text


def test_an_index_behind_or_different_is_reported_and_rebuilt(setup: Setup) -> None:
    _register(setup)
    index = setup.ws.path / "registry.sqlite"
    with sqlite3.connect(index) as db:
        db.execute("UPDATE versions SET digest = 'sha256:' || printf('%064d', 0)")
    db.close()
    result = run(["status", "--json"])
    assert result.exit_code == 12, result.output
    assert _kinds(json.loads(result.stdout)) == ["index-differs"]
    assert run(["status", "--repair"]).exit_code == 0
    assert run(["status"]).exit_code == 0

    index.unlink()
    result = run(["status", "--json"])
    assert result.exit_code == 12, result.output
    assert "index-behind" in _kinds(json.loads(result.stdout))
    assert run(["status", "--repair"]).exit_code == 0
    assert run(["status"]).exit_code == 0


def test_a_corrupt_log_is_exit_7_not_repaired(setup: Setup) -> None:
    _register(setup)
    with sqlite3.connect(setup.ws.path / "log.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "entries" in tables
        db.execute("DELETE FROM entries WHERE idx = 0")
    db.close()
    assert run(["status", "--repair"]).exit_code == 7


# --- the matching of histories --------------------------------------------------------------

_ITEM = st.tuples(st.sampled_from(["deploy", "rollback"]), st.sampled_from([b"a", b"b", b"c"]))


@given(st.lists(_ITEM, max_size=8), st.lists(_ITEM, max_size=8), st.lists(_ITEM, max_size=5))
def test_match_pairs_equal_items_in_order(
    left: list[tuple[str, bytes]], right: list[tuple[str, bytes]], common: list[tuple[str, bytes]]
) -> None:
    a, b = common + left, common + right
    pairs = _match(list(a), b)
    assert len(pairs) >= len(common)
    assert all(a[i] == b[j] for i, j in pairs)
    assert [i for i, _ in pairs] == sorted({i for i, _ in pairs})
    assert [j for _, j in pairs] == sorted({j for _, j in pairs})
    assert _match([("deploy", None)], [("deploy", b"a")]) == []


def test_an_unreachable_chain_is_exit_8_never_in_step(setup: Setup) -> None:
    _register(setup)
    result = run(["status", "--rpc", "http://127.0.0.1:9"])
    assert result.exit_code == 8, result.output
    assert "in step" not in result.output
