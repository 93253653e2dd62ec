"""ModelRegistry: versions namespaced by organisation, approvals (direct, signed, batched),
requirements, the deploy gate, rollback and deprecation, per-environment deployers."""

from __future__ import annotations

import pytest
from contract_helpers import (
    ANY_ENV,
    AUDITOR,
    ORG_A,
    PROD,
    QA,
    STAGING,
    TRAINER,
    World,
)
from eth_utils.crypto import keccak

from ailedger.chain.eip712 import Domain, approval_digest, sign_digest, version_id

ZERO32 = b"\0" * 32


def test_register_version(world: World) -> None:
    c, f = world.chain, world.registry.functions
    roots = [keccak(text="train"), keccak(text="eval")]
    subject, metadata = keccak(text="weights"), keccak(text="card")
    receipt = c.send(f.registerVersion("m", "2.1", subject, metadata, roots), world.frank)
    (ev,) = c.events(world.registry, "VersionRegistered", receipt)
    vid = version_id(ORG_A, "m", "2.1")
    assert ev.args.versionId == vid == f.versionIdOf(ORG_A, "m", "2.1").call()
    assert (ev.args.name, ev.args.version, ev.args.registrant) == ("m", "2.1", world.frank)
    assert ev.args.orgId == ORG_A
    assert ev.args.datasetRoots == roots
    got = f.getVersion(vid).call()
    assert got == (ORG_A, subject, metadata, world.frank, receipt["blockNumber"], False)
    assert f.datasetRootsOf(vid).call() == roots
    call = f.registerVersion("m", "2.1", subject, metadata, [])
    assert c.revert_reason(call, world.frank) == "VersionExists"
    assert c.revert_reason(f.registerVersion("x", "1", subject, metadata, []), world.outsider) == (
        "NotAMember"
    )
    # A member without the trainer role registers nothing.
    assert c.revert_reason(f.registerVersion("x", "1", subject, metadata, []), world.carol) == (
        "RoleNotHeld"
    )
    assert c.revert_reason(f.registerVersion("x", "1", ZERO32, metadata, []), world.frank) == (
        "ZeroDigest"
    )
    call = f.registerVersion("x", "1", subject, metadata, [subject] * 17)
    assert c.revert_reason(call, world.frank) == "TooManyDatasets"


