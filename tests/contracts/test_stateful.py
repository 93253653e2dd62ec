"""Hypothesis state machine over Membership, LogAnchors and ModelRegistry together.

Random role grants and revocations, members leaving and joining (with consent), version
registrations, approvals (direct and signed-and-relayed) and their withdrawal, deprecations,
deploys, rollbacks and anchors run against the contracts and a small Python model; every
outcome (success or the exact custom error) must match the model.
Invariants: the anchored size never decreases; a deployed digest always has its required
approvals from current, distinct members: at the block of every deploy or rollback, the
approvals on record for that version and digest (Approved minus ApprovalRevoked events), made
for that environment by approvers other than the registrant who held their role without a
break from the approval to that block, meet the requirement with distinct approvers per role
and distinct organisations (checked from the contracts' own events and role history, not from
the model). An approval whose approver lost the role or left no longer counts (issue 10,
finding 7: it used to).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from contract_helpers import (
    ANY_ENV,
    AUDITOR,
    ORG_A,
    ORG_B,
    ORG_C,
    PROD,
    QA,
    World,
    join,
    key,
    register_log,
    sign_checkpoint,
)
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _profiles import stateful_examples
from ailedger import merkle
from ailedger.chain.eip712 import log_id
from ailedger.identity.keys import Secp256k1Signer

ORIGIN = "stateful.example/log"
ROLES = (QA, AUDITOR)
REQUIRED = {QA: 1, AUDITOR: 1}
MIN_ORGS = 2
WITNESSES = [key(701 + i) for i in range(4)]
THRESHOLD = 2


class Machine(RuleBasedStateMachine):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.w = world
        self.c = world.chain
        self.snap = self.c.snapshot()
        self.start = self.c.block_number() + 1
        # Members: (address, org, org admin, signing key or None for a tx sender).
        self.members: list[tuple[str, bytes, str, Secp256k1Signer | None]] = [
            (world.qa_a.address, ORG_A, world.alice, world.qa_a),
            (world.auditor_b.address, ORG_B, world.bob, world.auditor_b),
            (world.qa_c.address, ORG_C, world.erin, world.qa_c),
            (key(801).address, ORG_B, world.bob, key(801)),
            (world.carol, ORG_A, world.alice, None),
            (world.dave, ORG_B, world.bob, None),
        ]
        # Roles as the model sees them (carol's deployer role is not modelled: not in ROLES).
        self.held: set[tuple[str, bytes]] = {
            (world.qa_a.address, QA),
            (world.auditor_b.address, AUDITOR),
            (world.qa_c.address, QA),
            (world.carol, QA),
            (world.dave, AUDITOR),
        }
        self.initial_held = set(self.held)
        #: (block, org, address, role) of every grant or revoke, to check the role history.
        self.role_log: list[tuple[int, bytes, str, bytes]] = []
        self.checked_roles = 0
        self.next_block = self.start  # first block whose deploys are not yet checked
        self.joined = {address for address, _, _, _ in self.members} - {key(801).address}
        #: Per (address, role), how many times it was granted: an approval names the grant.
        self.grants: Counter[tuple[str, bytes]] = Counter(dict.fromkeys(self.held, 1))
        self.versions: list[bytes] = []
        #: vid -> approver -> (role, org, grant number) of its one approval on record.
        self.approvals: dict[bytes, dict[str, tuple[bytes, bytes, int]]] = {}
        self.deprecated: set[bytes] = set()
        self.stack: list[bytes] = []
        self.nonce = 0
        self.anchored = 0
        self.has_anchor = False
        self.seen_size = 0
        signer = key(700)
        self.log_key = signer
        addresses = [w.address for w in WITNESSES]
        admin = self.c.accounts[0]
        call = register_log(
            world.dep.anchors, self.c.chain_id, ORIGIN, signer, addresses, THRESHOLD, admin
        )
        self.c.send(call)

    def teardown(self) -> None:
        if os.environ.get("STATS"):
            print(
                "STATS",
                len(self.versions),
                sum(map(len, self.approvals.values())),
                len(self.stack),
                self.anchored,
                len(self.deprecated),
            )
        self.c.revert_to(self.snap)

    # --- model helpers ----------------------------------------------------------------------

    def _valid(self, address: str, role: bytes, grant: int) -> bool:
        """Whether an approval made under grant ``grant`` of ``role`` still counts."""
        return (address, role) in self.held and self.grants[(address, role)] == grant

    def _gate(self, vid: bytes) -> str | None:
        """The error the gate should raise for ``vid`` in PROD, or None."""
        if vid in self.deprecated:
            return "VersionDeprecated"
        got = [
            (role, org)
            for address, (role, org, grant) in self.approvals.get(vid, {}).items()
            if role in REQUIRED and self._valid(address, role, grant)
        ]
        counts = Counter(role for role, _ in got)
        for role, need in REQUIRED.items():
            if counts[role] < need:
                return "ApprovalsMissing"
        if len({org for _, org in got}) < MIN_ORGS:
            return "TooFewOrganisations"
        return None

    def _outcome(self, call: Any, sender: str | None, expected: str | None) -> Any:
        if expected is None:
            return self.c.send(call, sender)
        assert self.c.revert_reason(call, sender) == expected
        return None

    # --- rules ------------------------------------------------------------------------------

    @initialize()
    def first_version(self) -> None:
        self.register()

    @rule(member=st.integers(0, 5), role=st.sampled_from(ROLES))
    def toggle_role(self, member: int, role: bytes) -> None:
        address, org, admin, k = self.members[member]
        m = self.w.dep.membership.functions
        if (address, role) in self.held:
            receipt = self.c.send(m.revokeRole(org, address, role), admin)
            self.held.discard((address, role))
        else:
            if address not in self.joined:  # joining takes the member's consent
                join(self.w.dep, org, k if k is not None else address, admin)
                self.joined.add(address)
            receipt = self.c.send(m.grantRole(org, address, role), admin)
            self.held.add((address, role))
            self.grants[(address, role)] += 1
        self.role_log.append((receipt["blockNumber"], org, address, role))

    @rule(member=st.integers(0, 5))
    def leave(self, member: int) -> None:
        """The member's roles are revoked and it is removed from its organisation."""
        address, org, admin, _ = self.members[member]
        if address not in self.joined:
            return
        m = self.w.dep.membership.functions
        for role in ROLES:
            if (address, role) in self.held:
                receipt = self.c.send(m.revokeRole(org, address, role), admin)
                self.held.discard((address, role))
                self.role_log.append((receipt["blockNumber"], org, address, role))
        self.c.send(m.removeMember(org, address), admin)
        self.joined.discard(address)

    @rule(data=st.data(), member=st.sampled_from([4, 5]))
    def withdraw(self, data: st.DataObject, member: int) -> None:
        """A tx-sending approver withdraws its approval of a version."""
        vid = data.draw(st.sampled_from(self.versions), label="version")
        address = self.members[member][0]
        had = address in self.approvals.get(vid, {})
        call = self.w.registry.functions.revokeApproval(vid)
        self._outcome(call, address, None if had else "NotApproved")
        self.approvals.get(vid, {}).pop(address, None)

    @rule()
    def register(self) -> None:
        if len(self.versions) >= 3:  # few versions, so approvals pile up and deploys happen
            return
        self.versions.append(self.w.register("model", str(len(self.versions))))

    @rule(data=st.data(), member=st.integers(0, 5), role=st.sampled_from(ROLES))
    def approve(self, data: st.DataObject, member: int, role: bytes) -> None:
        self._approve(data, member, role)

    @rule(data=st.data(), member=st.integers(0, 5), role=st.sampled_from(ROLES))
    def approve_again(self, data: st.DataObject, member: int, role: bytes) -> None:
        """A second approval rule, so approvals come often enough to open the gate."""
        self._approve(data, member, role)

    @rule(data=st.data())
    def approve_batch(self, data: st.DataObject) -> None:
        """Signed approvals from several organisations, relayed in one transaction."""
        vid = data.draw(st.sampled_from(self.versions), label="version")
        picks = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3), label="signers")
        batch: list[Any] = []
        added: dict[str, tuple[bytes, bytes, int]] = {}
        expected: str | None = None
        for i in picks:
            address, org, _, k = self.members[i]
            assert k is not None
            held = [r for r in ROLES if (address, r) in self.held]
            role = held[0] if held else QA
            error = self._approval_error(vid, address, role, added)
            expected = expected or error
            added[address] = (role, org, self.grants[(address, role)])
            self.nonce += 1
            batch.append(self.w.signed(vid, role, k, self.nonce))
        self._outcome(self.w.registry.functions.approveBatch(batch), self.w.outsider, expected)
        if expected is None:
            self.approvals.setdefault(vid, {}).update(added)
        if data.draw(st.booleans(), label="then deploy"):
            self._deploy(vid)

    def _approval_error(
        self,
        vid: bytes,
        address: str,
        role: bytes,
        pending: dict[str, Any] | None = None,
    ) -> str | None:
        if vid in self.deprecated:
            return "VersionDeprecated"
        if address not in self.joined:
            return "NotAMember"
        if (address, role) not in self.held:
            return "RoleNotHeld"
        if address in self.approvals.get(vid, {}) or address in (pending or {}):
            return "AlreadyApproved"
        return None

    def _approve(self, data: st.DataObject, member: int, role: bytes) -> None:
        vid = data.draw(st.sampled_from(self.versions), label="version")
        address, org, _, k = self.members[member]
        held = [r for r in ROLES if (address, r) in self.held]
        if held and data.draw(st.integers(0, 3), label="prefer held role") != 0:
            role = held[0]
        expected = self._approval_error(vid, address, role)
        f = self.w.registry.functions
        if k is None:  # the approver's own transaction
            self._outcome(self.w.approve(vid, role), address, expected)
        else:  # signed, relayed by someone else
            self.nonce += 1
            signed = self.w.signed(vid, role, k, self.nonce)
            self._outcome(f.approveBySig(signed), self.w.outsider, expected)
        if expected is None:
            self.approvals.setdefault(vid, {})[address] = (role, org, self.grants[(address, role)])

    @rule(data=st.data())
    def deprecate(self, data: st.DataObject) -> None:
        vid = data.draw(st.sampled_from(self.versions), label="version")
        expected = "VersionDeprecated" if vid in self.deprecated else None
        self._outcome(self.w.registry.functions.deprecate(vid), self.w.dep.admin, expected)
        self.deprecated.add(vid)

    @rule(data=st.data())
    def deploy(self, data: st.DataObject) -> None:
        self._deploy(data.draw(st.sampled_from(self.versions), label="version"))

    def _deploy(self, vid: bytes) -> None:
        expected = self._gate(vid)
        if expected is None and self.stack and self.stack[-1] == vid:
            expected = "AlreadyCurrent"
        call = self.w.registry.functions.deploy(PROD, vid, self.w.subject(vid))
        self._outcome(call, self.w.carol, expected)
        if expected is None:
            self.stack.append(vid)

    @precondition(lambda self: any(self._gate(v) is None for v in self.versions))
    @rule(data=st.data())
    def deploy_ready(self, data: st.DataObject) -> None:
        """Deploy a version the model says passes the gate (random picks rarely do)."""
        ready = [v for v in self.versions if self._gate(v) is None]
        vid = data.draw(st.sampled_from(ready), label="version")
        expected = "AlreadyCurrent" if self.stack and self.stack[-1] == vid else None
        call = self.w.registry.functions.deploy(PROD, vid, self.w.subject(vid))
        self._outcome(call, self.w.carol, expected)
        if expected is None:
            self.stack.append(vid)

    @precondition(lambda self: any(self._gate(v) is None for v in self.versions))
    @rule(data=st.data())
    def approver_leaves_then_deploy(self, data: st.DataObject) -> None:
        """A version is ready; one of its counted approvers loses the role (and maybe leaves
        its organisation); then the version is deployed: the approval must not count."""
        vid = data.draw(st.sampled_from([v for v in self.versions if self._gate(v) is None]))
        counted = sorted(
            (address, role)
            for address, (role, _, grant) in self.approvals[vid].items()
            if self._valid(address, role, grant)
        )
        address, role = data.draw(st.sampled_from(counted), label="approver")
        member = next(i for i, (a, *_) in enumerate(self.members) if a == address)
        if data.draw(st.booleans(), label="leaves"):
            self.leave(member)
        else:
            self.toggle_role(member, role)
        self._deploy(vid)

    @rule(data=st.data())
    def rollback_to(self, data: st.DataObject) -> None:
        """Roll back to a version PROD ran before (what the CLI's rollback sends): it passes
        the gate again and joins the history."""
        vid = data.draw(st.sampled_from(self.versions), label="version")
        if vid not in self.stack:
            expected: str | None = "NeverDeployed"
        else:
            expected = self._gate(vid)
            if expected is None and self.stack[-1] == vid:
                expected = "AlreadyCurrent"
        self._outcome(self.w.registry.functions.rollbackTo(PROD, vid), self.w.carol, expected)
        if expected is None:
            self.stack.append(vid)

    @rule(delta=st.integers(-3, 20), witnesses=st.integers(0, 4))
    def anchor(self, delta: int, witnesses: int) -> None:
        size = max(0, self.anchored + delta)
        root = merkle.root([b"%d" % i for i in range(size)])
        sig, cosigs = sign_checkpoint(
            self.w.dep.anchors,
            self.c.chain_id,
            log_id(ORIGIN, self.log_key.address),
            size,
            root,
            self.log_key,
            WITNESSES[:witnesses],
        )
        first = not self.has_anchor
        expected: str | None = None
        if not first and size < self.anchored:
            expected = "SizeDecreased"
        elif not first and size == self.anchored:
            expected = "AlreadyAnchored"
        elif witnesses < THRESHOLD:
            expected = "ThresholdNotMet"
        call = self.w.dep.anchors.functions.anchor(
            log_id(ORIGIN, self.log_key.address), size, root, sig, cosigs
        )
        self._outcome(call, None, expected)
        if expected is None:
            self.anchored = size
            self.has_anchor = True

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def anchored_size_never_decreases(self) -> None:
        size = self.w.dep.anchors.functions.latestAnchor(
            log_id(ORIGIN, self.log_key.address)
        ).call()[0]
        assert size == self.anchored
        assert size >= self.seen_size
        self.seen_size = size

    @invariant()
    def role_history_matches_model(self) -> None:
        """hadRoleAt(org, account, role, B) replays the model: for each new grant or revoke
        here, for the whole run (and before it) at teardown."""
        if self.checked_roles < len(self.role_log):
            self._check_role_history(self.checked_roles)
            self.checked_roles = len(self.role_log)

    def _check_role_history(self, start: int) -> None:
        m = self.w.dep.membership.functions
        held = set(self.initial_held)
        if start == 0 and self.role_log:
            for address, org, _, _ in self.members:
                for role in ROLES:
                    expected = (address, role) in held
                    assert m.hadRoleAt(org, address, role, self.start - 1).call() is expected
        for i, (block, org, address, role) in enumerate(self.role_log):
            held ^= {(address, role)}
            if i < start:
                continue
            expected = (address, role) in held
            assert m.hadRoleAt(org, address, role, block).call() is expected
            assert m.hadRoleAt(org, address, role, block - 1).call() is not expected

    @invariant()
    def current_version_matches_model(self) -> None:
        current = self.w.registry.functions.currentVersion(PROD).call()
        assert current == (self.stack[-1] if self.stack else b"\0" * 32)

    @invariant()
    def deployed_digest_has_its_approvals_from_current_distinct_members(self) -> None:
        reg = self.w.registry
        head = self.c.block_number()
        if head < self.next_block:
            return
        window = {"from_block": self.next_block, "to_block": head}
        self.next_block = head + 1
        moves = [*reg.events.Deployed.get_logs(**window), *reg.events.RolledBack.get_logs(**window)]
        if not moves:
            return
        since = {"from_block": self.start}
        approvals = reg.events.Approved.get_logs(**since)
        revoked = reg.events.ApprovalRevoked.get_logs(**since)
        for move in moves:
            self._check_move(move.args.versionId, move.blockNumber, approvals, revoked)

    def _check_move(self, vid: bytes, block: int, approvals: Any, revoked: Any) -> None:
        """At ``block``, ``vid`` was deployed: its approvals on record then must meet PROD's
        requirement, by distinct members who held their role without a break since."""
        version = self.w.registry.functions.getVersion(vid).call()
        subject, registrant = version[1], version[3]
        on_record: dict[str, Any] = {}
        events = [(a.blockNumber, 0, a) for a in approvals if a.args.versionId == vid]
        events += [(r.blockNumber, 1, r) for r in revoked if r.args.versionId == vid]
        for at, kind, ev in sorted(events, key=lambda e: (e[0], e[1])):
            if at > block:
                break
            if kind == 0:
                on_record[ev.args.approver] = ev
            else:
                on_record.pop(ev.args.approver, None)
        counted: dict[bytes, set[str]] = {role: set() for role in REQUIRED}
        orgs = set()
        for approver, ev in on_record.items():
            a = ev.args
            if a.env not in (ANY_ENV, PROD) or a.role not in REQUIRED or approver == registrant:
                continue
            assert a.subjectDigest == subject
            if self._held_throughout(a.orgId, approver, a.role, ev.blockNumber, block):
                counted[a.role].add(approver)
                orgs.add(a.orgId)
        people = [p for members in counted.values() for p in members]
        assert len(people) == len(set(people)), "one approver filled two roles"
        for role, need in REQUIRED.items():
            assert len(counted[role]) >= need, (vid, block, role)
        assert len(orgs) >= MIN_ORGS, (vid, block)

    def _held_throughout(self, org: bytes, account: str, role: bytes, start: int, end: int) -> bool:
        """Whether ``account`` held ``role`` in ``org`` in one grant from block ``start`` to
        block ``end`` (so it stayed a member: leaving needs every role revoked)."""
        m = self.w.dep.membership.functions
        for i in range(m.roleIntervalCount(org, account, role).call()):
            lo, hi = m.roleInterval(org, account, role, i).call()
            if lo <= start < hi:
                return end < hi
        return False


@pytest.mark.slow
def test_contracts_state_machine(world: World) -> None:
    run_state_machine_as_test(
        lambda: Machine(world),  # type: ignore[arg-type]
        # No shrinking: each step is a transaction, and shrinking a failure takes minutes.
        settings=settings(
            # 12 sequences; >= 1,000 in the slow profile (minutes per example on anvil).
            max_examples=stateful_examples(12),
            stateful_step_count=20,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )
