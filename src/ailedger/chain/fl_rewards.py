"""A typed client for ``contracts/FLRewards.sol``: federated learning that pays for proven
contributions (issue 17).

The whole flow (the records, trees and signatures come from :mod:`ailedger.markets.flrewards`;
this module only moves their bytes)::

    from ailedger.chain.fl_rewards import FLRewards, TaskTerms, deploy_fl_rewards
    from ailedger.chain.vouching import register_with_stake_manager
    from ailedger.markets.flrewards import (
        Correction, PayoutTree, Penalty, PenaltyTree, RoundRecord, fl_rewards_domain,
        sign_correction, sign_round_record, split_budget,
    )

    rewards = FLRewards(chain, deploy_fl_rewards(chain, admin, stake_manager=sm))
    register_with_stake_manager(chain, sm, rewards.address, prover_bps=5_000, signer=governor)
    # ... the StakeManager's governance delay passes; every party has deposited stake

    terms = TaskTerms(aggregator=agg.address, asset=ETHER_ASSET, stake_asset=token,
                      round_budget=10**18, stake_per_client=10**18, aggregator_bond=10**19,
                      heldout_root=heldout.root, initial_model=model0, deadline=t + 86_400,
                      challenge_window=3_600, rounds=10, tolerance_e6=1_000, threshold=2)
    task = rewards.create_task(terms, verifiers, signer=sponsor)   # pre-registers the root
    rewards.accept_task(task, signer=agg)           # locks the bond; agg signs records
    rewards.join(task, tree.commitment, signer=client)   # locks stake, commits its data

    payouts = PayoutTree(split_budget(gains, terms.round_budget))
    penalties = PenaltyTree([Penalty(spammer, terms.stake_per_client, REASON_HURT_HELDOUT)])
    record = RoundRecord(task, 1, model0, model1, heldout.root, scores_root,
                         payouts.root, payouts.size, payouts.total,
                         penalties.root, penalties.size)
    domain = fl_rewards_domain(chain.chain_id, rewards.address)
    rewards.post_round(record, sign_round_record(record, domain, agg_key), signer=anyone)

    # within the window, a client with the verifiers' recomputation:
    rewards.challenge(correction, sign_correction(correction, domain, keys), signer=client)
    # after the window:
    rewards.claim(task, 1, payouts.proof(client.address), signer=client)
    rewards.slash_penalised(task, 1, penalties.proof(spammer), signer=anyone)
    # at the end (see FLRewards.finishableAt):
    rewards.finish(task, signer=anyone); rewards.leave(task, signer=client)
    rewards.withdraw_refund(ETHER_ASSET, signer=sponsor)        # the unreserved pool

    rewards.pool_left(task); rewards.client(task, addr).paid; rewards.client(task, addr).slashed

The aggregator's stake is its bond, locked in the StakeManager when it accepts the task: a
round a client challenges successfully (the verifier set's threshold-signed correction) costs
it the whole bond, and the task halts. See the contract's notice for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.chain.stake import Token
from ailedger.errors import ChainError, InvalidInput

__all__ = [
    "ETHER_ASSET",
    "FL_PROVER_BPS",
    "ClientInfo",
    "FLRewards",
    "RoundInfo",
    "TaskInfo",
    "TaskStatus",
    "TaskTerms",
    "deploy_fl_rewards",
]

#: The share of a slash that goes to whoever proves it (the challenger of a dishonest round,
#: the caller of ``slashPenalised``) when FLRewards is registered as a judge; the rest goes to
#: the treasury.
FL_PROVER_BPS = 5_000
ETHER_ASSET = "0x" + "00" * 20
_U32 = 2**32 - 1
_U64 = 2**64 - 1
_ZERO32 = b"\0" * 32


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


class _Struct(Protocol):
    def as_tuple(self) -> tuple[Any, ...]: ...


class _Proof(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def hashes(self) -> tuple[bytes, ...]: ...


class _PayoutProof(_Proof, Protocol):
    @property
    def payout(self) -> Any: ...


class _PenaltyProof(_Proof, Protocol):
    @property
    def penalty(self) -> Any: ...


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    ACTIVE = 2
    HALTED = 3
    FINISHED = 4
    CANCELLED = 5


@dataclass(frozen=True)
class TaskTerms:
    """The contract's ``Terms``. The pool is ``round_budget * rounds`` of ``asset``
    (``ETHER_ASSET`` for ether); stakes are in ``stake_asset``; ``tolerance_e6`` is the
    held-out loss increase, in millionths, an update may cause unpunished (a committed
    parameter of the scoring, which the verifiers apply); ``threshold`` verifiers must sign a
    correction."""

    aggregator: str
    asset: str
    stake_asset: str
    round_budget: int
    stake_per_client: int
    aggregator_bond: int
    heldout_root: bytes
    initial_model: bytes
    deadline: int
    challenge_window: int
    rounds: int
    tolerance_e6: int = 0
    threshold: int = 1

    def __post_init__(self) -> None:
        for what, value in (("held-out root", self.heldout_root), ("model", self.initial_model)):
            if len(value) != 32 or value == _ZERO32:
                raise InvalidInput(f"the {what} must be 32 bytes, not all zero")
        if min(self.round_budget, self.stake_per_client, self.aggregator_bond) < 1:
            raise InvalidInput("the round budget, client stake and aggregator bond must be > 0")
        if not 1 <= self.rounds <= 10_000:
            raise InvalidInput("rounds must be 1..10000")
        if not 1 <= self.challenge_window <= 30 * 86_400:
            raise InvalidInput("the challenge window must be 1 s .. 30 days")
        if not 0 <= self.tolerance_e6 <= _U32 or not 1 <= self.threshold <= 32:
            raise InvalidInput("tolerance must be a uint32 and the threshold 1..32")
        if not 0 < self.deadline <= _U64:
            raise InvalidInput("the deadline must be a unix time")

    @property
    def pool(self) -> int:
        return self.round_budget * self.rounds

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            to_checksum_address(self.aggregator), to_checksum_address(self.asset),
            to_checksum_address(self.stake_asset), self.round_budget, self.stake_per_client,
            self.aggregator_bond, self.heldout_root, self.initial_model, self.deadline,
            self.challenge_window, self.rounds, self.tolerance_e6, self.threshold,
        )  # fmt: skip

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> TaskTerms:
        return cls(
            str(raw[0]), str(raw[1]), str(raw[2]), int(raw[3]), int(raw[4]), int(raw[5]),
            bytes(raw[6]), bytes(raw[7]), int(raw[8]), int(raw[9]), int(raw[10]),
            int(raw[11]), int(raw[12]),
        )  # fmt: skip


@dataclass(frozen=True)
class TaskInfo:
    task_id: bytes
    terms: TaskTerms
    sponsor: str
    signer: str
    status: TaskStatus
    created_block: int
    created_at: int
    last_round: int
    last_posted_at: int
    clients: int
    model: bytes
    reserved: int
    paid: int


@dataclass(frozen=True)
class RoundInfo:
    record_digest: bytes
    model_before: bytes
    model_after: bytes
    scores_root: bytes
    payout_root: bytes
    penalty_root: bytes
    payout_total: int
    claimed: int
    payout_count: int
    penalty_count: int
    posted_at: int
    posted_block: int
    corrected: bool


@dataclass(frozen=True)
class ClientInfo:
    data_root: bytes
    joined_block: int
    joined: bool
    left: bool
    paid: int
    slashed: int


class FLRewards(ContractWrapper):
    """The FLRewards contract at ``contract`` on ``chain``."""

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource, value: int = 0) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer, value=value)

    def _event(self, receipt: Receipt, name: str) -> Any:
        for record in receipt.events:
            if record.event == name and record.address == self.address:
                return record.args
        raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event")

    # -- sponsor, aggregator, clients ------------------------------------------------------

    def create_task(
        self, terms: TaskTerms, verifiers: Sequence[str], *, signer: Signer | AccountSource
    ) -> bytes:
        """Create a task escrowing its pool (approved, or sent as ether); its id. The task's
        held-out root is registered with this block."""
        value = 0
        if terms.asset == ETHER_ASSET:
            value = terms.pool
        else:
            token = Token.at(self.chain, terms.asset)
            sender = to_checksum_address(tx_signer(signer).address)
            if token.allowance(sender, self.address) < terms.pool:
                token.approve(self.address, terms.pool, signer=signer)
        vs = [to_checksum_address(v) for v in verifiers]
        receipt = self._send("createTask", terms.as_tuple(), vs, signer=signer, value=value)
        return _bytes(self._event(receipt, "TaskCreated")["taskId"])

    def cancel(self, task_id: bytes, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("cancel", task_id, signer=signer)

    def accept_task(
        self, task_id: bytes, record_signer: str | None = None, *, signer: Signer | AccountSource
    ) -> Receipt:
        """The aggregator accepts: its bond is locked in the StakeManager; ``record_signer``
        (default: the aggregator's own address) is the key that signs its round records."""
        key = to_checksum_address(record_signer or tx_signer(signer).address)
        return self._send("acceptTask", task_id, key, signer=signer)

    def join(self, task_id: bytes, data_root: bytes, *, signer: Signer | AccountSource) -> Receipt:
        """Join as a client: the task's stake is locked and ``data_root`` (32 bytes committing
        the client's declared training data: ``RecordTree.commitment`` of
        :mod:`ailedger.markets.flrewards`, which binds root and size) is recorded."""
        if len(data_root) != 32 or data_root == _ZERO32:
            raise InvalidInput("a data root is 32 bytes, not all zero")
        return self._send("join", task_id, data_root, signer=signer)

    # -- rounds ----------------------------------------------------------------------------

    def post_round(
        self, record: _Struct, signature: bytes, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Post an aggregator-signed ``RoundRecord`` (anyone may relay it)."""
        return self._send("postRound", record.as_tuple(), signature, signer=signer)

    def challenge(
        self,
        correction: _Struct,
        signatures: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Challenge a round with the verifiers' signed ``Correction`` (ordered by signer);
        the amount of the aggregator's bond slashed."""
        receipt = self._send("challenge", correction.as_tuple(), list(signatures), signer=signer)
        return int(self._event(receipt, "RoundCorrected")["bondSlashed"])

    def claim(
        self,
        task_id: bytes,
        round: int,
        proof: _PayoutProof,
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Claim the signer's payout of ``round`` with its proof; the amount paid."""
        receipt = self._send(
            "claim", task_id, round, proof.payout.amount, proof.index, list(proof.hashes),
            signer=signer,
        )  # fmt: skip
        return int(self._event(receipt, "PayoutClaimed")["amount"])

    def slash_penalised(
        self,
        task_id: bytes,
        round: int,
        proof: _PenaltyProof,
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Slash a client the round's penalty tree names; the amount slashed."""
        receipt = self._send(
            "slashPenalised", task_id, round, proof.penalty.as_tuple(), proof.index,
            list(proof.hashes), signer=signer,
        )  # fmt: skip
        return int(self._event(receipt, "ClientSlashed")["amount"])

    def finish(self, task_id: bytes, *, signer: Signer | AccountSource) -> int:
        """Finish the task (see ``finishable_at``); the unreserved pool credited to the sponsor
        (who takes it with :meth:`withdraw_refund`)."""
        return int(
            self._event(self._send("finish", task_id, signer=signer), "TaskFinished")["refund"]
        )

    def withdraw_refund(
        self, asset: str, to: str | None = None, *, signer: Signer | AccountSource
    ) -> int:
        """Send the signer's (a sponsor's) refunds of finished tasks in ``asset`` to ``to``
        (default: the signer); the amount."""
        recipient = to_checksum_address(to or tx_signer(signer).address)
        receipt = self._send("withdrawRefund", to_checksum_address(asset), recipient, signer=signer)
        return int(self._event(receipt, "RefundWithdrawn")["amount"])

    def sweep(self, task_id: bytes, *, signer: Signer | AccountSource) -> int:
        """``CLAIM_PERIOD`` after the task finished, credit its unclaimed payouts to the sponsor
        (who takes them with :meth:`withdraw_refund`); the amount."""
        return int(
            self._event(self._send("sweep", task_id, signer=signer), "UnclaimedSwept")["amount"]
        )

    def leave(self, task_id: bytes, *, signer: Signer | AccountSource) -> int:
        """Free the signer's stake after the task; the amount released."""
        return int(
            self._event(self._send("leave", task_id, signer=signer), "ClientLeft")["released"]
        )

    # -- views -----------------------------------------------------------------------------

    def task(self, task_id: bytes) -> TaskInfo:
        raw = self.chain.call(self.contract, "getTask", task_id)
        if int(raw[3]) == TaskStatus.NONE:
            raise InvalidInput(f"there is no task {task_id.hex()}")
        return TaskInfo(
            task_id, TaskTerms.from_tuple(raw[0]), str(raw[1]), str(raw[2]),
            TaskStatus(int(raw[3])), int(raw[4]), int(raw[5]), int(raw[6]), int(raw[7]),
            int(raw[8]), bytes(raw[9]), int(raw[10]), int(raw[11]),
        )  # fmt: skip

    def round(self, task_id: bytes, round: int) -> RoundInfo:
        raw = self.chain.call(self.contract, "getRound", task_id, round)
        if int(raw[10]) == 0:
            raise InvalidInput(f"round {round} of task {task_id.hex()} was not posted")
        return RoundInfo(
            bytes(raw[0]), bytes(raw[1]), bytes(raw[2]), bytes(raw[3]), bytes(raw[4]),
            bytes(raw[5]), int(raw[6]), int(raw[7]), int(raw[8]), int(raw[9]), int(raw[10]),
            int(raw[11]), bool(raw[12]),
        )  # fmt: skip

    def client(self, task_id: bytes, client: str) -> ClientInfo:
        raw = self.chain.call(self.contract, "getClient", task_id, to_checksum_address(client))
        return ClientInfo(
            bytes(raw[0]), int(raw[1]), bool(raw[2]), bool(raw[3]), int(raw[4]), int(raw[5])
        )

    def claimed(self, task_id: bytes, round: int, client: str) -> bool:
        return bool(
            self.chain.call(self.contract, "claimed", task_id, round, to_checksum_address(client))
        )

    def pool_left(self, task_id: bytes) -> int:
        """The pool not yet reserved by a round (0 once finished or cancelled)."""
        return int(self.chain.call(self.contract, "poolLeft", task_id))

    def finishable_at(self, task_id: bytes) -> int:
        return int(self.chain.call(self.contract, "finishableAt", task_id))

    def verifiers(self, task_id: bytes) -> list[str]:
        return [str(v) for v in self.chain.call(self.contract, "verifiersOf", task_id)]

    def refundable(self, account: str, asset: str) -> int:
        """What a sponsor may withdraw with :meth:`withdraw_refund`."""
        who, what = to_checksum_address(account), to_checksum_address(asset)
        return int(self.chain.call(self.contract, "refundable", who, what))

    def held(self, asset: str) -> int:
        return int(self.chain.call(self.contract, "held", to_checksum_address(asset)))

    def domain_separator(self) -> bytes:
        return bytes(self.chain.call(self.contract, "domainSeparator"))


def deploy_fl_rewards(
    chain: Chain, signer: Signer | AccountSource, *, stake_manager: str
) -> DeployedContract:
    """Deploy FLRewards over ``stake_manager``. Governance must still register it in the
    StakeManager as a judge and a market (``register_with_stake_manager`` of
    :mod:`ailedger.chain.vouching` does both), which take effect after the governance delay."""
    return chain.deploy("FLRewards", to_checksum_address(stake_manager), signer=signer)
