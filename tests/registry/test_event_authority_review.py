"""Adversarial review of issue 11's fix: an attacker who can append any signed statement to
the log (own keys, or workspace keys holding other roles) tries to make the registry take a
deploy or rollback the legitimate deployers never made. Each test runs one attack."""

from __future__ import annotations

import pytest

from _workflow_util import Setup, variant
from ailedger.attest.dsse import Envelope, Signature
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.errors import ConflictError, SignatureInvalid
from ailedger.identity.keys import Signer
from ailedger.registry import Registry
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import parse_policy
from ailedger.registry.status import check_events
from ailedger.registry.trace import trace_at

UNAUTHORISED, FORKED = "unauthorised-deploy-event", "environment-history-fork"
OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
V1, V2, V3 = VersionRef("m", "1"), VersionRef("m", "2"), VersionRef("m", "3")


def _register(setup: Setup, reg: Registry) -> None:
    trainer = setup.signer("trainer")
    for ref in (V1, V2, V3):
        path = variant(setup, f"m{ref.version}", f'{{"v": {ref.version}}}')
        reg.register_model(path, ref, trainer)


def _statement(
    reg: Registry,
    signers: list[Signer],
    action: str,
    ref: VersionRef,
    *,
    previous: int | None,
    linked: bool = True,
    env: str = "prod",
) -> Envelope:
    row = reg.model(ref)
    fields: dict[str, object] = {}
    if linked:
        fields["previous"] = (
            None
            if previous is None
            else EventLink(log_index=previous, leaf_hash=reg.log.get(previous).leaf_hash.hex())
        )
    predicate = DeploymentPredicate(
        environment=env,
        action=action,  # type: ignore[arg-type]
        version=str(ref),
        time=utc_now(),
        **fields,  # type: ignore[arg-type]
    )
    return attest(predicate, [named_subject(ref, row.digest)], signers)


def _append(reg: Registry, envelope: Envelope | bytes) -> int:
    raw = envelope if isinstance(envelope, bytes) else envelope.to_json()
    return reg.log.append(raw)


def test_a_cosignature_by_a_deployer_makes_an_event_and_a_claimed_one_is_refused(
    setup: Setup,
) -> None:
    """Multi-signature envelopes: a real co-signature by a deployer is a deployer's act; a
    signature that only claims the deployer's key id is refused by the log."""
    qa, trainer = setup.signer("qa"), setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        forged = _statement(reg, [qa], "deploy", V2, previous=first.log_index)
        claimed = Signature(trainer.keyid, forged.signatures[0].sig)
        both = Envelope(forged.payload_type, forged.payload, (*forged.signatures, claimed))
        with pytest.raises(SignatureInvalid):
            _append(reg, both)
        upper = Envelope(
            forged.payload_type,
            forged.payload,
            (Signature(trainer.keyid.upper().replace("0X", "0x"), forged.signatures[0].sig),),
        )
        with pytest.raises(SignatureInvalid):
            _append(reg, upper)
        reg.sync()
        assert reg.current("prod") == V1


def test_an_event_naming_a_rejected_event_as_previous_is_a_fork(setup: Setup) -> None:
    qa, trainer = setup.signer("qa"), setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        forged = _append(reg, _statement(reg, [qa], "deploy", V2, previous=first.log_index))
        # a deployer's statement building on the forged one
        on_top = _append(reg, _statement(reg, [trainer], "deploy", V3, previous=forged))
        reg.sync()
        assert reg.current("prod") == V1
        verdicts = {r.event.log_index: r.verdict for r in reg.index.rejected()}
        assert verdicts == {forged: UNAUTHORISED, on_top: FORKED}


def test_a_forged_rollback_to_a_version_never_deployed_is_not_an_event(setup: Setup) -> None:
    qa, trainer = setup.signer("qa"), setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        forged = _append(reg, _statement(reg, [qa], "rollback", V3, previous=first.log_index))
        reg.sync()
        assert reg.current("prod") == V1
        assert [r.event.log_index for r in reg.index.rejected()] == [forged]
        with pytest.raises(ConflictError, match="only version deployed"):
            reg.rollback("prod", trainer)


def test_a_replayed_unlinked_deploy_after_linked_events_is_a_fork(setup: Setup) -> None:
    """A deployer's legacy (unlinked) statement, replayed by anyone after linked events, must
    not become the environment's newest event (it names no previous, so nothing checked it
    against the environment's history)."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        legacy = _statement(reg, [trainer], "deploy", V1, previous=None, linked=False)
        old = _append(reg, legacy)
        reg.sync()
        assert reg.current("prod") == V1
        second = reg.deploy(V2, "prod", trainer, OPEN)
        replayed = _append(reg, legacy.to_json())  # the attacker needs no key: a copy
        reg.sync()
        assert reg.current("prod") == V2
        assert trace_at(reg, "prod", utc_now()).event.entry.index == second.log_index
        verdicts = {r.event.log_index: r.verdict for r in reg.index.rejected()}
        assert verdicts == {replayed: FORKED}
        assert [e.log_index for e in reg.index.events("prod")] == [old, second.log_index]
        assert [f.kind for f in check_events(reg)] == [FORKED]
        third = reg.deploy(V3, "prod", trainer, OPEN)
        assert [e.log_index for e in reg.index.events("prod")][-1] == third.log_index


def test_a_replayed_unlinked_deploy_among_unlinked_events_is_a_replay(setup: Setup) -> None:
    """In a log of unlinked (legacy) events only, a copy of an old deploy must not become the
    newest event either."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        legacy1 = _statement(reg, [trainer], "deploy", V1, previous=None, linked=False)
        _append(reg, legacy1)
        _append(reg, _statement(reg, [trainer], "deploy", V2, previous=None, linked=False))
        replayed = _append(reg, legacy1.to_json())
        reg.sync()
        assert reg.current("prod") == V2
        assert [r.event.log_index for r in reg.index.rejected()] == [replayed]


def test_a_forged_event_stays_rejected_after_its_signer_is_granted_the_role(
    setup: Setup,
) -> None:
    """Index rebuild ordering: a statement logged while its signer could not deploy stays no
    event when the role is granted later (else the grant rewrites history: the forged event
    becomes the environment's event and the real one after it a fork)."""
    qa, trainer = setup.signer("qa"), setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
        first = reg.deploy(V1, "prod", trainer, OPEN)
        forged = _append(reg, _statement(reg, [qa], "deploy", V3, previous=first.log_index))
        second = reg.deploy(V2, "prod", trainer, OPEN)
        assert reg.current("prod") == V2
    setup.grant("qa", "deployer")
    with setup.registry() as reg:
        reg.index.rebuild(reg.log, lambda _root: None)
        reg.sync()
        assert reg.current("prod") == V2
        assert [e.log_index for e in reg.index.events("prod")] == [
            first.log_index,
            second.log_index,
        ]
        assert [(r.event.log_index, r.verdict) for r in reg.index.rejected()] == [
            (forged, UNAUTHORISED)
        ]
        # the grant holds from now on
        back = reg.rollback("prod", qa)
        assert back.ref == str(V1)