def test_direct_approval_records_role_organisation_digest_and_environment(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    receipt = c.send(world.approve(vid, QA, PROD), world.carol)
    (ev,) = c.events(world.registry, "Approved", receipt)
    assert (ev.args.approver, ev.args.role, ev.args.relayer) == (world.carol, QA, world.carol)
    assert (ev.args.orgId, ev.args.env) == (ORG_A, PROD)
    assert ev.args.subjectDigest == world.subject(vid)
    assert ev.args.blockNumber == receipt["blockNumber"]
    assert f.hasApproved(vid, world.carol).call()
    assert f.approvalCount(vid, PROD, QA).call() == 1
    assert f.approvalCount(vid, STAGING, QA).call() == 0  # made for prod only
    assert c.revert_reason(world.approve(vid, QA), world.carol) == "AlreadyApproved"
    assert c.revert_reason(world.approve(vid, AUDITOR), world.alice) == "RoleNotHeld"
    wrong = f.approve(vid, keccak(text="other weights"), ANY_ENV, QA)
    assert c.revert_reason(wrong, world.carol) == "DigestMismatch"
    assert c.revert_reason(f.approve(keccak(text="?"), ZERO32, ANY_ENV, QA), world.carol) == (
        "UnknownVersion"
    )
    (a,) = f.approvalsOf(vid).call()
    assert (a[0], a[4], a[5], a[6]) == (world.carol, QA, ORG_A, PROD)


def test_signed_approval_relayed_by_anyone(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    subject = world.subject(vid)
    domain = Domain.model_registry(c.chain_id, world.registry.address)
    assert f.domainSeparator().call() == domain.separator()
    args = (vid, subject, PROD, QA, ORG_A, world.qa_a.address, 7, 99)
    assert f.approvalDigest(*args).call() == approval_digest(domain, *args)
    signed = world.signed(vid, QA, world.qa_a, nonce=7)
    receipt = c.send(f.approveBySig(signed), world.outsider)
    (ev,) = c.events(world.registry, "Approved", receipt)
    assert (ev.args.approver, ev.args.relayer) == (world.qa_a.address, world.outsider)
    assert f.nonceUsed(world.qa_a.address, 7).call()


def test_signed_approval_checks(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    # Signed by one key, claimed for another approver.
    signed = list(world.signed(vid, QA, world.qa_a, 1))
    signed[5] = world.qa_c.address
    assert c.revert_reason(f.approveBySig(tuple(signed))) == "WrongSigner"
    # Expired.
    now = c.w3.eth.get_block("latest")["timestamp"]
    domain = Domain.model_registry(c.chain_id, world.registry.address)
    fields = (vid, world.subject(vid), ANY_ENV, QA, ORG_A, world.qa_a.address, 2, now - 1)
    expired = (*fields, sign_digest(approval_digest(domain, *fields), world.qa_a))
    assert c.revert_reason(f.approveBySig(expired)) == "SignatureExpired"
    # A cancelled nonce cannot be used.
    receipt = c.send(f.cancelNonce(3), world.carol)
    assert c.events(world.registry, "NonceCancelled", receipt)
    assert c.revert_reason(f.cancelNonce(3), world.carol) == "NonceUsed"
    signed3 = world.signed(vid, QA, world.qa_a, 3)
    c.send(f.approveBySig(signed3))
    assert f.nonceUsed(world.qa_a.address, 3).call()  # nonces are per approver


def test_batch_of_cross_organisation_approvals_meets_the_gate(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    batch = [
        world.signed(vid, QA, world.qa_a, 1),
        world.signed(vid, AUDITOR, world.auditor_b, 1),
    ]
    assert not f.gatePasses(PROD, vid).call()
    receipt = c.send(f.approveBatch(batch), world.outsider)
    assert len(c.events(world.registry, "Approved", receipt)) == 2
    assert f.gatePasses(PROD, vid).call()
    receipt = c.send(f.deploy(PROD, vid, world.subject(vid)), world.carol)
    (ev,) = c.events(world.registry, "Deployed", receipt)
    assert (ev.args.env, ev.args.versionId, ev.args.previousVersionId) == (PROD, vid, ZERO32)
    assert ev.args.subjectDigest == world.subject(vid)
    assert f.currentVersion(PROD).call() == vid
    too_many = [world.signed(vid, QA, world.qa_c, n) for n in range(17)]
    assert c.revert_reason(f.approveBatch(too_many)) == "TooManyApprovals"


def test_requirements(world: World) -> None:
    c, f = world.chain, world.registry.functions
    admin = world.dep.admin
    receipt = c.send(f.setRequirement(STAGING, [QA], [2], 1, False), admin)
    (ev,) = c.events(world.registry, "RequirementSet", receipt)
    assert (ev.args.roles, ev.args.counts, ev.args.minOrgs) == ([QA], [2], 1)
    assert f.getRequirement(STAGING).call() == [[QA], [2], 1, False, True]
    call = f.setRequirement(STAGING, [QA], [1], 1, False)
    assert c.revert_reason(call, world.alice) == "AccessControlUnauthorizedAccount"
    assert c.revert_reason(f.setRequirement(STAGING, [QA], [1, 2], 1, False), admin) == (
        "LengthMismatch"
    )
    assert c.revert_reason(f.setRequirement(STAGING, [QA] * 9, [1] * 9, 1, False), admin) == (
        "TooManyRequirements"
    )
    assert c.revert_reason(f.setRequirement(STAGING, [QA, QA], [1, 1], 1, False), admin) == (
        "DuplicateRole"
    )
    vid = world.register()
    c.send(world.approve(vid, QA), world.carol)
    call = f.deploy(STAGING, vid, world.subject(vid))
    assert c.revert_reason(call, admin) == "ApprovalsMissing"
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_c, 1)))
    c.send(call, admin)
    dev = f.deploy(keccak(text="dev"), vid, world.subject(vid))
    assert c.revert_reason(dev, admin) == "UnknownEnvironment"


def test_gate_requires_distinct_organisations(world: World) -> None:
    c, f = world.chain, world.registry.functions
    c.send(f.setRequirement(STAGING, [QA], [2], 2, False), world.dep.admin)
    vid = world.register()
    c.send(world.approve(vid, QA), world.carol)
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_a, 1)))
    assert f.approvalCount(vid, STAGING, QA).call() == 2
    call = f.deploy(STAGING, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "TooFewOrganisations"
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_c, 1)))
    c.send(call, world.carol)


def _approved(world: World, name: str, version: str) -> bytes:
    f = world.registry.functions
    vid = world.register(name, version)
    batch = [world.signed(vid, QA, world.qa_a, n := int.from_bytes(vid[:4], "big"))]
    batch.append(world.signed(vid, AUDITOR, world.auditor_b, n))
    world.chain.send(f.approveBatch(batch))
    return vid


