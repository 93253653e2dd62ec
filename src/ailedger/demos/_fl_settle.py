"""The federated demo's money: FLRewards on the StakeManager (issue 17).

Before round 1 the governor deploys the StakeManager, a stake token and FLRewards (registered
as a judge and market, after the governance delay); the aggregator deposits its bond and every
client its stake; the sponsor creates the task, funding the pool in ether and pre-registering
the held-out set's salted root; the aggregator accepts (its bond is locked) and every client
joins (its stake is locked, the root of its declared training data committed).

After training, each round is settled from its logged round statement (:func:`settle_round`):
the round's budget is split by positive score among the aggregated updates (a payout tree),
each update that hurt the held-out set beyond the tolerance costs ``STAKE // rounds`` (a
penalty tree), and the aggregator signs the record (EIP-712, the contract's domain) that
anyone posts; the scores root is the RFC 9162 root over the round statement's client lines.
Once the challenge window has passed, clients claim with inclusion proofs and anyone slashes
the penalised through the StakeManager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.chain import Chain
from ailedger.chain.fl_rewards import ETHER_ASSET, FLRewards, TaskTerms, deploy_fl_rewards
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.fl import RoundPredicate
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.flrewards import (
    REASON_HURT_HELDOUT,
    PayoutTree,
    Penalty,
    PenaltyTree,
    RoundRecord,
    fl_rewards_domain,
    quantise,
    sign_round_record,
    split_budget,
)

__all__ = ["BOND", "STAKE", "WINDOW", "Market", "advance", "open_market", "settle_round"]

UNIT = 10**18
#: Each client's stake, and the aggregator's bond (stake token units).
STAKE = 100 * UNIT
BOND = 1_000 * UNIT
#: The challenge window of every round (seconds).
WINDOW = 3_600
VERIFIERS = 3


def advance(chain: Chain, seconds: int) -> int:
    """Mine a block ``seconds`` after the latest (embedded chain or a development node)."""
    target = chain.block_timestamp() + seconds
    provider = chain.w3.provider
    request: Any = provider.make_request
    if isinstance(provider, EthereumTesterProvider):
        request("testing_timeTravel", [target])
        request("evm_mine", [1])
    else:
        request("evm_setNextBlockTimestamp", [target])
        request("evm_mine", [])
    return chain.block_timestamp()


@dataclass
class Market:
    """The deployed contracts and the task."""

    rewards: FLRewards
    stakes: StakeManager
    token: Token
    task: bytes
    terms: TaskTerms
    verifiers: list[str]
    penalties: dict[int, PenaltyTree] = field(default_factory=dict)
    payouts: dict[int, PayoutTree] = field(default_factory=dict)


def open_market(
    chain: Chain,
    *,
    governor: Secp256k1Signer,
    sponsor: Secp256k1Signer,
    aggregator: Secp256k1Signer,
    clients: Sequence[Secp256k1Signer],
    data_roots: Sequence[bytes],
    heldout_root: bytes,
    initial_model: bytes,
    rounds: int,
    round_budget: int,
    tolerance: float,
) -> Market:
    """Everything before round 1 (module docstring)."""
    token = Token(
        chain,
        chain.deploy(
            "ConsortiumToken", "Consortium", "CON", governor.address, 10**9 * UNIT, signer=governor
        ),
    )
    stakes = StakeManager(chain, deploy_stake_manager(chain, governor, unbonding_delay=60))
    rewards = FLRewards(chain, deploy_fl_rewards(chain, governor, stake_manager=stakes.address))
    register_with_stake_manager(
        chain, stakes.address, rewards.address, prover_bps=5_000, signer=governor
    )
    advance(chain, stakes.governance_delay() + 1)
    for who, amount in [(aggregator, BOND)] + [(c, STAKE) for c in clients]:
        token.transfer(who.address, amount, signer=governor)
        token.approve(stakes.address, amount, signer=who)
        stakes.deposit(amount, token.address, signer=who)
    verifiers = [Secp256k1Signer.generate().address for _ in range(VERIFIERS)]
    terms = TaskTerms(
        aggregator.address,
        ETHER_ASSET,
        token.address,
        round_budget,
        STAKE,
        BOND,
        heldout_root,
        initial_model,
        chain.block_timestamp() + 30 * 86_400,
        WINDOW,
        rounds,
        tolerance_e6=round(tolerance * 10**6),
        threshold=2,
    )
    task = rewards.create_task(terms, verifiers, signer=sponsor)
    rewards.accept_task(task, signer=aggregator)
    for client, root in zip(clients, data_roots, strict=True):
        rewards.join(task, root, signer=client)
    return Market(rewards, stakes, token, task, terms, verifiers)


def scores_root(rnd: RoundPredicate) -> bytes:
    """The RFC 9162 root over the round statement's client lines (RFC 8785 JSON each)."""
    return merkle.root([bytes(rfc8785.dumps(c.model_dump(mode="json"))) for c in rnd.clients])


def settle_round(
    chain: Chain,
    market: Market,
    rnd: RoundPredicate,
    aggregator: Secp256k1Signer,
    poster: Secp256k1Signer,
    tolerance: float,
) -> RoundRecord:
    """Post round ``rnd``'s record: payouts by positive score of the aggregated updates,
    penalties for the updates scoring below ``-tolerance`` (module docstring)."""
    gains = {
        c.client: quantise(c.score)
        for c in rnd.clients
        if c.aggregated and c.score is not None and c.refused is None
    }
    payouts = PayoutTree(split_budget(gains, market.terms.round_budget))
    per_round = market.terms.stake_per_client // market.terms.rounds
    penalties = PenaltyTree(
        Penalty(c.client, per_round, REASON_HURT_HELDOUT)
        for c in rnd.clients
        if c.refused is None and c.score is not None and c.score < -tolerance
    )
    record = RoundRecord(
        market.task,
        rnd.round,
        bytes.fromhex(rnd.base_model),
        bytes.fromhex(rnd.global_model),
        bytes.fromhex(rnd.held_out_root or "00" * 32),
        scores_root(rnd),
        payouts.root,
        payouts.size,
        payouts.total,
        penalties.root,
        penalties.size,
    )
    domain = fl_rewards_domain(chain.chain_id, market.rewards.address)
    market.rewards.post_round(record, sign_round_record(record, domain, aggregator), signer=poster)
    market.payouts[rnd.round] = payouts
    market.penalties[rnd.round] = penalties
    return record
