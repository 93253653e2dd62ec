"""Hypothesis state machine over LogAnchors alone (issue 10's invariant for it).

Random anchors (with and without consistency proofs, by subsets of a pool of keys that holds
witnesses and strangers, some of them forks), later proofs, witness-set proposals,
cancellations and applications, time jumps and admin handovers run against the contract and
a small Python model; every outcome (success or the exact custom error) must match the model.

Invariants, read from the contract: an anchored size never shrinks; every stored anchor has
at least as many cosignatures as the threshold of the witness set that was current at its
block, and names that set; the per-anchor "consistency proven" flag is true exactly when the
model saw a valid proof; pending changes are not in force before their delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from anchor_helpers import CONFIG_DELAY, Log, sorted_keys, warp
from contract_helpers import Deployment, key, register_log
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _profiles import stateful_examples
from ailedger import merkle
from ailedger.chain.eip712 import log_id

ORIGIN = "stateful.example/anchors"
POOL = sorted_keys([key(801 + i) for i in range(6)])
LOG_KEY = key(800)
ENTRIES = [b"entry %d" % i for i in range(64)]
FORK = [b"forked", *ENTRIES[1:]]


@dataclass
class WitnessSet:
    members: frozenset[str]
    threshold: int


@dataclass
class Model:
    epochs: dict[int, WitnessSet] = field(default_factory=dict)
    epoch: int = 1
    next_epoch: int = 2
    pending: tuple[int, int] | None = None  # (epoch, effective at)
    admin: str = ""
    pending_admin: str | None = None
    # Anchors: (size, forked, witness epoch, cosignatures, proven).
    anchors: list[list[object]] = field(default_factory=list)


class AnchorMachine(RuleBasedStateMachine):
    def __init__(self, dep: Deployment) -> None:
        super().__init__()
        self.dep = dep
        self.c = dep.chain
        self.f = dep.anchors.functions
        self.snap = self.c.snapshot()
        self.admins = self.c.accounts[1:4]
        first = frozenset(k.address for k in POOL[:3])
        self.m = Model(epochs={1: WitnessSet(first, 2)}, admin=self.admins[0])
        call = register_log(
            dep.anchors, self.c.chain_id, ORIGIN, LOG_KEY, sorted(first), 2, self.m.admin
        )
        self.c.send(call, self.m.admin)
        self.log = Log(self.c, dep.anchors, log_id(ORIGIN, LOG_KEY.address), LOG_KEY, [], "")
        self.seen_size = 0

    def teardown(self) -> None:
        self.c.revert_to(self.snap)

    # --- helpers ------------------------------------------------------------------------

    def _outcome(self, call: object, sender: str | None, expected: str | None) -> None:
        if expected is None:
            self.c.send(call, sender)
        else:
            assert self.c.revert_reason(call, sender) == expected

    def _root(self, size: int, forked: bool) -> bytes:
        return merkle.root((FORK if forked else ENTRIES)[:size])

    def _latest(self) -> tuple[int, bool] | None:
        if not self.m.anchors:
            return None
        size, forked = self.m.anchors[-1][0], self.m.anchors[-1][1]
        assert isinstance(size, int)
        assert isinstance(forked, bool)
        return size, forked

    def _anchor_error(self, size: int, forked: bool, signers: list[str]) -> str | None:
        latest = self._latest()
        if latest is not None:
            if size < latest[0]:
                return "SizeDecreased"
            if size == latest[0]:
                same = self._root(size, forked) == self._root(*latest)
                return "AlreadyAnchored" if same else "RootConflict"
        return None

    def _sig_error(self, signers: list[str]) -> str | None:
        current = self.m.epochs[self.m.epoch]
        if len(signers) < current.threshold:
            return "ThresholdNotMet"
        if any(s not in current.members for s in signers):
            return "NotAWitness"
        return None

    def _extends(self, old: tuple[int, bool] | None, size: int, forked: bool) -> bool:
        """Whether a valid proof exists from ``old`` (or the empty tree) to (size, forked)."""
        if old is None or old[0] == 0:
            return True
        return self._root(old[0], old[1]) == self._root(old[0], forked)

    # --- rules --------------------------------------------------------------------------

    @rule(
        grow=st.integers(0, 12),
        forked=st.booleans(),
        who=st.sets(st.integers(0, len(POOL) - 1), max_size=4),
        with_proof=st.booleans(),
    )
    def anchor(self, grow: int, forked: bool, who: set[int], with_proof: bool) -> None:
        latest = self._latest()
        size = min(len(ENTRIES), (latest[0] if latest else 0) + grow)
        signers = [POOL[i] for i in sorted(who)]
        addresses = [k.address for k in signers]
        root = self._root(size, forked)
        if not with_proof:
            expected = self._anchor_error(size, forked, addresses) or self._sig_error(addresses)
            self._outcome(self.log.anchor(size, root, signers), None, expected)
            if expected is None:
                self.m.anchors.append([size, forked, self.m.epoch, len(signers), False])
            return
        # anchorWithProof: the honest proof from the latest anchor when one exists.
        unproven_same = (
            latest is not None
            and self._root(size, forked) == self._root(*latest)
            and size == latest[0]
            and not self.m.anchors[-1][4]
        )
        if unproven_same:
            before = self.m.anchors[-2] if len(self.m.anchors) > 1 else None
            old = None if before is None else (before[0], before[1])
            proof = self._proof(old, size, forked)
            ok = proof is not None and self._extends(old, size, forked)  # type: ignore[arg-type]
            call = self.log.anchor_with_proof(size, root, proof or [], signers)
            self._outcome(call, None, None if ok else "ConsistencyProofInvalid")
            if ok:
                self.m.anchors[-1][4] = True
            return
        expected = self._anchor_error(size, forked, addresses)
        proof = self._proof(latest, size, forked)
        if expected is None and (proof is None or not self._extends(latest, size, forked)):
            expected = "ConsistencyProofInvalid"
        if expected is None:
            expected = self._sig_error(addresses)
        call = self.log.anchor_with_proof(size, root, proof or [], signers)
        self._outcome(call, None, expected)
        if expected is None:
            self.m.anchors.append([size, forked, self.m.epoch, len(signers), True])

    def _proof(self, old: tuple[int, bool] | None, size: int, forked: bool) -> list[bytes] | None:
        """A proof from ``old`` to (size, forked) built over the new tree's own entries (valid
        exactly when the old tree is a prefix); None if sizes make none."""
        if old is None or old[0] == 0:
            return []
        if old[0] > size:
            return None
        if old[0] == size:
            return []
        return merkle.consistency_proof((FORK if forked else ENTRIES)[:size], old[0])

    @precondition(lambda self: any(not a[4] for a in self.m.anchors))
    @rule(data=st.data())
    def prove_later(self, data: st.DataObject) -> None:
        open_ = [i for i, a in enumerate(self.m.anchors) if not a[4]]
        i = data.draw(st.sampled_from(open_), label="index")
        size, forked = self.m.anchors[i][0], self.m.anchors[i][1]
        assert isinstance(size, int)
        assert isinstance(forked, bool)
        old = None if i == 0 else (self.m.anchors[i - 1][0], self.m.anchors[i - 1][1])
        proof = self._proof(old, size, forked)  # type: ignore[arg-type]
        ok = proof is not None and self._extends(old, size, forked)  # type: ignore[arg-type]
        call = self.f.proveConsistency(self.log.id, i, proof or [])
        self._outcome(call, None, None if ok else "ConsistencyProofInvalid")
        if ok:
            self.m.anchors[i][4] = True

    @rule(who=st.sets(st.integers(0, len(POOL) - 1), max_size=5), threshold=st.integers(0, 5))
    def propose(self, who: set[int], threshold: int) -> None:
        members = sorted(POOL[i].address for i in who)
        expected = None
        if threshold == 0:
            expected = "ThresholdZero"
        elif threshold > len(members):
            expected = "ThresholdTooHigh"
        call = self.f.proposeWitnessSet(self.log.id, members, threshold)
        self._outcome(call, self.m.admin, expected)
        if expected is None:
            epoch = self.m.next_epoch
            self.m.next_epoch += 1
            self.m.epochs[epoch] = WitnessSet(frozenset(members), threshold)
            now = int(self.c.w3.eth.get_block("latest")["timestamp"])
            self.m.pending = (epoch, now + CONFIG_DELAY)

    @rule()
    def cancel(self) -> None:
        expected = None if self.m.pending else "NoPendingChange"
        self._outcome(self.f.cancelWitnessSet(self.log.id), self.m.admin, expected)
        self.m.pending = None

    @rule()
    def apply(self) -> None:
        # The transaction's block comes at least a second after the latest one; how much
        # later is the backend's business, so the few seconds around the boundary are left
        # alone rather than guessed (the waits below never land there on purpose).
        now = int(self.c.w3.eth.get_block("latest")["timestamp"])
        expected = None
        if self.m.pending is None:
            expected = "NoPendingChange"
        elif abs(now - self.m.pending[1]) <= 30:
            return
        elif now < self.m.pending[1]:
            expected = "ChangeNotReady"
        self._outcome(self.f.applyWitnessSet(self.log.id), None, expected)
        if expected is None and self.m.pending is not None:
            self.m.epoch = self.m.pending[0]
            self.m.pending = None

    @rule(seconds=st.sampled_from([97, CONFIG_DELAY // 2 + 1001, CONFIG_DELAY + 3001]))
    def wait(self, seconds: int) -> None:
        warp(self.c, seconds)

    @rule(to=st.integers(0, 2))
    def transfer_admin(self, to: int) -> None:
        self.c.send(self.f.transferLogAdmin(self.log.id, self.admins[to]), self.m.admin)
        self.m.pending_admin = self.admins[to]

    @rule(who=st.integers(0, 2))
    def accept_admin(self, who: int) -> None:
        sender = self.admins[who]
        expected = None if sender == self.m.pending_admin else "NotPendingAdmin"
        self._outcome(self.f.acceptLogAdmin(self.log.id), sender, expected)
        if expected is None:
            self.m.admin, self.m.pending_admin = sender, None

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def anchored_size_never_shrinks(self) -> None:
        size = self.f.latestAnchor(self.log.id).call()[0]
        latest = self._latest()
        assert size == (latest[0] if latest else 0)
        assert size >= self.seen_size
        self.seen_size = size

    @invariant()
    def every_anchor_met_its_witness_threshold(self) -> None:
        assert self.f.anchorCount(self.log.id).call() == len(self.m.anchors)
        for i, (size, _forked, epoch, cosigs, proven) in enumerate(self.m.anchors):
            stored = self.log.stored(i)
            assert (stored["size"], stored["witness_epoch"]) == (size, epoch)
            assert stored["cosignatures"] == cosigs
            assert isinstance(epoch, int)
            assert stored["cosignatures"] >= self.m.epochs[epoch].threshold >= 1
            assert stored["consistency_proven"] is proven

    @invariant()
    def rules_in_force_match_the_model(self) -> None:
        info = self.log.info()
        current = self.m.epochs[self.m.epoch]
        assert (info["epoch"], info["threshold"]) == (self.m.epoch, current.threshold)
        assert info["witness_count"] == len(current.members)
        assert info["admin"] == self.m.admin
        assert info["pending_epoch"] == (self.m.pending[0] if self.m.pending else 0)
        for k in POOL:
            assert self.f.isWitness(self.log.id, k.address).call() is (k.address in current.members)


@pytest.mark.slow
def test_log_anchors_state_machine(dep: Deployment) -> None:
    run_state_machine_as_test(
        lambda: AnchorMachine(dep),  # type: ignore[arg-type]
        settings=settings(
            max_examples=stateful_examples(15),
            stateful_step_count=25,
            deadline=None,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )
