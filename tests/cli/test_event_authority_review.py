"""Adversarial review of issue 11 through ``verify trace``: a trace document built around a
deploy statement that a key signed before it was granted the deployer role (no event of the
index) must not verify against the workspace's deployer grants."""

from __future__ import annotations

import json

from _cli import fails, ok
from _workflow_util import Setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.log.checkpoint import vkey
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry._refs import VersionRef
from ailedger.registry._trace_proof import ServingTrace
from ailedger.registry.policy import parse_policy
from ailedger.registry.trace import _entry_proof, _tree_size

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def test_a_trace_of_an_event_signed_before_the_deployer_grant_is_refused(setup: Setup) -> None:
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    v1, v2 = VersionRef("r", "1"), VersionRef("r", "2")
    with setup.registry() as reg:
        for ref in (v1, v2):
            reg.register_model(variant(setup, f"m{ref.version}", f'{{"v": {ref.version}}}'),
                               ref, trainer)  # fmt: skip
        first = reg.deploy(v1, "prod", trainer, OPEN)
        link = EventLink(
            log_index=first.log_index, leaf_hash=reg.log.get(first.log_index).leaf_hash.hex()
        )
        predicate = DeploymentPredicate(
            environment="prod", action="deploy", version=str(v2), previous=link, time=utc_now()
        )
        envelope = attest(predicate, [named_subject(v2, reg.model(v2).digest)], [qa])
        forged = reg.log.append(envelope.to_json())
    ok(["log", "checkpoint", "--key", "trainer"])
    setup.grant("qa", "deployer")  # later, for other work
    with setup.registry() as reg:
        reg.sync()
        assert reg.current("prod") == v1
        size, note = _tree_size(reg.log, forged + 1)
        assert note is not None
        doc = ServingTrace(
            env="prod",
            at=utc_now(),
            ref=v2,
            digest=reg.model(v2).digest,
            action="deploy",
            event=_entry_proof(reg.log, forged, size),
            next_event=None,
            checkpoint=note,
            log_key=vkey(reg.log.log_key()),
        ).to_dict()
    path = setup.root / "forged-trace.json"
    path.write_text(json.dumps(doc))
    address = setup.store.info("trainer").keyid
    fails(["verify", "trace", path, "--log-key", address], 1, "[trace-signer-not-deployer]")
