"""Issue 11 through the CLI: a deploy statement that a key without the deployer role appends
to the log directly is no event: ``deploy`` refuses the key, ``trace`` and ``lineage``
ignore the statement, ``status`` reports it (exit 12, not repairable)."""

from __future__ import annotations

import json

from _cli import fails, ok
from _workflow_util import Setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry._refs import VersionRef


def _release(setup: Setup, version: str) -> None:
    path = setup.model if version == "1.0" else variant(setup, f"m{version}", '{"v": 2}')
    ok(["model", "register", path, "--name", "triage", "--version", version,
        "--key", "trainer"])  # fmt: skip
    ok(["eval", "record", f"triage@{version}", "--name", "accuracy", "--metric",
        "accuracy=0.93", "--threshold", "accuracy>=0.9", "--key", "trainer"])  # fmt: skip
    ok(["approve", f"triage@{version}", "--role", "qa", "--key", "qa"])


def test_a_forged_deploy_is_refused_ignored_and_reported(setup: Setup) -> None:
    for version in ("1.0", "2.0"):
        _release(setup, version)
    first = ok(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy,
                "--key", "trainer"])  # fmt: skip
    fails(["deploy", "triage@2.0", "--env", "prod", "--policy", setup.policy, "--key", "qa"],
          5, "deployer", "roles grant")  # fmt: skip
    fails(["rollback", "--env", "prod", "--key", "qa"], 5, "deployer")
    with setup.registry() as reg:  # qa signs a deploy and appends it through the log API
        ref = VersionRef("triage", "2.0")
        previous = int(first["log_index"])
        predicate = DeploymentPredicate(
            environment="prod",
            action="deploy",
            version=str(ref),
            previous=EventLink(log_index=previous, leaf_hash=reg.log.get(previous).leaf_hash.hex()),
            time=utc_now(),
        )
        envelope = attest(predicate, [named_subject(ref, reg.model(ref).digest)],
                          [setup.signer("qa")])  # fmt: skip
        forged = reg.log.append(envelope.to_json())
        size = reg.log.size()
    assert ok(["trace", "--env", "prod"])["model"] == "triage@1.0"
    deployments = ok(["lineage", "triage@2.0"])["deployments"]
    assert [d["log_index"] for d in deployments] == []
    for args in ([], ["--repair"]):
        out = fails(["status", *args, "--json"], 12)
        doc = json.loads(out[: out.rindex("}") + 1])
        kinds = [
            (f["kind"], f["log_index"], f["repairable"])
            for f in doc["findings"]
            if not f["kind"].startswith("index-")  # trace read the log without writing
        ]
        assert kinds == [("unauthorised-deploy-event", forged, False)]
    human = fails(["status"], 12, "may not deploy", "not repairable")
    assert f"entry {forged}" in human
    with setup.registry() as reg:
        assert reg.log.size() == size  # nothing was "repaired" into the log
