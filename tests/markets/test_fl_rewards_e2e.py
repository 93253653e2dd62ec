"""FLRewards end to end through the library, on the embedded chain and anvil: the binding
(:mod:`ailedger.chain.fl_rewards`) with the records, trees and signatures of
:mod:`ailedger.markets.flrewards`, as the federated-learning strategy uses them. A sponsor funds
an ether pool, the aggregator bonds, three clients join with their data roots; round 1 pays by
contribution and penalises a spammer, whose stake is slashed after the window; round 2 lies,
a client challenges it with the verifiers' correction, the aggregator's bond is slashed and the
task halts; the task finishes, the sponsor gets the unreserved pool back and the clients their
stake. Every figure is read back from the chain."""

from __future__ import annotations

import pytest
from web3.providers.eth_tester import EthereumTesterProvider

from _chain_util import ETHER, Backend
from ailedger.chain import Chain, ContractReverted
from ailedger.chain.fl_rewards import (
    ETHER_ASSET,
    FLRewards,
    TaskStatus,
    TaskTerms,
    deploy_fl_rewards,
)
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.errors import InvalidInput, VerificationFailed
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.flrewards import (
    REASON_HURT_HELDOUT,
    Correction,
    PayoutTree,
    Penalty,
    PenaltyTree,
    RecordTree,
    RoundRecord,
    fl_rewards_domain,
    sign_correction,
    sign_round_record,
    split_budget,
    verify_disjoint,
    verify_preregistered,
)

ADMIN = Secp256k1Signer(bytes.fromhex("b1" * 32))
SPONSOR = Secp256k1Signer(bytes.fromhex("b2" * 32))
AGGREGATOR = Secp256k1Signer(bytes.fromhex("b3" * 32))
CLIENTS = [Secp256k1Signer(bytes.fromhex(f"c{i}" * 32)) for i in range(1, 4)]
VERIFIERS = [Secp256k1Signer(bytes.fromhex(f"e{i}" * 32)) for i in range(1, 4)]
HELDOUT_ROWS = [{"x": [i, i % 3], "y": i % 2} for i in range(100, 108)]
HELDOUT_SECRET = b"the sponsor's held-out secret..."
HELDOUT = RecordTree(HELDOUT_ROWS, HELDOUT_SECRET).root
TRAINING = [[{"x": [i, c], "y": (i + c) % 2} for i in range(12)] for c in range(3)]
CLIENT_SECRETS = [bytes([0x50 + c]) * 32 for c in range(3)]
MODELS = [bytes([0x10 + i]) * 32 for i in range(4)]
BUDGET = 10**15
STAKE = 10**6
BOND = 5 * 10**6
WINDOW = 600


def _advance(chain: Chain, seconds: int) -> None:
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        target = chain.block_timestamp() + seconds
        provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture
def chain(backend: Backend) -> Chain:
    backend.artifacts_dir = None  # the contracts shipped in the package
    return backend.open()


def _world(chain: Chain) -> tuple[FLRewards, StakeManager, Token]:
    for who in (ADMIN, SPONSOR, AGGREGATOR, *CLIENTS):
        chain.fund(who.address, 10 * ETHER)
    manager = StakeManager(chain, deploy_stake_manager(chain, ADMIN, unbonding_delay=60))
    token = Token(
        chain,
        chain.deploy("ConsortiumToken", "Consortium", "CON", ADMIN.address, 10**30, signer=ADMIN),
    )
    rewards = FLRewards(chain, deploy_fl_rewards(chain, ADMIN, stake_manager=manager.address))
    register_with_stake_manager(
        chain, manager.address, rewards.address, prover_bps=5_000, signer=ADMIN
    )
    _advance(chain, 121)
    for who, amount in [(AGGREGATOR, BOND)] + [(c, STAKE) for c in CLIENTS]:
        token.transfer(who.address, amount, signer=ADMIN)
        token.approve(manager.address, amount, signer=who)
        manager.deposit(amount, token.address, signer=who)
    return rewards, manager, token


