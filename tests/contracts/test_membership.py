"""Membership: organisations, members (who join only with their consent), roles and their
history, and the two-step global admin handover."""

from __future__ import annotations

from contract_helpers import (
    ADMIN,
    AUDITOR,
    QA,
    TRAINER,
    Deployment,
    create_org,
    join,
    join_call,
    key,
)
from eth_utils.crypto import keccak

from ailedger.chain.eip712 import Domain

ORG_A = keccak(text="org-a")
ORG_B = keccak(text="org-b")


def _setup(dep: Deployment) -> tuple[str, str, str, str]:
    c = dep.chain
    admin, alice, bob, carol = c.accounts[0], c.accounts[1], c.accounts[2], c.accounts[3]
    create_org(dep, ORG_A, alice)
    create_org(dep, ORG_B, bob)
    return admin, alice, bob, carol


def test_create_org_makes_the_admin_a_member_with_the_admin_role_once_it_accepts(
    dep: Deployment,
) -> None:
    c = dep.chain
    admin, alice, bob = c.accounts[0], c.accounts[1], c.accounts[2]
    m = dep.membership.functions
    receipt = c.send(m.createOrg(ORG_A, alice), admin)
    assert c.events(dep.membership, "OrgCreated", receipt)
    assert m.orgExists(ORG_A).call()
    assert m.orgOf(alice).call() == b"\0" * 32  # not before it consents
    assert m.isInvited(ORG_A, alice).call()
    assert c.revert_reason(m.acceptInvitation(ORG_A), bob) == "NotInvited"
    c.send(m.acceptInvitation(ORG_A), alice)
    assert m.orgOf(alice).call() == ORG_A
    assert m.hasRole(alice, ADMIN).call()
    assert m.hasRoleIn(ORG_A, alice, ADMIN).call()
    assert not m.hasRoleIn(ORG_B, alice, ADMIN).call()
    # The global admin founding an organisation for itself joins at once.
    c.send(m.createOrg(ORG_B, admin), admin)
    assert m.hasRoleIn(ORG_B, admin, ADMIN).call()


def test_signed_consent_adds_a_member(dep: Deployment) -> None:
    c = dep.chain
    _admin, alice, bob, _carol = _setup(dep)
    m = dep.membership.functions
    k = key(40)
    domain = Domain.membership(c.chain_id, dep.membership.address)
    assert m.domainSeparator().call() == domain.separator()
    receipt = c.send(join_call(dep.membership, c.chain_id, ORG_A, k, nonce=3), alice)
    (added,) = c.events(dep.membership, "MemberAdded", receipt)
    assert (added.args.account, added.args.sender) == (k.address, alice)
    assert m.orgOf(k.address).call() == ORG_A
    assert m.joinNonceUsed(k.address, 3).call()
    # Consent to organisation A does not take the key into B, nor can it be replayed.
    consent_a = join_call(dep.membership, c.chain_id, ORG_A, k, nonce=4)
    relabelled = m.addMember(ORG_B, *consent_a.args[1:])
    assert c.revert_reason(relabelled, bob) == "WrongSigner"
    assert c.revert_reason(join_call(dep.membership, c.chain_id, ORG_A, k, 3), alice) == (
        "JoinNonceUsed"
    )


def test_grant_and_revoke_emit_events_with_block_numbers(dep: Deployment) -> None:
    c = dep.chain
    _admin, alice, _bob, carol = _setup(dep)
    m = dep.membership.functions
    assert c.revert_reason(m.grantRole(ORG_A, carol, QA), alice) == "NotAMember"
    join(dep, ORG_A, carol, alice)
    receipt = c.send(m.grantRole(ORG_A, carol, QA), alice)
    (granted,) = c.events(dep.membership, "RoleGranted", receipt)
    assert granted.args.role == QA
    assert granted.args.blockNumber == receipt["blockNumber"]
    assert granted.args.sender == alice
    assert m.hasRole(carol, QA).call()
    assert m.activeRoleCount(carol).call() == 1
    assert m.roleTicket(ORG_A, carol, QA).call() == 1
    receipt = c.send(m.revokeRole(ORG_A, carol, QA), alice)
    (revoked,) = c.events(dep.membership, "RoleRevoked", receipt)
    assert revoked.args.blockNumber == receipt["blockNumber"]
    assert not m.hasRole(carol, QA).call()
    assert m.roleTicket(ORG_A, carol, QA).call() == 0
    assert m.orgOf(carol).call() == ORG_A  # still a member until removed
    c.send(m.grantRole(ORG_A, carol, QA), alice)
    assert m.roleTicket(ORG_A, carol, QA).call() == 2  # a new grant, a new ticket


