"""The attacks of issue 10 on Membership and ModelRegistry (findings 2, 7, 8, 9, 10, 12, 13),
each run as the reviewer ran it, on py-evm and on anvil (the ``world`` fixture), and seen to
fail. docs/security.md lists each finding with the test that refutes it."""

from __future__ import annotations

from typing import Any

from contract_helpers import (
    ADMIN,
    AUDITOR,
    DEPLOYER,
    ORG_A,
    ORG_B,
    ORG_C,
    PROD,
    QA,
    REGISTRY_DELAY,
    STAGING,
    TRAINER,
    World,
    join,
    join_call,
    key,
)
from eth_utils.crypto import keccak
from oracle_helpers import warp

from ailedger.identity.keys import Secp256k1Signer

BACKDOOR = keccak(text="backdoored weights")
DEV = keccak(text="dev")


def _send_as(world: World, call: Any, signer: Secp256k1Signer) -> Any:
    """Send ``call`` from an off-chain key (funded first): the approver's own transaction."""
    w3, c = world.chain.w3, world.chain
    if w3.eth.get_balance(signer.address) == 0:
        tx = w3.eth.send_transaction({"from": c.accounts[0], "to": signer.address, "value": 10**18})
        w3.eth.wait_for_transaction_receipt(tx)
    account = signer.to_local_account()
    tx = call.build_transaction(
        {
            "from": signer.address,
            "nonce": w3.eth.get_transaction_count(signer.address),
            "gas": c.gas,
        }
    )
    raw = account.sign_transaction(tx).raw_transaction
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1
    return receipt


def _honest_approvals(world: World, vid: bytes, nonce: int = 1) -> None:
    world.chain.send(
        world.registry.functions.approveBatch(
            [
                world.signed(vid, QA, world.qa_a, nonce),
                world.signed(vid, AUDITOR, world.auditor_b, nonce),
            ]
        )
    )


# --- finding 2: version squatting -----------------------------------------------------------


def test_finding2_version_squatting_by_a_role_less_member_is_refused(world: World) -> None:
    c, f = world.chain, world.registry.functions
    # carol is a member of ORG_A (qa) without the trainer role; dave a member of ORG_B.
    for squatter in (world.carol, world.dave):
        call = f.registerVersion("fraud-model", "2.0.0", BACKDOOR, b"\1" * 32, [])
        assert c.revert_reason(call, squatter) == "RoleNotHeld"
    honest = world.register("fraud-model", "2.0.0")
    assert f.getVersion(honest).call()[3] == world.frank


def test_finding2_version_squatting_from_another_organisation_gains_nothing(
    world: World,
) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    # A trainer of ORG_B registers the honest name first, with a backdoored digest.
    c.send(m.grantRole(ORG_B, world.dave, TRAINER), world.bob)
    c.send(f.registerVersion("fraud-model", "2.0.0", BACKDOOR, b"\1" * 32, []), world.dave)
    squatted = bytes(f.versionIdOf(ORG_B, "fraud-model", "2.0.0").call())
    # The name is ORG_B's own: ORG_A registers its version unhindered, under another id.
    honest = world.register("fraud-model", "2.0.0")
    assert honest != squatted
    _honest_approvals(world, honest)
    # The honest approvals sign the honest id and digest: they count for nothing else.
    assert not f.gatePasses(PROD, squatted).call()
    call = f.deploy(PROD, squatted, BACKDOOR)
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"
    relabelled = list(world.signed(honest, QA, world.qa_a, 2))
    relabelled[0], relabelled[1] = squatted, BACKDOOR
    assert c.revert_reason(f.approveBySig(tuple(relabelled))) == "WrongSigner"
    # The deployer names the digest it ships: the backdoor is not the approved one.
    assert c.revert_reason(f.deploy(PROD, honest, BACKDOOR), world.carol) == "DigestMismatch"
    # An approval of another digest is refused when it is made.
    signed = world.signed(honest, QA, world.qa_c, 1, subject=BACKDOOR)
    assert c.revert_reason(f.approveBySig(signed)) == "DigestMismatch"
    # The squatter cannot deprecate the honest version.
    assert c.revert_reason(f.deprecate(honest), world.dave) == "NotRegistrantOrAdmin"
    c.send(f.deploy(PROD, honest, world.subject(honest)), world.carol)
    assert f.currentVersion(PROD).call() == honest