def test_deploy_and_rollback_to(world: World) -> None:
    c, f = world.chain, world.registry.functions
    v1, v2 = _approved(world, "m", "1"), _approved(world, "m", "2")
    assert c.revert_reason(f.rollbackTo(PROD, v1), world.carol) == "NeverDeployed"
    c.send(f.deploy(PROD, v1, world.subject(v1)), world.carol)
    assert c.revert_reason(f.deploy(PROD, v1, world.subject(v1)), world.carol) == ("AlreadyCurrent")
    c.send(f.deploy(PROD, v2, world.subject(v2)), world.carol)
    assert f.deploymentDepth(PROD).call() == 2
    receipt = c.send(f.rollbackTo(PROD, v1), world.carol)
    (ev,) = c.events(world.registry, "RolledBack", receipt)
    assert (ev.args.versionId, ev.args.fromVersionId) == (v1, v2)
    assert f.currentVersion(PROD).call() == v1
    assert c.revert_reason(f.rollbackTo(PROD, v1), world.carol) == "AlreadyCurrent"
    receipt = c.send(f.rollbackTo(PROD, v2), world.carol)
    (ev,) = c.events(world.registry, "RolledBack", receipt)
    assert (ev.args.versionId, ev.args.fromVersionId) == (v2, v1)
    assert f.currentVersion(PROD).call() == v2
    assert f.deploymentDepth(PROD).call() == 4  # a rollback appends to the history
    v3 = _approved(world, "m", "3")
    assert c.revert_reason(f.rollbackTo(PROD, v3), world.carol) == "NeverDeployed"
    # Deprecating v1 closes the way back to it.
    c.send(f.deploy(PROD, v3, world.subject(v3)), world.carol)
    c.send(f.deprecate(v1), world.dep.admin)
    assert c.revert_reason(f.rollbackTo(PROD, v1), world.carol) == "VersionDeprecated"
    c.send(f.rollbackTo(PROD, v2), world.carol)


def test_no_argument_less_rollback(world: World) -> None:
    """The reported sequence (deploy r@1, r@2, r@3, r@1, r@2; roll back twice) must give r@1
    then r@3, the versions that served before the current one became current. A contract
    rollback() that popped its own history gave r@1 then r@2 once the first rollback had
    been recorded by rollbackTo (as the CLI does), so the contract has none: the caller
    names the target (the CLI reads it from the signed log; test_chain.py in
    tests/registry runs the whole sequence through it) and the contract checks it."""
    c, f = world.chain, world.registry.functions
    assert not [e for e in world.registry.abi if e.get("name") == "rollback"]
    r1, r2, r3 = (_approved(world, "r", v) for v in ("1", "2", "3"))
    for vid in (r1, r2, r3, r1, r2):
        c.send(f.deploy(PROD, vid, world.subject(vid)), world.carol)
    # the old selector reaches no function (no fallback): it reverts and changes nothing
    data = keccak(text="rollback(bytes32)")[:4] + PROD
    tx = {"from": world.carol, "to": world.registry.address, "data": data, "gas": 200_000}
    with pytest.raises(Exception):  # noqa: B017, PT011 - backends raise different errors
        c.w3.eth.call(tx)
    assert f.currentVersion(PROD).call() == r2
    for target in (r1, r3):  # what the CLI's two rollbacks send
        c.send(f.rollbackTo(PROD, target), world.carol)
        assert f.currentVersion(PROD).call() == target


def test_deprecate(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    assert c.revert_reason(f.deprecate(vid), world.dave) == "NotRegistrantOrAdmin"
    receipt = c.send(f.deprecate(vid), world.frank)
    (ev,) = c.events(world.registry, "Deprecated", receipt)
    assert ev.args.versionId == vid
    assert f.getVersion(vid).call()[5] is True
    assert c.revert_reason(f.deprecate(vid), world.dep.admin) == "VersionDeprecated"
    assert c.revert_reason(world.approve(vid, QA), world.carol) == "VersionDeprecated"
    # A registrant that lost the trainer role deprecates nothing any more.
    other = world.register("m", "9")
    m = world.dep.membership.functions
    c.send(m.revokeRole(ORG_A, world.frank, TRAINER), world.alice)
    assert c.revert_reason(f.deprecate(other), world.frank) == "NotRegistrantOrAdmin"


def test_approval_revoked_by_its_approver(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    c.send(world.approve(vid, QA), world.carol)
    c.send(f.approveBySig(world.signed(vid, AUDITOR, world.auditor_b, 1)))
    assert f.gatePasses(PROD, vid).call()
    assert c.revert_reason(f.revokeApproval(vid), world.dave) == "NotApproved"
    receipt = c.send(f.revokeApproval(vid), world.carol)
    (ev,) = c.events(world.registry, "ApprovalRevoked", receipt)
    assert (ev.args.approver, ev.args.role) == (world.carol, QA)
    assert not f.hasApproved(vid, world.carol).call()
    assert not f.gatePasses(PROD, vid).call()
    # It may approve again (a new approval, counted again).
    c.send(world.approve(vid, QA), world.carol)
    assert f.gatePasses(PROD, vid).call()
