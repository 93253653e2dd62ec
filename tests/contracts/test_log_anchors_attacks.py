"""The outside review's attacks on LogAnchors (issue 10), each run and seen to fail, on py-evm
and on anvil (the ``dep`` fixture runs every test on both).

* finding 5, log squatting: a squatter registers the operator's origin first;
* finding 6, anchors without witnesses: threshold 0, the admin swapping the witness set at
  once, and an anchor that does not extend the previous one stored as if checked;
* finding 11, signatures copied into ``anchor()`` ahead of the operator's ``anchorWithProof``;
* finding 13, single-step admin handover and instant weakening of the witness rule.
"""

from __future__ import annotations

from anchor_helpers import CONFIG_DELAY, Log, register, sorted_keys, warp
from contract_helpers import Deployment, key, register_log
from web3 import Web3

from ailedger import merkle
from ailedger.chain.eip712 import log_id

ORIGIN = "attack.example/log"


def leaves(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


def test_finding5_log_squatting_does_not_lock_the_operator_out(dep: Deployment) -> None:
    c = dep.chain
    operator_key, squatter_key = key(100), key(66)
    operator, squatter = c.accounts[1], c.accounts[6]
    witnesses = [key(101).address, key(102).address]
    # The squatter registers the operator's origin first, with a key of its own: that works,
    # but it names another log (origin and key together).
    call = register_log(dep.anchors, c.chain_id, ORIGIN, squatter_key, witnesses, 1, squatter)
    c.send(call, squatter)
    squatted = log_id(ORIGIN, squatter_key.address)
    real = log_id(ORIGIN, operator_key.address)
    assert squatted != real
    # The squatter cannot register the operator's (origin, key): it has no consent from the
    # operator's key, and a consent copied from the operator's transaction names the operator.
    own_consent = register_log(
        dep.anchors, c.chain_id, ORIGIN, squatter_key, witnesses, 1, squatter
    )
    forged = dep.anchors.functions.registerLog(
        ORIGIN, operator_key.address, witnesses, 1, own_consent.args[4]
    )
    assert c.revert_reason(forged, squatter) == "NotLogSigner"
    honest = register_log(dep.anchors, c.chain_id, ORIGIN, operator_key, witnesses, 1, operator)
    assert c.revert_reason(honest, squatter) == "NotLogSigner"
    # The operator is not locked out: its registration and anchors go through.
    receipt = c.send(honest, operator)
    (ev,) = c.events(dep.anchors, "LogRegistered", receipt)
    assert (ev.args.logId, ev.args.admin, ev.args.signer) == (real, operator, operator_key.address)
    assert dep.anchors.functions.getLog(real).call()[0] == operator
    op_log = Log(c, dep.anchors, real, operator_key, [key(101)], operator)
    c.send(op_log.anchor(4, merkle.root(leaves(4))))
    assert dep.anchors.functions.anchorCount(real).call() == 1
    assert dep.anchors.functions.anchorCount(squatted).call() == 0


def test_finding6_anchors_without_witnesses_are_refused(dep: Deployment) -> None:
    c = dep.chain
    admin = c.accounts[1]
    call = register_log(dep.anchors, c.chain_id, ORIGIN, key(100), [], 0, admin)
    assert c.revert_reason(call, admin) == "ThresholdZero"
    call = register_log(dep.anchors, c.chain_id, ORIGIN, key(100), [key(101).address], 0, admin)
    assert c.revert_reason(call, admin) == "ThresholdZero"
    log = register(dep, witnesses=2, threshold=1, origin=ORIGIN)
    f = dep.anchors.functions
    assert c.revert_reason(f.proposeWitnessSet(log.id, [], 0), log.admin) == "ThresholdZero"
    assert c.revert_reason(f.proposeWitnessSet(log.id, [], 1), log.admin) == "ThresholdTooHigh"
    # Zero cosignatures never anchor.
    assert c.revert_reason(log.anchor(8, merkle.root(leaves(8)), [])) == "ThresholdNotMet"
    assert f.anchorCount(log.id).call() == 0


def test_finding6_admin_cannot_swap_the_witness_set_at_once(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, witnesses=3, threshold=2, origin=ORIGIN)
    f = dep.anchors.functions
    entries = leaves(8)
    c.send(log.anchor_with_proof(4, merkle.root(entries[:4]), []))
    # The admin replaces the witnesses by a key of its own, threshold 1 ...
    own = key(666)
    receipt = c.send(f.proposeWitnessSet(log.id, [own.address], 1), log.admin)
    (ev,) = c.events(dep.anchors, "WitnessSetProposed", receipt)  # ... which everyone sees
    assert ev.args.effectiveAt >= c.w3.eth.get_block("latest")["timestamp"] + CONFIG_DELAY
    # ... and tries to anchor a forked size-8 tree with that key alone, at once: refused.
    forked = merkle.root([b"evil", *entries[1:]])
    assert c.revert_reason(log.anchor(8, forked, [own])) == "ThresholdNotMet"
    both = sorted_keys([own, log.witnesses[0]])
    assert c.revert_reason(log.anchor(8, forked, both)) == "NotAWitness"
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "ChangeNotReady"
    warp(c, CONFIG_DELAY // 2)
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "ChangeNotReady"
    # The witnesses had the delay to react; the honest log still anchors under the old set.
    c.send(log.anchor(8, merkle.root(entries)))
    assert f.latestAnchor(log.id).call()[0] == 8


def test_finding6_unproven_anchor_is_flagged_in_storage(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, witnesses=3, threshold=2, origin=ORIGIN)
    f = dep.anchors.functions
    entries = leaves(8)
    c.send(log.anchor_with_proof(4, merkle.root(entries[:4]), []))
    # The review's attack: a size-8 root that does not extend the anchored size-4 tree,
    # anchored without a proof (now it needs >= 1 witness: here two colluding ones).
    rewritten = [b"rewritten", *entries[1:]]
    c.send(log.anchor(8, merkle.root(rewritten)))
    stored = log.stored(1)
    assert stored["cosignatures"] == 3
    assert stored["size"] == 8
    assert not stored["consistency_proven"]  # in storage, not only in an event
    assert log.stored(0)["consistency_proven"]
    # Nobody can mark it proven: no proof makes a rewritten tree extend the old one.
    proof = merkle.consistency_proof(rewritten, 4)
    assert c.revert_reason(f.proveConsistency(log.id, 1, proof)) == "ConsistencyProofInvalid"
    assert c.revert_reason(f.proveConsistency(log.id, 1, [])) == "ConsistencyProofInvalid"
    assert c.revert_reason(f.proveConsistency(log.id, 2, [])) == "NoSuchAnchor"
    assert c.revert_reason(f.proveConsistency(log.id, 0, [])) == "AlreadyProven"
    assert not log.stored(1)["consistency_proven"]


def test_finding6_an_honest_unproven_anchor_can_be_proven_later(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, witnesses=3, threshold=2, origin=ORIGIN)
    f = dep.anchors.functions
    entries = leaves(13)
    c.send(log.anchor(5, merkle.root(entries[:5])))
    c.send(log.anchor(13, merkle.root(entries)))
    assert not log.stored(1)["consistency_proven"]
    receipt = c.send(f.proveConsistency(log.id, 1, merkle.consistency_proof(entries, 5)))
    (ev,) = c.events(dep.anchors, "ConsistencyProven", receipt)
    assert (ev.args.index, ev.args.oldSize, ev.args.size) == (1, 5, 13)
    assert log.stored(1)["consistency_proven"]
    c.send(f.proveConsistency(log.id, 0, []))  # the first anchor: from the empty tree
    assert log.stored(0)["consistency_proven"]


def test_finding11_copied_signatures_do_not_degrade_the_stored_anchor(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, witnesses=3, threshold=2, origin=ORIGIN)
    f = dep.anchors.functions
    entries = leaves(8)
    c.send(log.anchor_with_proof(4, merkle.root(entries[:4]), []))
    root, proof = merkle.root(entries), merkle.consistency_proof(entries, 4)
    operator_call = log.anchor_with_proof(8, root, proof)
    # The attacker copies the public signatures from the operator's pending transaction
    # into anchor(), which lands first and stores the anchor unproven ...
    lid, size, root_, sig, cosigs, _ = operator_call.args
    c.send(f.anchor(lid, size, root_, sig, cosigs), c.accounts[6])
    assert not log.stored(1)["consistency_proven"]
    # ... but the operator's anchorWithProof still goes through and marks it proven.
    assert operator_call.call() == 1
    receipt = c.send(operator_call)
    (ev,) = c.events(dep.anchors, "ConsistencyProven", receipt)
    assert (ev.args.index, ev.args.oldSize, ev.args.size) == (1, 4, 8)
    assert log.stored(1)["consistency_proven"]
    assert f.anchorCount(log.id).call() == 2
    # Once proven, the same checkpoint again is a replay.
    assert c.revert_reason(operator_call) == "AlreadyAnchored"


def test_finding13_log_admin_handover_is_two_step(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, origin=ORIGIN)
    f = dep.anchors.functions
    abi_names = {item.get("name") for item in dep.anchors.abi}
    assert "setLogAdmin" not in abi_names
    assert "setLogSigner" not in abi_names
    mallory, typo = c.accounts[6], Web3.to_checksum_address("0x" + "de" * 20)
    assert c.revert_reason(f.transferLogAdmin(log.id, mallory), mallory) == "NotLogAdmin"
    # A handover to a wrong address does not lose the log: the admin is still in charge.
    c.send(f.transferLogAdmin(log.id, typo), log.admin)
    assert c.revert_reason(f.acceptLogAdmin(log.id), mallory) == "NotPendingAdmin"
    assert log.info()["admin"] == log.admin
    c.send(f.transferLogAdmin(log.id, "0x" + "00" * 20), log.admin)  # withdrawn
    assert log.info()["pending_admin"] == "0x" + "00" * 20
    for call in (
        f.proposeWitnessSet(log.id, [key(9).address], 1),
        f.cancelWitnessSet(log.id),
        f.transferLogAdmin(log.id, mallory),
    ):
        assert c.revert_reason(call, mallory) == "NotLogAdmin"


def test_finding13_weakening_the_threshold_waits_for_the_delay(dep: Deployment) -> None:
    c = dep.chain
    log = register(dep, witnesses=3, threshold=3, origin=ORIGIN)
    f = dep.anchors.functions
    addresses = [w.address for w in log.witnesses]
    c.send(f.proposeWitnessSet(log.id, addresses, 1), log.admin)
    root = merkle.root(leaves(6))
    one = log.witnesses[:1]
    assert c.revert_reason(log.anchor(6, root, one)) == "ThresholdNotMet"
    assert log.info()["threshold"] == 3
    warp(c, CONFIG_DELAY - 60)
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "ChangeNotReady"
    warp(c, 60)
    c.send(f.applyWitnessSet(log.id))
    assert log.info()["threshold"] == 1
    c.send(log.anchor(6, root, one))