def test_finding2_an_approval_is_bound_to_its_environment(world: World) -> None:
    c, f = world.chain, world.registry.functions
    c.send(f.setRequirement(STAGING, [QA, AUDITOR], [1, 1], 2, False), world.dep.admin)
    vid = world.register()
    c.send(
        f.approveBatch(
            [
                world.signed(vid, QA, world.qa_a, 1, env=STAGING),
                world.signed(vid, AUDITOR, world.auditor_b, 1, env=STAGING),
            ]
        )
    )
    assert f.gatePasses(STAGING, vid).call()
    assert not f.gatePasses(PROD, vid).call()
    call = f.deploy(PROD, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"
    # Relabelling the environment breaks the signature.
    signed = list(world.signed(vid, QA, world.qa_c, 1, env=STAGING))
    signed[2] = PROD
    assert c.revert_reason(f.approveBySig(tuple(signed))) == "WrongSigner"


# --- finding 7: approvals outlive their approvers ------------------------------------------


def test_finding7_approvals_of_approvers_who_lost_role_or_left_do_not_count(
    world: World,
) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    vid = world.register()
    _honest_approvals(world, vid)
    assert f.gatePasses(PROD, vid).call()
    # Both approvers lose their roles and leave their organisations.
    c.send(m.revokeRole(ORG_A, world.qa_a.address, QA), world.alice)
    c.send(m.removeMember(ORG_A, world.qa_a.address), world.alice)
    c.send(m.revokeRole(ORG_B, world.auditor_b.address, AUDITOR), world.bob)
    c.send(m.removeMember(ORG_B, world.auditor_b.address), world.bob)
    assert not f.gatePasses(PROD, vid).call()
    call = f.deploy(PROD, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"
    # Coming back does not revive the old approval: a new grant is a new ticket.
    join(world.dep, ORG_A, world.qa_a, world.alice)
    c.send(m.grantRole(ORG_A, world.qa_a.address, QA), world.alice)
    assert f.approvalCount(vid, PROD, QA).call() == 0
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"


def test_finding7_a_revoked_role_voids_the_approval_even_if_granted_again(world: World) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    vid = world.register()
    _honest_approvals(world, vid)
    c.send(m.revokeRole(ORG_B, world.auditor_b.address, AUDITOR), world.bob)
    c.send(m.grantRole(ORG_B, world.auditor_b.address, AUDITOR), world.bob)
    assert f.approvalCount(vid, PROD, AUDITOR).call() == 0
    assert not f.gatePasses(PROD, vid).call()


def test_finding7_cancel_nonce_beats_a_relayer_that_races_it(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    c.send(f.approveBySig(world.signed(vid, AUDITOR, world.auditor_b, 1)))
    racing = world.signed(vid, QA, world.qa_a, 5)
    # The relayer lands the approval before the approver's cancelNonce(5) ...
    c.send(f.approveBySig(racing), world.outsider)
    assert f.gatePasses(PROD, vid).call()
    receipt = _send_as(world, f.cancelNonce(5), world.qa_a)
    # ... and the cancellation withdraws it all the same.
    assert c.events(world.registry, "ApprovalRevoked", receipt)
    assert not f.hasApproved(vid, world.qa_a.address).call()
    assert not f.gatePasses(PROD, vid).call()
    assert c.revert_reason(f.approveBySig(racing), world.outsider) == "NonceUsed"
    # Cancelled first, a relayed approval never lands.
    late = world.signed(vid, QA, world.qa_a, 6)
    _send_as(world, f.cancelNonce(6), world.qa_a)
    assert c.revert_reason(f.approveBySig(late), world.outsider) == "NonceUsed"
    # And an approver withdraws its approval directly.
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_a, 7)))
    _send_as(world, f.revokeApproval(vid), world.qa_a)
    assert not f.gatePasses(PROD, vid).call()


