"""The federated demo's money: FLRewards on the StakeManager (issue 17).

Before round 1 the governor deploys the StakeManager, a stake token and FLRewards (registered
as a judge and market, after the governance delay); the aggregator deposits its bond and every
client its stake; the sponsor creates the task, funding the pool in ether and pre-registering
the held-out set's salted root; the aggregator accepts (its bond is locked) and every client
joins (its stake is locked, the root of its declared training data committed).

As each round ends (while the next one trains), it is settled from its round statement
(:func:`settle_round`): the round's budget is split by positive score among the aggregated
updates (a payout tree), each update that hurt the held-out set beyond the tolerance costs
``STAKE // rounds`` (a penalty tree), and the aggregator signs the record (EIP-712, the
contract's domain) that anyone posts; the scores root is the RFC 9162 root over the round
statement's client lines. A client challenges a round whose scores do not hold
(:func:`challenge_round`): the verifier set recomputes the scores from the committed inputs and
signs a correction, which replaces the round's roots and costs the aggregator its bond. Once
the challenge window has passed, clients claim with inclusion proofs and anyone slashes the
penalised through the StakeManager.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from flwr.common import NDArrays
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.chain import Chain
from ailedger.chain.fl_rewards import ETHER_ASSET, FLRewards, TaskTerms, deploy_fl_rewards
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.errors import InvalidInput, VerificationFailed
from ailedger.fl import RoundPredicate, Scorer, recompute_round_scores, verify_round_scores
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.flrewards import (
    REASON_HURT_HELDOUT,
    Correction,
    PayoutTree,
    Penalty,
    PenaltyTree,
    RoundRecord,
    fl_rewards_domain,
    quantise,
    sign_correction,
    sign_round_record,
    split_budget,
)

__all__ = [
    "BOND",
    "STAKE",
    "WINDOW",
    "Challenge",
    "Market",
    "advance",
    "challenge_round",
    "inflate",
    "open_market",
    "round_trees",
    "settle_round",
]

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
    verifiers: list[Secp256k1Signer]
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
    verifiers = [Secp256k1Signer.generate() for _ in range(VERIFIERS)]
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
    task = rewards.create_task(terms, [v.address for v in verifiers], signer=sponsor)
    rewards.accept_task(task, signer=aggregator)
    for client, root in zip(clients, data_roots, strict=True):
        rewards.join(task, root, signer=client)
    return Market(rewards, stakes, token, task, terms, verifiers)


def scores_root(rnd: RoundPredicate) -> bytes:
    """The RFC 9162 root over the round statement's client lines (RFC 8785 JSON each)."""
    return merkle.root([bytes(rfc8785.dumps(c.model_dump(mode="json"))) for c in rnd.clients])


def round_trees(
    market: Market, rnd: RoundPredicate, tolerance: float
) -> tuple[PayoutTree, PenaltyTree]:
    """Round ``rnd``'s payouts (the budget split by positive score among the aggregated
    updates) and penalties (``stake // rounds`` for each update scoring below ``-tolerance``)."""
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
    return payouts, penalties


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
    payouts, penalties = round_trees(market, rnd, tolerance)
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


def inflate(rnd: RoundPredicate, colluder: str, score: float) -> RoundPredicate:
    """What a dishonest aggregator posts: ``rnd`` with ``colluder``'s score set to ``score``
    and its update counted as aggregated (so that the payout tree pays it)."""
    return rnd.model_copy(
        update={
            "clients": [
                c.model_copy(update={"score": score, "aggregated": True})
                if c.client == colluder.lower()
                else c
                for c in rnd.clients
            ]
        }
    )


@dataclass(frozen=True)
class Challenge:
    """A challenge's outcome: the verifiers' finding, the corrected statement, the bond
    slashed (from the contract's event)."""

    finding: str
    corrected: RoundPredicate
    correction: Correction
    bond_slashed: int


def challenge_round(
    chain: Chain,
    market: Market,
    posted: RoundPredicate,
    record: RoundRecord,
    *,
    base: NDArrays,
    updates: Mapping[str, NDArrays],
    scorer: Scorer,
    challenger: Secp256k1Signer,
    tolerance: float,
) -> Challenge:
    """A client challenges round ``posted`` (the statement behind the on-chain ``record``).

    The verifier set recomputes every score from the committed base model, updates and
    held-out set (:func:`~ailedger.fl.verify_round_scores`, which must refuse the posted
    scores: a round whose scores hold is not challenged), rebuilds the round's client lines
    by the task's rules (an update equal to the base model or scoring below ``-tolerance`` is
    not aggregated), its scores root and payout and penalty trees, and ``threshold`` of them
    sign the :class:`Correction` naming ``challenger``, who submits it."""
    try:
        verify_round_scores(posted, base, updates, scorer)
    except VerificationFailed as exc:
        finding = f"[{exc.code}] {exc}"
    else:
        raise InvalidInput(f"round {posted.round}'s scores hold: there is nothing to challenge")
    recomputed = recompute_round_scores(posted, base, updates, scorer).scores
    lines = []
    for c in posted.clients:
        if c.refused is None and c.score is not None:
            score = recomputed[c.client]
            keep = c.update != posted.base_model and score >= -tolerance
            c = c.model_copy(update={"score": score, "aggregated": keep})
        lines.append(c)
    corrected = posted.model_copy(update={"clients": lines})
    payouts, penalties = round_trees(market, corrected, tolerance)
    domain = fl_rewards_domain(chain.chain_id, market.rewards.address)
    correction = Correction(
        market.task,
        posted.round,
        record.digest(domain),
        scores_root(corrected),
        payouts.root,
        payouts.size,
        payouts.total,
        penalties.root,
        penalties.size,
        challenger.address,
    )
    signatures = sign_correction(correction, domain, market.verifiers[: market.terms.threshold])
    slashed = market.rewards.challenge(correction, signatures, signer=challenger)
    market.payouts[posted.round] = payouts
    market.penalties[posted.round] = penalties
    return Challenge(finding, corrected, correction, slashed)