def test_history_answers_role_at_block(dep: Deployment) -> None:
    c = dep.chain
    _admin, alice, _bob, carol = _setup(dep)
    m = dep.membership.functions
    join(dep, ORG_A, carol, alice)
    before = c.block_number()
    g1 = c.send(m.grantRole(ORG_A, carol, QA), alice)["blockNumber"]
    c.send(m.grantRole(ORG_A, carol, TRAINER), alice)
    r1 = c.send(m.revokeRole(ORG_A, carol, QA), alice)["blockNumber"]
    g2 = c.send(m.grantRole(ORG_A, carol, QA), alice)["blockNumber"]
    after = c.block_number()
    assert m.roleIntervalCount(ORG_A, carol, QA).call() == 2
    assert m.roleInterval(ORG_A, carol, QA, 0).call() == [g1, r1]
    assert m.roleInterval(ORG_A, carol, QA, 1).call() == [g2, 2**64 - 1]
    expected = {before: False, g1: True, r1 - 1: True, r1: False, g2 - 1: False, g2: True}
    expected[after + 100] = True
    for block, held in expected.items():
        assert m.hadRoleAt(ORG_A, carol, QA, block).call() is held, block
    assert not m.hadRoleAt(ORG_B, carol, QA, g1).call()
    assert not m.hadRoleAt(ORG_A, carol, AUDITOR, g1).call()


def test_member_of_one_org_cannot_join_another(dep: Deployment) -> None:
    c = dep.chain
    _admin, alice, bob, carol = _setup(dep)
    m = dep.membership.functions
    join(dep, ORG_A, carol, alice)
    c.send(m.grantRole(ORG_A, carol, QA), alice)
    assert c.revert_reason(m.grantRole(ORG_B, carol, QA), bob) == "NotAMember"
    assert c.revert_reason(m.invite(ORG_B, carol), bob) == "MemberOfOtherOrg"
    # Leaving needs every role revoked first.
    assert c.revert_reason(m.removeMember(ORG_A, carol), alice) == "RolesStillHeld"
    c.send(m.revokeRole(ORG_A, carol, QA), alice)
    receipt = c.send(m.removeMember(ORG_A, carol), alice)
    assert c.events(dep.membership, "MemberRemoved", receipt)
    assert m.orgOf(carol).call() == b"\0" * 32
    join(dep, ORG_B, carol, bob)
    c.send(m.grantRole(ORG_B, carol, AUDITOR), bob)
    assert m.orgOf(carol).call() == ORG_B
    assert m.hasRole(carol, AUDITOR).call()


def test_org_admins_can_delegate_admin(dep: Deployment) -> None:
    c = dep.chain
    _admin, alice, _bob, carol = _setup(dep)
    m = dep.membership.functions
    join(dep, ORG_A, carol, alice)
    c.send(m.grantRole(ORG_A, carol, ADMIN), alice)
    c.send(m.revokeRole(ORG_A, alice, ADMIN), carol)
    assert c.revert_reason(m.grantRole(ORG_A, alice, QA), alice) == "NotOrgAdmin"


def test_bad_input_is_rejected(dep: Deployment) -> None:
    c = dep.chain
    admin, alice, _bob, carol = _setup(dep)
    m = dep.membership.functions
    assert c.revert_reason(m.createOrg(ORG_A, carol), admin) == "OrgExists"
    assert c.revert_reason(m.createOrg(b"\0" * 32, carol), admin) == "ZeroOrgId"
    zero = "0x" + "00" * 20
    assert c.revert_reason(m.createOrg(keccak(text="x"), zero), admin) == "ZeroAddress"
    assert c.revert_reason(m.grantRole(keccak(text="nope"), carol, QA), admin) == "UnknownOrg"
    join(dep, ORG_A, carol, alice)
    assert c.revert_reason(m.grantRole(ORG_A, carol, b"\0" * 32), alice) == "ZeroRole"
    c.send(m.grantRole(ORG_A, carol, QA), alice)
    assert c.revert_reason(m.grantRole(ORG_A, carol, QA), alice) == "RoleAlreadyHeld"
    assert c.revert_reason(m.revokeRole(ORG_A, carol, TRAINER), alice) == "RoleNotHeld"
    assert c.revert_reason(m.invite(ORG_A, carol), alice) == "AlreadyMember"
    assert c.revert_reason(m.removeMember(ORG_A, admin), alice) == "NotAMember"


def test_global_admin_hands_over_in_two_steps(dep: Deployment) -> None:
    c = dep.chain
    admin, alice, _bob, carol = _setup(dep)
    m = dep.membership.functions
    c.send(m.transferOwnership(carol), admin)
    assert m.owner().call() == admin  # nothing changes until carol accepts
    assert m.pendingOwner().call() == carol
    assert c.revert_reason(m.acceptOwnership(), alice) == "OwnableUnauthorizedAccount"
    receipt = c.send(m.acceptOwnership(), carol)
    (ev,) = c.events(dep.membership, "OwnershipTransferred", receipt)
    assert (ev.args.previousOwner, ev.args.newOwner) == (admin, carol)
    call = m.createOrg(keccak(text="c"), alice)
    assert c.revert_reason(call, admin) == "OwnableUnauthorizedAccount"
    c.send(m.createOrg(keccak(text="c"), carol), carol)