# --- finding 8: one person, many roles ------------------------------------------------------


def test_finding8_one_account_approving_in_two_roles_counts_once(world: World) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    c.send(f.setRequirement(STAGING, [QA, AUDITOR], [1, 1], 1, False), world.dep.admin)
    c.send(m.grantRole(ORG_A, world.carol, AUDITOR), world.alice)
    vid = world.register()
    c.send(world.approve(vid, QA), world.carol)
    assert c.revert_reason(world.approve(vid, AUDITOR), world.carol) == "AlreadyApproved"
    signed = [world.signed(vid, r, world.qa_a, n) for n, r in ((1, QA), (2, AUDITOR))]
    c.send(m.grantRole(ORG_A, world.qa_a.address, AUDITOR), world.alice)
    assert c.revert_reason(f.approveBatch(signed)) == "AlreadyApproved"
    call = f.deploy(STAGING, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"


def test_finding8_registrant_cannot_approve_its_own_version_unless_allowed(
    world: World,
) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    c.send(m.grantRole(ORG_A, world.frank, QA), world.alice)
    vid = world.register()  # by frank
    c.send(world.approve(vid, QA), world.frank)
    c.send(f.approveBySig(world.signed(vid, AUDITOR, world.auditor_b, 1)))
    assert f.approvalCount(vid, PROD, QA).call() == 0
    call = f.deploy(PROD, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"
    # An environment whose policy allows self-approval counts it.
    c.send(f.setRequirement(STAGING, [QA, AUDITOR], [1, 1], 2, True), world.dep.admin)
    c.send(f.deploy(STAGING, vid, world.subject(vid)), world.carol)


def test_finding8_an_approver_moving_between_organisations_counts_for_one(world: World) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    c.send(f.setRequirement(STAGING, [QA], [2], 2, False), world.dep.admin)
    vid = world.register()
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_a, 1)))  # as a member of ORG_A
    # qa_a moves to ORG_C and approves again from there.
    c.send(m.revokeRole(ORG_A, world.qa_a.address, QA), world.alice)
    c.send(m.removeMember(ORG_A, world.qa_a.address), world.alice)
    join(world.dep, ORG_C, world.qa_a, world.erin)
    c.send(m.grantRole(ORG_C, world.qa_a.address, QA), world.erin)
    again = world.signed(vid, QA, world.qa_a, 2)
    assert c.revert_reason(f.approveBySig(again)) == "AlreadyApproved"
    assert f.approvalCount(vid, STAGING, QA).call() == 0  # the ORG_A approval is void
    c.send(world.approve(vid, QA), world.carol)
    call = f.deploy(STAGING, vid, world.subject(vid))
    assert c.revert_reason(call, world.carol) == "ApprovalsMissing"


# --- finding 9: the deployer role is global ------------------------------------------------


def test_finding9_org_admin_cannot_make_itself_a_deployer(world: World) -> None:
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    vid = world.register()
    _honest_approvals(world, vid)
    # Membership's org-level "deployer" role, granted by the org admin to itself, is nothing.
    c.send(m.grantRole(ORG_A, world.alice, DEPLOYER), world.alice)
    call = f.deploy(PROD, vid, world.subject(vid))
    assert c.revert_reason(call, world.alice) == "NotDeployer"
    role = f.deployerRole(PROD).call()
    assert c.revert_reason(f.grantRole(role, world.alice), world.alice) == (
        "AccessControlUnauthorizedAccount"
    )
    # A deployer of one environment deploys nowhere else.
    c.send(f.setRequirement(DEV, [QA], [1], 1, False), world.dep.admin)
    c.send(f.grantRole(f.deployerRole(DEV).call(), world.dave), world.dep.admin)
    assert c.revert_reason(call, world.dave) == "NotDeployer"
    assert c.revert_reason(f.rollbackTo(PROD, vid), world.dave) == "NotDeployer"
    c.send(f.deploy(DEV, vid, world.subject(vid)), world.dave)


# --- finding 10: membership without consent ------------------------------------------------


def test_finding10_org_admin_cannot_add_a_member_without_its_consent(world: World) -> None:
    c = world.chain
    m = world.dep.membership.functions
    victim = key(77)
    assert c.revert_reason(m.grantRole(ORG_B, victim.address, QA), world.bob) == "NotAMember"
    # A forged consent (bob signs for the victim) and a consent given to another
    # organisation both fail.
    forged = join_call(world.dep.membership, c.chain_id, ORG_B, victim)
    *args, _sig = forged.args
    bob_key = key(78)
    fake = join_call(world.dep.membership, c.chain_id, ORG_B, bob_key).args[-1]
    assert c.revert_reason(m.addMember(*args, fake), world.bob) == "WrongSigner"
    to_c = join_call(world.dep.membership, c.chain_id, ORG_C, victim, nonce=1)
    assert c.revert_reason(m.addMember(ORG_B, *to_c.args[1:]), world.bob) == "WrongSigner"
    # An invitation alone makes nobody a member, and blocks nothing: not even another
    # organisation's invitation sent after it.
    c.send(m.invite(ORG_C, world.outsider), world.erin)
    c.send(m.invite(ORG_B, world.outsider), world.bob)
    assert m.orgOf(world.outsider).call() == b"\0" * 32
    c.send(m.acceptInvitation(ORG_C), world.outsider)
    assert not m.isInvited(ORG_C, world.outsider).call()
    assert m.orgOf(world.outsider).call() == ORG_C
    c.send(to_c, world.erin)
    assert m.orgOf(victim.address).call() == ORG_C
    assert not m.hasRoleIn(ORG_C, victim.address, ADMIN).call()


# --- finding 12: all-or-nothing batches ----------------------------------------------------


def test_finding12_a_batch_skips_a_signature_relayed_before_it(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    first = world.signed(vid, QA, world.qa_a, 1)
    batch = [first, world.signed(vid, AUDITOR, world.auditor_b, 1)]
    c.send(f.approveBySig(first), world.outsider)  # the griefer relays one signature first
    receipt = c.send(f.approveBatch(batch))
    (skipped,) = c.events(world.registry, "ApprovalSkipped", receipt)
    assert (skipped.args.approver, skipped.args.nonce) == (world.qa_a.address, 1)
    assert len(c.events(world.registry, "Approved", receipt)) == 1
    assert f.gatePasses(PROD, vid).call()


# --- finding 13: single-step handovers, no delay on weakening ------------------------------


def test_finding13_weakening_prod_requirement_waits_for_the_delay(world: World) -> None:
    c, f = world.chain, world.registry.functions
    admin = world.dep.admin
    unapproved = world.register()
    receipt = c.send(f.setRequirement(PROD, [], [], 0, False), admin)
    (ev,) = c.events(world.registry, "RequirementScheduled", receipt)
    assert ev.args.eta >= c.w3.eth.get_block("latest")["timestamp"] + REGISTRY_DELAY
    assert f.getRequirement(PROD).call() == [[QA, AUDITOR], [1, 1], 2, False, True]
    call = f.deploy(PROD, unapproved, world.subject(unapproved))
    assert c.revert_reason(call, admin) == "ApprovalsMissing"
    assert c.revert_reason(f.applyRequirement(PROD), world.outsider) == "RequirementNotDue"
    # Allowing self-approval, or fewer organisations, weakens too.
    for weaker in (([QA, AUDITOR], [1, 1], 2, True), ([QA, AUDITOR], [1, 1], 1, False)):
        receipt = c.send(f.setRequirement(PROD, *weaker), admin)
        assert c.events(world.registry, "RequirementScheduled", receipt)
    # A stricter rule applies at once and drops the scheduled change.
    receipt = c.send(f.setRequirement(PROD, [QA, AUDITOR], [2, 1], 2, False), admin)
    assert c.events(world.registry, "RequirementCancelled", receipt)
    assert f.getRequirement(PROD).call()[1] == [2, 1]
    assert c.revert_reason(f.applyRequirement(PROD)) == "NoPendingRequirement"
    # After the delay, in public view the whole time, the weakening takes effect.
    c.send(f.setRequirement(PROD, [], [], 0, False), admin)
    warp(c, REGISTRY_DELAY + 1)
    c.send(f.applyRequirement(PROD), world.outsider)
    c.send(call, admin)


def test_finding13_registry_admin_handover_is_two_step_and_delayed(world: World) -> None:
    c, f = world.chain, world.registry.functions
    admin = world.dep.admin
    c.send(f.beginDefaultAdminTransfer(world.alice), admin)
    assert f.defaultAdmin().call() == admin
    assert c.revert_reason(f.acceptDefaultAdminTransfer(), world.alice) == (
        "AccessControlEnforcedDefaultAdminDelay"
    )
    assert c.revert_reason(f.acceptDefaultAdminTransfer(), world.bob) == (
        "AccessControlInvalidDefaultAdmin"
    )
    warp(c, REGISTRY_DELAY + 1)
    c.send(f.acceptDefaultAdminTransfer(), world.alice)
    assert f.defaultAdmin().call() == world.alice
    call = f.setRequirement(STAGING, [TRAINER], [1], 1, False)
    assert c.revert_reason(call, admin) == "AccessControlUnauthorizedAccount"
    c.send(call, world.alice)


def test_finding13_only_the_registry_admin_cancels_a_scheduled_weakening(world: World) -> None:
    """cancelRequirement: nothing to cancel is refused, an outsider cannot cancel, and a
    cancelled weakening can never be applied later."""
    c, f = world.chain, world.registry.functions
    admin = world.dep.admin
    assert c.revert_reason(f.cancelRequirement(PROD), admin) == "NoPendingRequirement"
    c.send(f.setRequirement(PROD, [], [], 0, False), admin)
    denied = c.revert_reason(f.cancelRequirement(PROD), world.outsider)
    assert denied == "AccessControlUnauthorizedAccount"
    receipt = c.send(f.cancelRequirement(PROD), admin)
    assert c.events(world.registry, "RequirementCancelled", receipt)
    warp(c, REGISTRY_DELAY + 1)
    assert c.revert_reason(f.applyRequirement(PROD), world.outsider) == "NoPendingRequirement"
    assert f.getRequirement(PROD).call() == [[QA, AUDITOR], [1, 1], 2, False, True]


def test_finding10_a_member_withdraws_its_consent_before_an_admin_uses_it(world: World) -> None:
    """cancelJoinNonce: a signed consent to join is dead once its signer cancels the nonce,
    and a nonce cannot be cancelled (or used) twice."""
    c = world.chain
    m = world.dep.membership.functions
    victim = key(79)
    consent = join_call(world.dep.membership, c.chain_id, ORG_B, victim, nonce=5)
    _send_as(world, m.cancelJoinNonce(5), victim)
    assert m.joinNonceUsed(victim.address, 5).call()
    assert c.revert_reason(consent, world.bob) == "JoinNonceUsed"
    assert m.orgOf(victim.address).call() == b"\0" * 32
    c.send(m.cancelJoinNonce(6), world.outsider)
    assert c.revert_reason(m.cancelJoinNonce(6), world.outsider) == "JoinNonceUsed"
