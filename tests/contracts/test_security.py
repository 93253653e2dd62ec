"""Attacks on the contracts, each of which must fail: replays across chains, contracts and
time, malleable and degenerate signatures, threshold padding, shrinking logs, revoked
witnesses, outsiders approving, ungated deploys and role changes by non-admins."""

from __future__ import annotations

import pytest
from anchor_helpers import CONFIG_DELAY, warp
from contract_helpers import (
    AUDITOR,
    ORG_A,
    ORG_B,
    ORG_C,
    PROD,
    QA,
    Chain,
    Deployment,
    World,
    compile_contracts,
    deploy_all,
    join,
    key,
    populate,
    register_log,
    sign_checkpoint,
)
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.contract import Contract
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.chain.eip712 import Domain, log_id, sign_digest
from ailedger.identity.keys import SECP256K1_N

ORIGIN = "attack.example/log"
OTHER_CHAIN_ID = 4242


def _register(c: Chain, anchors: Contract, threshold: int = 2) -> None:
    witnesses = [key(101 + i).address for i in range(3)]
    admin = c.accounts[0]
    call = register_log(anchors, c.chain_id, ORIGIN, key(100), witnesses, threshold, admin)
    c.send(call, admin)


def _anchor_call(c: Chain, anchors: Contract, size: int, sign_for: Contract | None = None):  # type: ignore[no-untyped-def]
    """An anchor transaction for size ``size``, signed for ``sign_for`` (default: anchors)."""
    root = merkle.root([b"%d" % i for i in range(size)])
    target = sign_for or anchors
    sig, cosigs = sign_checkpoint(
        target,
        c.chain_id,
        log_id(ORIGIN, key(100).address),
        size,
        root,
        key(100),
        [key(101), key(102)],
    )
    return anchors.functions.anchor(log_id(ORIGIN, key(100).address), size, root, sig, cosigs)


def _ecrecover(c: Chain, digest: bytes, sig: bytes) -> str:
    """What the raw ecrecover precompile makes of a signature (no low-s rule)."""
    data = digest + sig[64:65].rjust(32, b"\0") + sig[:64]
    out = c.w3.eth.call({"to": "0x" + "00" * 19 + "01", "data": data})
    return "0x" + bytes(out)[-20:].hex() if out else "0x" + "00" * 20


def _high_s(sig: bytes) -> bytes:
    """The malleable twin of a signature: (r, n - s, the other v)."""
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


# --- replay ---------------------------------------------------------------------------------


# py-evm only: the next three tests build their own py-evm chains (a chosen chain id, a fork
# that changes block.chainid mid-chain), which a stock anvil cannot do; they take no `w3`, so
# the backend parametrization (conftest.py) does not apply to them.


@pytest.fixture
def two_chains() -> tuple[Chain, Chain]:
    """Two fresh chains, identical but for the chain id; same deployer, so same addresses.
    (Fresh for each test: eth-tester's snapshot revert rebuilds the chain object.)"""
    compiled = compile_contracts()
    backend = PyEVMBackend()
    # What CHAINID (block.chainid) returns; eth-tester's eth_chainId keeps its constant.
    backend.chain.chain_id = OTHER_CHAIN_ID
    a = Chain(Web3(EthereumTesterProvider()), compiled)
    b = Chain(Web3(EthereumTesterProvider(EthereumTester(backend))), compiled, OTHER_CHAIN_ID)
    return a, b


def test_checkpoint_replayed_on_another_chain_id(two_chains: tuple[Chain, Chain]) -> None:
    a, b = two_chains
    dep_a, dep_b = deploy_all(a), deploy_all(b)
    assert dep_a.anchors.address == dep_b.anchors.address
    assert dep_a.anchors.functions.domainSeparator().call() != (
        dep_b.anchors.functions.domainSeparator().call()
    )
    _register(a, dep_a.anchors)
    _register(b, dep_b.anchors)
    call = _anchor_call(a, dep_a.anchors, 8)
    a.send(call)
    # The very same calldata, sent to the same address on the other chain.
    replay = dep_b.anchors.functions.anchor(*call.args)
    assert b.revert_reason(replay) == "NotLogSigner"
    assert dep_b.anchors.functions.anchorCount(log_id(ORIGIN, key(100).address)).call() == 0


def test_approval_replayed_on_another_chain_id(two_chains: tuple[Chain, Chain]) -> None:
    a, b = two_chains
    world_a, world_b = populate(deploy_all(a)), populate(deploy_all(b))
    assert world_a.registry.address == world_b.registry.address
    assert world_a.registry.functions.domainSeparator().call() != (
        world_b.registry.functions.domainSeparator().call()
    )
    vid_a, vid_b = world_a.register(), world_b.register()
    assert vid_a == vid_b
    signed = world_a.signed(vid_a, QA, world_a.qa_a, nonce=1)
    a.send(world_a.registry.functions.approveBySig(signed))
    assert b.revert_reason(world_b.registry.functions.approveBySig(signed)) == "WrongSigner"


def test_signature_from_before_a_fork_fails_after_it() -> None:
    """The domain separator is cached at deployment but recomputed when block.chainid
    changes (a chain split): a checkpoint signed for the old chain id stops working."""
    backend = PyEVMBackend()
    c = Chain(Web3(EthereumTesterProvider(EthereumTester(backend))), compile_contracts())
    anchors = c.deploy("LogAnchors")
    _register(c, anchors)
    signed_before = _anchor_call(c, anchors, 8)
    backend.chain.chain_id = OTHER_CHAIN_ID  # the fork
    c.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    forked = Chain(c.w3, c.compiled, OTHER_CHAIN_ID)
    assert anchors.functions.domainSeparator().call() == (
        Domain.log_anchors(OTHER_CHAIN_ID, anchors.address).separator()
    )
    assert forked.revert_reason(signed_before) == "NotLogSigner"
    forked.send(_anchor_call(forked, anchors, 8))


def test_checkpoint_replayed_on_another_contract(dep: Deployment) -> None:
    c = dep.chain
    twin = c.deploy("LogAnchors")
    _register(c, dep.anchors)
    _register(c, twin)
    call = _anchor_call(c, dep.anchors, 8)
    c.send(call)
    assert c.revert_reason(twin.functions.anchor(*call.args)) == "NotLogSigner"
    # Signed for the twin, it works there.
    c.send(_anchor_call(c, twin, 8))


def test_approval_replayed_on_another_contract(world: World) -> None:
    c = world.chain
    twin = c.deploy("ModelRegistry", world.dep.membership.address, world.dep.admin, 3600)
    vid = world.register()
    f2 = twin.functions
    subject = world.subject(vid)
    c.send(f2.registerVersion("fraud-model", "1.0.0", subject, b"\1" * 32, []), world.frank)
    signed = world.signed(vid, QA, world.qa_a, nonce=1)
    c.send(world.registry.functions.approveBySig(signed))
    assert c.revert_reason(f2.approveBySig(signed)) == "WrongSigner"


def test_replay_on_the_same_contract(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    signed = world.signed(vid, QA, world.qa_a, nonce=5)
    c.send(f.approveBySig(signed))
    assert c.revert_reason(f.approveBySig(signed)) == "NonceUsed"
    # A batch skips it (finding 12) and records nothing.
    receipt = c.send(f.approveBatch([signed]))
    assert c.events(world.registry, "ApprovalSkipped", receipt)
    assert not c.events(world.registry, "Approved", receipt)
    # Same nonce, another version: still used (nonces are per approver, not per message).
    other = world.register("fraud-model", "2.0.0")
    assert c.revert_reason(f.approveBySig(world.signed(other, QA, world.qa_a, 5))) == ("NonceUsed")


def test_anchor_replayed_on_the_same_contract(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    call = _anchor_call(c, dep.anchors, 8)
    c.send(call)
    assert c.revert_reason(call) == "AlreadyAnchored"
    assert dep.anchors.functions.anchorCount(log_id(ORIGIN, key(100).address)).call() == 1


def test_signature_for_one_checkpoint_does_not_anchor_another(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    lid, size, root, sig, cosigs = _anchor_call(c, dep.anchors, 8).args
    assert c.revert_reason(dep.anchors.functions.anchor(lid, size + 1, root, sig, cosigs)) == (
        "NotLogSigner"
    )
    # A witness's cosignature is not a log signature (distinct EIP-712 types).
    call = dep.anchors.functions.anchor(lid, size, root, cosigs[0], cosigs)
    assert c.revert_reason(call) == "NotLogSigner"


# --- malleable and degenerate signatures ----------------------------------------------------


def test_high_s_signatures_are_rejected(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    lid, size, root, sig, cosigs = _anchor_call(c, dep.anchors, 8).args
    f = dep.anchors.functions
    # The twins are valid for the raw precompile: the attack is real, the contract stops it.
    assert _ecrecover(c, f.checkpointDigest(lid, size, root).call(), _high_s(sig)).lower() == (
        key(100).address.lower()
    )
    high_s = "ECDSAInvalidSignatureS"  # OpenZeppelin ECDSA
    assert c.revert_reason(f.anchor(lid, size, root, _high_s(sig), cosigs)) == high_s
    twisted = [cosigs[0], _high_s(cosigs[1])]
    assert c.revert_reason(f.anchor(lid, size, root, sig, twisted)) == high_s
    c.send(f.anchor(lid, size, root, sig, cosigs))


def test_high_s_approval_is_rejected(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    *fields, sig = world.signed(vid, QA, world.qa_a, nonce=1)
    # OpenZeppelin's ECDSA refuses the malleable twin.
    assert c.revert_reason(f.approveBySig((*fields, _high_s(sig)))) == "ECDSAInvalidSignatureS"


def test_bad_v_and_length(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    lid, size, root, sig, cosigs = _anchor_call(c, dep.anchors, 8).args
    f = dep.anchors.functions
    bad_v = sig[:64] + bytes([sig[64] - 27])
    # OpenZeppelin ECDSA: a v outside {27, 28} recovers nothing; only 65-byte signatures.
    assert c.revert_reason(f.anchor(lid, size, root, bad_v, cosigs)) == "ECDSAInvalidSignature"
    length = "ECDSAInvalidSignatureLength"
    assert c.revert_reason(f.anchor(lid, size, root, sig[:64], cosigs)) == length
    assert c.revert_reason(f.anchor(lid, size, root, sig + b"\0", cosigs)) == length


# --- threshold padding ----------------------------------------------------------------------


def test_duplicate_witness_does_not_count_twice(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors, threshold=2)
    lid, size, root, sig, cosigs = _anchor_call(c, dep.anchors, 8).args
    f = dep.anchors.functions
    dup = [cosigs[0], cosigs[0]]
    assert c.revert_reason(f.anchor(lid, size, root, sig, dup)) == "SignersNotAscending"
    swapped = [cosigs[1], cosigs[0]]
    assert c.revert_reason(f.anchor(lid, size, root, sig, swapped)) == "SignersNotAscending"


def test_zero_address_signer_does_not_count(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors, threshold=2)
    lid, size, root, sig, cosigs = _anchor_call(c, dep.anchors, 8).args
    f = dep.anchors.functions
    # r = 0 is no curve point: the precompile recovers nothing, Solidity's ecrecover gives 0.
    nothing = bytes(32) + (1).to_bytes(32, "big") + b"\x1b"
    digest = f.cosignatureDigest(lid, size, root).call()
    assert _ecrecover(c, digest, nothing) == "0x" + "00" * 20
    invalid = "ECDSAInvalidSignature"  # OpenZeppelin ECDSA
    for padded in ([nothing, cosigs[0]], [cosigs[0], nothing]):
        assert c.revert_reason(f.anchor(lid, size, root, sig, padded)) == invalid
    assert c.revert_reason(f.anchor(lid, size, root, nothing, cosigs)) == invalid
    zero = "0x" + "00" * 20
    assert c.revert_reason(f.proposeWitnessSet(lid, [zero], 1)) == "ZeroAddress"
    call = register_log(dep.anchors, c.chain_id, "z", key(100), [zero], 1, c.accounts[0])
    assert c.revert_reason(call) == "ZeroAddress"


def test_non_witness_does_not_count(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors, threshold=2)
    lid, size, root, sig, _ = _anchor_call(c, dep.anchors, 8).args
    digest = dep.anchors.functions.cosignatureDigest(lid, size, root).call()
    strangers = sorted([key(7), key(8)], key=lambda k: int(k.address, 16))
    cosigs = [sign_digest(digest, k) for k in strangers]
    call = dep.anchors.functions.anchor(lid, size, root, sig, cosigs)
    assert c.revert_reason(call) == "NotAWitness"


def test_removed_witness_cannot_sign(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors, threshold=2)
    f = dep.anchors.functions
    c.send(_anchor_call(c, dep.anchors, 4))
    remaining = [key(101).address, key(103).address]
    c.send(f.proposeWitnessSet(log_id(ORIGIN, key(100).address), remaining, 2))
    warp(c, CONFIG_DELAY)
    c.send(f.applyWitnessSet(log_id(ORIGIN, key(100).address)))
    # key(101) and the removed key(102) cosign.
    assert c.revert_reason(_anchor_call(c, dep.anchors, 8)) == "NotAWitness"


def test_shrinking_anchor_is_rejected(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    c.send(_anchor_call(c, dep.anchors, 10))
    assert c.revert_reason(_anchor_call(c, dep.anchors, 5)) == "SizeDecreased"
    assert dep.anchors.functions.latestAnchor(log_id(ORIGIN, key(100).address)).call()[0] == 10


# --- approvals and the gate -----------------------------------------------------------------


def test_non_member_cannot_approve(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    assert c.revert_reason(world.approve(vid, QA), world.outsider) == "NotAMember"
    stranger = key(66)
    assert c.revert_reason(f.approveBySig(world.signed(vid, QA, stranger, 1))) == "NotAMember"
    # A member without the role, and a member whose role was revoked.
    assert c.revert_reason(world.approve(vid, QA), world.dave) == "RoleNotHeld"
    m = world.dep.membership.functions
    c.send(m.revokeRole(ORG_B, world.auditor_b.address, AUDITOR), world.bob)
    signed = world.signed(vid, AUDITOR, world.auditor_b, 1)
    assert c.revert_reason(f.approveBySig(signed)) == "RoleNotHeld"


def test_signed_approval_is_bound_to_the_organisation(world: World) -> None:
    """A signature given as a member of one organisation does not count for another one the
    signer joins later, nor can a relayer relabel it."""
    c, f = world.chain, world.registry.functions
    m = world.dep.membership.functions
    vid = world.register()
    signed_in_a = world.signed(vid, QA, world.qa_a, nonce=9)
    relabelled = list(signed_in_a)
    relabelled[4] = ORG_C
    assert c.revert_reason(f.approveBySig(tuple(relabelled))) == "WrongSigner"
    # The signer moves from organisation A to C before the signature is relayed.
    c.send(m.revokeRole(ORG_A, world.qa_a.address, QA), world.alice)
    c.send(m.removeMember(ORG_A, world.qa_a.address), world.alice)
    join(world.dep, ORG_C, world.qa_a, world.erin)
    c.send(m.grantRole(ORG_C, world.qa_a.address, QA), world.erin)
    assert c.revert_reason(f.approveBySig(signed_in_a)) == "WrongOrganisation"
    c.send(f.approveBySig(world.signed(vid, QA, world.qa_a, nonce=10)))
    (approval,) = f.approvalsOf(vid).call()
    assert approval[5] == ORG_C  # orgId


def test_deploy_without_approvals_or_deprecated(world: World) -> None:
    c, f = world.chain, world.registry.functions
    vid = world.register()
    deploy = f.deploy(PROD, vid, world.subject(vid))
    assert c.revert_reason(deploy, world.carol) == "ApprovalsMissing"
    c.send(f.approveBatch([world.signed(vid, QA, world.qa_a, 1)]))
    assert c.revert_reason(deploy, world.carol) == "ApprovalsMissing"
    c.send(f.approveBatch([world.signed(vid, AUDITOR, world.auditor_b, 1)]))
    c.send(f.deprecate(vid), world.frank)
    assert c.revert_reason(deploy, world.carol) == "VersionDeprecated"
    unknown = f.deploy(PROD, b"\7" * 32, b"\7" * 32)
    assert c.revert_reason(unknown, world.carol) == "UnknownVersion"
    assert f.currentVersion(PROD).call() == b"\0" * 32


# --- access control -------------------------------------------------------------------------


def test_role_changes_by_non_admins(world: World) -> None:
    c = world.chain
    m = world.dep.membership.functions
    assert c.revert_reason(m.grantRole(ORG_A, world.outsider, QA), world.outsider) == (
        "NotOrgAdmin"
    )
    # An admin of another organisation, and a plain member of this one.
    assert c.revert_reason(m.grantRole(ORG_A, world.outsider, QA), world.bob) == "NotOrgAdmin"
    assert c.revert_reason(m.grantRole(ORG_A, world.outsider, QA), world.carol) == "NotOrgAdmin"
    assert c.revert_reason(m.revokeRole(ORG_A, world.carol, QA), world.bob) == "NotOrgAdmin"
    assert c.revert_reason(m.removeMember(ORG_B, world.dave), world.alice) == "NotOrgAdmin"
    assert c.revert_reason(m.createOrg(b"\5" * 32, world.outsider), world.alice) == (
        "OwnableUnauthorizedAccount"
    )
    assert c.revert_reason(m.transferOwnership(world.alice), world.alice) == (
        "OwnableUnauthorizedAccount"
    )
    assert m.hasRoleIn(ORG_A, world.carol, QA).call()


def test_log_and_registry_changes_by_non_admins(dep: Deployment) -> None:
    c = dep.chain
    _register(c, dep.anchors)
    f = dep.anchors.functions
    lid, mallory = log_id(ORIGIN, key(100).address), c.accounts[6]
    for call in (
        f.proposeWitnessSet(lid, [key(9).address], 1),
        f.cancelWitnessSet(lid),
        f.transferLogAdmin(lid, mallory),
    ):
        assert c.revert_reason(call, mallory) == "NotLogAdmin"
    r = dep.registry.functions
    denied = "AccessControlUnauthorizedAccount"
    assert c.revert_reason(r.setRequirement(PROD, [], [], 0, False), mallory) == denied
    assert c.revert_reason(r.beginDefaultAdminTransfer(mallory), mallory) == denied
    assert c.revert_reason(r.grantRole(r.deployerRole(PROD).call(), mallory), mallory) == denied
    assert c.revert_reason(r.deploy(PROD, b"\1" * 32, b"\1" * 32), mallory) == "NotDeployer"
    assert c.revert_reason(r.rollbackTo(PROD, b"\1" * 32), mallory) == "NotDeployer"
