"""ModelRegistry: versions, approvals (direct, signed, batched), requirements, the deploy gate,
rollback and deprecation."""

from __future__ import annotations

from contract_helpers import AUDITOR, ORG_A, PROD, QA, STAGING, TRAINER, World
from eth_utils.crypto import keccak

from ailedger.chain.eip712 import Domain, approval_digest, sign_digest, version_id

ZERO32 = b"\0" * 32


def test_register_version(world: World) -> None:
    c, f = world.chain, world.registry.functions
    roots = [keccak(text="train"), keccak(text="eval")]
    subject, metadata = keccak(text="weights"), keccak(text="card")
    receipt = c.send(f.registerVersion("m", "2.1", subject, metadata, roots), world.carol)
    (ev,) = c.events(world.registry, "VersionRegistered", receipt)
    vid = version_id("m", "2.1")
    assert ev.args.versionId == vid == f.versionIdOf("m", "2.1").call()
    assert (ev.args.name, ev.args.version, ev.args.registrant) == ("m", "2.1", world.carol)
    assert ev.args.datasetRoots == roots
    got = f.getVersion(vid).call()
    assert got == (subject, metadata, world.carol, receipt["blockNumber"], False)
    assert f.datasetRootsOf(vid).call() == roots
    call = f.registerVersion("m", "2.1", subject, metadata, [])
    assert c.revert_reason(call, world.carol) == "VersionExists"
    assert c.revert_reason(f.registerVersion("x", "1", subject, metadata, []), world.outsider) == (
        "NotAMember"
    )
    assert c.revert_reason(f.registerVersion("x", "1", ZERO32, metadata, []), world.carol) == (
        "ZeroDigest"
    )
    call = f.registerVersion("x", "1", subject, metadata, [subject] * 17)
    assert c.revert_reason(call, world.carol) == "TooManyDatasets"


def test_direct_approval_records_role_and_organisation(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    receipt = c.send(f.approve(vid, QA), world.carol)
    (ev,) = c.events(world.registry, "Approved", receipt)
    assert (ev.args.approver, ev.args.role, ev.args.relayer) == (world.carol, QA, world.carol)
    assert ev.args.orgId == keccak(text="org-a")
    assert ev.args.blockNumber == receipt["blockNumber"]
    assert f.hasApproved(vid, world.carol, QA).call()
    assert f.approvalCount(vid, QA).call() == 1
    assert f.organisationCount(vid).call() == 1
    assert c.revert_reason(f.approve(vid, QA), world.carol) == "AlreadyApproved"
    assert c.revert_reason(f.approve(vid, AUDITOR), world.carol) == "RoleNotHeld"
    assert c.revert_reason(f.approve(keccak(text="?"), QA), world.carol) == "UnknownVersion"
    # A second approver of the same organisation adds no organisation.
    c.send(f.approve(vid, world.dep.membership.functions.ADMIN_ROLE().call()), world.alice)
    assert f.organisationCount(vid).call() == 1
    c.send(f.approve(vid, AUDITOR), world.dave)
    assert f.organisationCount(vid).call() == 2


def test_signed_approval_relayed_by_anyone(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    domain = Domain.model_registry(c.chain_id, world.registry.address)
    assert f.domainSeparator().call() == domain.separator()
    assert f.approvalDigest(vid, QA, ORG_A, world.qa_a.address, 7, 99).call() == (
        approval_digest(domain, vid, QA, ORG_A, world.qa_a.address, 7, 99)
    )
    signed = world.signed(vid, QA, world.qa_a, nonce=7)
    receipt = c.send(f.approveBySig(signed), world.outsider)
    (ev,) = c.events(world.registry, "Approved", receipt)
    assert (ev.args.approver, ev.args.relayer) == (world.qa_a.address, world.outsider)
    assert f.nonceUsed(world.qa_a.address, 7).call()


def test_signed_approval_checks(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    # Signed by one key, claimed for another approver.
    version, role, org, _approver, nonce, deadline, sig = world.signed(vid, QA, world.qa_a, 1)
    forged = (version, role, org, world.qa_c.address, nonce, deadline, sig)
    assert c.revert_reason(f.approveBySig(forged)) == "WrongSigner"
    # Expired.
    now = c.w3.eth.get_block("latest")["timestamp"]
    expired = (*world.signed(vid, QA, world.qa_a, 2)[:5], now - 1)
    domain = Domain.model_registry(c.chain_id, world.registry.address)
    digest = approval_digest(domain, vid, QA, ORG_A, world.qa_a.address, 2, now - 1)
    assert c.revert_reason(f.approveBySig((*expired, sign_digest(digest, world.qa_a)))) == (
        "SignatureExpired"
    )
    # A cancelled nonce cannot be used.
    signed = world.signed(vid, QA, world.qa_a, 3)
    receipt = c.send(f.cancelNonce(3), world.carol)
    assert c.events(world.registry, "NonceCancelled", receipt)
    assert c.revert_reason(f.cancelNonce(3), world.carol) == "NonceUsed"
    # qa_a is an off-chain key: cancel through a signed approval's nonce is per approver.
    c.send(f.approveBySig(signed))
    assert f.nonceUsed(world.qa_a.address, 3).call()


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
    receipt = c.send(f.deploy(PROD, vid), world.carol)
    (ev,) = c.events(world.registry, "Deployed", receipt)
    assert (ev.args.env, ev.args.versionId, ev.args.previousVersionId) == (PROD, vid, ZERO32)
    assert f.currentVersion(PROD).call() == vid
    too_many = [world.signed(vid, QA, world.qa_c, n) for n in range(17)]
    assert c.revert_reason(f.approveBatch(too_many)) == "TooManyApprovals"


def test_requirements(world: World) -> None:
    c, f = world.chain, world.registry.functions
    admin = world.dep.admin
    receipt = c.send(f.setRequirement(STAGING, [QA], [2], 1), admin)
    (ev,) = c.events(world.registry, "RequirementSet", receipt)
    assert (ev.args.roles, ev.args.counts, ev.args.minOrgs) == ([QA], [2], 1)
    assert f.getRequirement(STAGING).call() == [[QA], [2], 1, True]
    assert c.revert_reason(f.setRequirement(STAGING, [QA], [1], 1), world.alice) == "NotAdmin"
    assert c.revert_reason(f.setRequirement(STAGING, [QA], [1, 2], 1), admin) == ("LengthMismatch")
    assert c.revert_reason(f.setRequirement(STAGING, [QA] * 9, [1] * 9, 1), admin) == (
        "TooManyRequirements"
    )
    vid = world.register()
    c.send(f.approve(vid, QA), world.carol)
    assert c.revert_reason(f.deploy(STAGING, vid), admin) == "ApprovalsMissing"
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_c, 1)))
    c.send(f.deploy(STAGING, vid), admin)
    assert c.revert_reason(f.deploy(keccak(text="dev"), vid), admin) == "UnknownEnvironment"


def test_gate_requires_distinct_organisations(world: World) -> None:
    c, f = world.chain, world.registry.functions
    c.send(f.setRequirement(STAGING, [QA], [2], 2), world.dep.admin)
    vid = world.register()
    c.send(f.approve(vid, QA), world.carol)
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_a, 1)))
    assert f.approvalCount(vid, QA).call() == 2
    assert c.revert_reason(f.deploy(STAGING, vid), world.carol) == "TooFewOrganisations"
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_c, 1)))
    c.send(f.deploy(STAGING, vid), world.carol)


def _approved(world: World, name: str, version: str) -> bytes:
    f = world.registry.functions
    vid = world.register(name, version)
    batch = [world.signed(vid, QA, world.qa_a, n := int.from_bytes(vid[:4], "big"))]
    batch.append(world.signed(vid, AUDITOR, world.auditor_b, n))
    world.chain.send(f.approveBatch(batch))
    return vid


def test_deploy_rollback_and_rollback_to(world: World) -> None:
    c, f = world.chain, world.registry.functions
    v1, v2 = _approved(world, "m", "1"), _approved(world, "m", "2")
    assert c.revert_reason(f.rollback(PROD), world.carol) == "NothingToRollBack"
    c.send(f.deploy(PROD, v1), world.carol)
    assert c.revert_reason(f.deploy(PROD, v1), world.carol) == "AlreadyCurrent"
    c.send(f.deploy(PROD, v2), world.carol)
    assert f.deploymentDepth(PROD).call() == 2
    receipt = c.send(f.rollback(PROD), world.carol)
    (ev,) = c.events(world.registry, "RolledBack", receipt)
    assert (ev.args.versionId, ev.args.fromVersionId) == (v1, v2)
    assert f.currentVersion(PROD).call() == v1
    assert c.revert_reason(f.rollback(PROD), world.carol) == "NothingToRollBack"
    receipt = c.send(f.rollbackTo(PROD, v2), world.carol)
    (ev,) = c.events(world.registry, "RolledBack", receipt)
    assert (ev.args.versionId, ev.args.fromVersionId) == (v2, v1)
    assert f.currentVersion(PROD).call() == v2
    assert c.revert_reason(f.rollbackTo(PROD, v2), world.carol) == "AlreadyCurrent"
    v3 = _approved(world, "m", "3")
    assert c.revert_reason(f.rollbackTo(PROD, v3), world.carol) == "NeverDeployed"
    # Deprecating v1 closes the way back to it.
    c.send(f.deploy(PROD, v3), world.carol)
    c.send(f.deprecate(v2), world.dep.admin)
    assert c.revert_reason(f.rollback(PROD), world.carol) == "VersionDeprecated"
    c.send(f.rollbackTo(PROD, v1), world.carol)


def test_deprecate(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    assert c.revert_reason(f.deprecate(vid), world.dave) == "NotRegistrantOrAdmin"
    receipt = c.send(f.deprecate(vid), world.carol)
    (ev,) = c.events(world.registry, "Deprecated", receipt)
    assert ev.args.versionId == vid
    assert f.getVersion(vid).call()[4] is True
    assert c.revert_reason(f.deprecate(vid), world.dep.admin) == "VersionDeprecated"
    assert c.revert_reason(f.approve(vid, QA), world.carol) == "VersionDeprecated"


def test_deployer_role_and_admin_transfer(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = _approved(world, "m", "1")
    assert c.revert_reason(f.deploy(PROD, vid), world.dave) == "NotDeployer"
    c.send(f.deploy(PROD, vid), world.dep.admin)
    receipt = c.send(f.setAdmin(world.alice), world.dep.admin)
    assert c.events(world.registry, "AdminChanged", receipt)
    assert c.revert_reason(f.setRequirement(PROD, [TRAINER], [1], 1), world.dep.admin) == (
        "NotAdmin"
    )
    c.send(f.setRequirement(PROD, [TRAINER], [1], 1), world.alice)