def test_a_task_pays_slashes_is_challenged_and_finishes(chain: Chain) -> None:
    rewards, manager, token = _world(chain)
    terms = TaskTerms(
        AGGREGATOR.address, ETHER_ASSET, token.address, BUDGET, STAKE, BOND, HELDOUT,
        MODELS[0], chain.block_timestamp() + 86_400, WINDOW, rounds=3, tolerance_e6=1_000,
        threshold=2,
    )  # fmt: skip
    task = rewards.create_task(terms, [v.address for v in VERIFIERS], signer=SPONSOR)
    rewards.accept_task(task, signer=AGGREGATOR)
    trees = [
        RecordTree(rows, secret) for rows, secret in zip(TRAINING, CLIENT_SECRETS, strict=True)
    ]
    for tree, c in zip(trees, CLIENTS, strict=True):
        rewards.join(task, tree.commitment, signer=c)
    # no round yet: nothing shows the held-out set was fixed before training
    with pytest.raises(VerificationFailed) as early:
        verify_preregistered(rewards, task, HELDOUT)
    assert early.value.code == "heldout-not-preregistered"
    info = rewards.task(task)
    assert (info.status, info.signer, info.clients) == (TaskStatus.ACTIVE, AGGREGATOR.address, 3)
    assert info.terms == terms
    assert rewards.verifiers(task) == [v.address for v in VERIFIERS]
    domain = fl_rewards_domain(chain.chain_id, rewards.address)
    assert rewards.domain_separator() == domain.separator()

    # round 1: two clients helped (3:1), the third is a spammer
    honest, helper, spammer = (c.address for c in CLIENTS)
    payouts = PayoutTree(split_budget({honest: 3_000, helper: 1_000, spammer: -500}, BUDGET))
    penalties = PenaltyTree([Penalty(spammer, STAKE, REASON_HURT_HELDOUT)])
    record = RoundRecord(
        task, 1, MODELS[0], MODELS[1], HELDOUT, b"\x5c" * 32, payouts.root, payouts.size,
        payouts.total, penalties.root, penalties.size,
    )  # fmt: skip
    rewards.post_round(record, sign_round_record(record, domain, AGGREGATOR), signer=SPONSOR)
    r1 = rewards.round(task, 1)
    assert r1.record_digest == record.digest(domain)
    # a verifier: the registered root is the held-out set's, fixed before round 1 ...
    pre = verify_preregistered(rewards, task, RecordTree(HELDOUT_ROWS, HELDOUT_SECRET).root)
    assert pre.created_block < pre.round_one_block == r1.posted_block
    with pytest.raises(VerificationFailed) as other:
        verify_preregistered(rewards, task, b"\x4f" * 32)
    assert other.value.code == "proof-root-mismatch"
    # ... and no held-out record is in any client's training data as committed on joining
    for tree, c, secret in zip(trees, CLIENTS, CLIENT_SECRETS, strict=True):
        committed = rewards.client(task, c.address).data_root
        proofs = [tree.prove_absent(r) for r in HELDOUT_ROWS]
        check = verify_disjoint(proofs, HELDOUT_ROWS, committed, client_secret=secret)
        assert check.records == len(HELDOUT_ROWS)
    assert rewards.pool_left(task) == 3 * BUDGET - payouts.total
    with pytest.raises(ContractReverted, match="ChallengeWindowOpen"):
        rewards.claim(task, 1, payouts.proof(honest), signer=CLIENTS[0])
    _advance(chain, WINDOW + 1)
    assert rewards.claim(task, 1, payouts.proof(honest), signer=CLIENTS[0]) == BUDGET * 3 // 4
    assert rewards.claim(task, 1, payouts.proof(helper), signer=CLIENTS[1]) == BUDGET // 4
    assert rewards.slash_penalised(task, 1, penalties.proof(spammer), signer=CLIENTS[0]) == STAKE
    with pytest.raises(ContractReverted, match="AlreadyClaimed"):
        rewards.claim(task, 1, payouts.proof(honest), signer=CLIENTS[0])
    assert rewards.claimed(task, 1, honest)
    assert rewards.client(task, honest).paid == BUDGET * 3 // 4
    assert rewards.client(task, spammer).slashed == STAKE
    assert manager.stake_of(spammer, token.address).slashed == STAKE

    # round 2: the aggregator pays everything to the spammer; a client challenges in time
    lying = PayoutTree(split_budget({spammer: 1}, BUDGET))
    empty = PenaltyTree([])
    record2 = RoundRecord(
        task, 2, MODELS[1], MODELS[2], HELDOUT, b"\x5d" * 32, lying.root, lying.size,
        lying.total, empty.root, empty.size,
    )  # fmt: skip
    rewards.post_round(record2, sign_round_record(record2, domain, AGGREGATOR), signer=SPONSOR)
    fair = PayoutTree(split_budget({honest: 1, helper: 1}, BUDGET))
    correction = Correction(
        task, 2, record2.digest(domain), b"\x5e" * 32, fair.root, fair.size, fair.total,
        empty.root, empty.size, CLIENTS[1].address,
    )  # fmt: skip
    sigs = sign_correction(correction, domain, VERIFIERS[:2])
    assert rewards.challenge(correction, sigs, signer=CLIENTS[1]) == BOND
    assert rewards.task(task).status == TaskStatus.HALTED
    assert rewards.round(task, 2).corrected
    _advance(chain, WINDOW + 1)
    assert rewards.claim(task, 2, fair.proof(helper), signer=CLIENTS[1]) == BUDGET // 2

    # the end: the unreserved pool goes back, stakes are released
    with pytest.raises(ContractReverted, match="NotFinishable"):
        rewards.finish(task, signer=SPONSOR)
    _advance(chain, WINDOW + 1)
    refund = rewards.finish(task, signer=SPONSOR)
    assert refund == 3 * BUDGET - payouts.total - fair.total
    assert rewards.refundable(SPONSOR.address, ETHER_ASSET) == refund
    assert rewards.withdraw_refund(ETHER_ASSET, signer=SPONSOR) == refund
    assert rewards.refundable(SPONSOR.address, ETHER_ASSET) == 0
    assert rewards.task(task).status == TaskStatus.FINISHED
    assert rewards.pool_left(task) == 0
    assert rewards.leave(task, signer=CLIENTS[0]) == STAKE
    assert rewards.leave(task, signer=CLIENTS[2]) == 0  # all of it was slashed
    assert rewards.held(ETHER_ASSET) == BUDGET // 2  # the honest client's round-2 share
    assert chain.balance(rewards.address) == BUDGET // 2
    # never claimed: a year after the finish it goes back to the sponsor, not stuck forever
    with pytest.raises(ContractReverted, match="ClaimsOpen"):
        rewards.sweep(task, signer=CLIENTS[0])
    _advance(chain, 365 * 86_400 + 1)
    assert rewards.sweep(task, signer=CLIENTS[0]) == BUDGET // 2
    assert rewards.withdraw_refund(ETHER_ASSET, signer=SPONSOR) == BUDGET // 2
    assert rewards.held(ETHER_ASSET) == 0
    assert chain.balance(rewards.address) == 0


def test_the_binding_refuses_bad_input_before_sending(chain: Chain) -> None:
    with pytest.raises(InvalidInput):
        TaskTerms(ADMIN.address, ETHER_ASSET, ETHER_ASSET, 1, 1, 1, b"\0" * 32, MODELS[0], 1, 60, 1)
    with pytest.raises(InvalidInput):
        TaskTerms(ADMIN.address, ETHER_ASSET, ETHER_ASSET, 1, 1, 1, HELDOUT, MODELS[0], 1, 0, 1)
    rewards, _, _ = _world(chain)
    with pytest.raises(InvalidInput, match="data root"):
        rewards.join(b"\x01" * 32, b"\0" * 32, signer=CLIENTS[0])
    with pytest.raises(InvalidInput, match="no task"):
        rewards.task(b"\x01" * 32)
