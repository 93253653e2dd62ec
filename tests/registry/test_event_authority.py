"""Issue 11 (adversarial review, HIGH): a deploy or rollback statement is an event of its
environment only when its signer may deploy there, and only when it extends the
environment's chain of events.

Each attack signs a statement with a key that can append to the log (a workspace key
without the deployer role, or an outsider the log admits) and appends it straight through
the log API, as a client of ``ailedger serve`` could; the index, ``trace`` and ``rollback``
must go on as if it were not there, and ``status`` must name it.
"""

from __future__ import annotations

import pytest

from _workflow_util import Setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.errors import ConflictError
from ailedger.identity.keys import Signer
from ailedger.log import TransparencyLog
from ailedger.registry import Registry, RoleMissing
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry._refs import VersionRef
from ailedger.registry._trace_proof import event_predicate
from ailedger.registry.policy import parse_policy
from ailedger.registry.trace import trace_at

UNAUTHORISED, FORKED = "unauthorised-deploy-event", "environment-history-fork"
OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
V1, V2 = VersionRef("m", "1"), VersionRef("m", "2")


def _register(setup: Setup, reg: Registry) -> None:
    trainer = setup.signer("trainer")
    for ref in (V1, V2):
        path = variant(setup, f"m{ref.version}", f'{{"v": {ref.version}}}')
        reg.register_model(path, ref, trainer)


def _forge(
    reg: Registry,
    signer: Signer,
    action: str,
    ref: VersionRef,
    *,
    previous: int | None,
    env: str = "prod",
) -> int:
    """Sign a deploy/rollback of ``ref`` naming log entry ``previous`` and append it to the
    log directly (no registry check), as any key the log admits can."""
    row = reg.model(ref)
    link = None
    if previous is not None:
        link = EventLink(log_index=previous, leaf_hash=reg.log.get(previous).leaf_hash.hex())
    predicate = DeploymentPredicate(
        environment=env,
        action=action,  # type: ignore[arg-type]
        version=str(ref),
        previous=link,
        time=utc_now(),
    )
    envelope = attest(predicate, [named_subject(ref, row.digest)], [signer])
    log: TransparencyLog = reg.log
    return log.append(envelope.to_json())


@pytest.mark.parametrize("attacker", ["qa", "outsider"])
@pytest.mark.parametrize("action", ["deploy", "rollback"])
def test_an_event_by_a_key_without_the_deployer_role_is_not_an_event(
    setup: Setup, attacker: str, action: str
) -> None:
    """The reproduction: before the fix the index took the forged statement as the newest
    event of prod, so m@2 "served" prod and trace proved it."""
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", setup.signer("trainer"), OPEN)
        forged = _forge(reg, setup.signer(attacker), action, V2, previous=first.log_index)
        reg.sync()
        assert reg.current("prod") == V1
        assert reg.index.last_event("prod") is not None
        assert [e.log_index for e in reg.index.events("prod")] == [first.log_index]
        assert trace_at(reg, "prod", utc_now()).ref == V1
        rejected = reg.index.rejected()
        assert [(r.event.log_index, r.verdict) for r in rejected] == [(forged, UNAUTHORISED)]
        # a rebuilt index judges it the same way
        reg.index.rebuild(reg.log, lambda _root: None)
        reg.sync()
        assert reg.current("prod") == V1
        # a legitimate deploy after it names the last accepted event, not the forged one
        second = reg.deploy(V2, "prod", setup.signer("trainer"), OPEN)
        assert [e.log_index for e in reg.index.events("prod")] == [
            first.log_index,
            second.log_index,
        ]
        back = reg.rollback("prod", setup.signer("trainer"))
        assert back.ref == str(V1)


def test_the_registry_refuses_a_deploy_or_rollback_without_the_role(setup: Setup) -> None:
    with setup.registry() as reg:
        _register(setup, reg)
        size = reg.log.size()
        with pytest.raises(RoleMissing, match="deployer"):
            reg.deploy(V1, "prod", setup.signer("qa"), OPEN)
        reg.deploy(V1, "prod", setup.signer("trainer"), OPEN)
        reg.deploy(V2, "prod", setup.signer("trainer"), OPEN)
        with pytest.raises(RoleMissing, match="deployer"):
            reg.rollback("prod", setup.signer("qa"))
        assert reg.log.size() == size + 2
    setup.grant("qa", "deployer")
    with setup.registry() as reg:
        assert reg.rollback("prod", setup.signer("qa")).ref == str(V1)


def test_a_second_event_naming_the_same_previous_is_a_fork(setup: Setup) -> None:
    """Two events naming the same previous: the first in log order is kept, the second is
    reported and never built on (even when its signer may deploy)."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        second = reg.deploy(V2, "prod", trainer, OPEN)
        fork = _forge(reg, trainer, "rollback", V1, previous=first.log_index)
        claims_first = _forge(reg, trainer, "deploy", V1, previous=None)
        reg.sync()
        assert reg.current("prod") == V2
        assert trace_at(reg, "prod", utc_now()).event.entry.index == second.log_index
        found = {r.event.log_index: r for r in reg.index.rejected()}
        assert found[fork].verdict == FORKED
        assert (found[fork].previous, found[fork].head) == (first.log_index, second.log_index)
        assert found[claims_first].verdict == FORKED
        # the next real event extends the kept chain
        back = reg.rollback("prod", trainer)
        assert back.ref == str(V1)
        predicate = event_predicate(reg.log.get(back.log_index).envelope)
        assert predicate is not None
        assert predicate.previous is not None
        assert predicate.previous.log_index == second.log_index


def test_a_forged_event_does_not_conflict_a_real_deploy(setup: Setup) -> None:
    """The compare-and-swap append of a real deploy ignores a forged event logged meanwhile
    (it is no event), rather than refusing with "another deploy was logged"."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        _forge(reg, setup.signer("outsider"), "deploy", V2, previous=first.log_index)
        try:
            reg.deploy(V2, "prod", trainer, OPEN)
        except ConflictError as exc:  # pragma: no cover - the failure this guards against
            pytest.fail(f"a forged event blocked a real deploy: {exc.message}")
        assert reg.current("prod") == V2
