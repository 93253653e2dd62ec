"""Typed clients for the settlement contracts that read an oracle feed:
``contracts/ParametricEscrow.sol`` (parametric insurance pools and policies) and
``contracts/PerformanceBonus.sol`` (a weekly bonus for weeks without incidents).

Both pay by pull payment: settling credits an account, :meth:`withdraw` (or
:meth:`withdraw_to`, for accounts that cannot receive ether) sends it. Their books always
balance: ``paid + claimable + remaining == deposited`` (:class:`Totals`); ether forced in
beyond the books is :meth:`surplus`, which the contract's owner may sweep.

A policy or agreement pins its feed (namespaced by creator) and one configuration of it (the
config digest) when written, and settles only on rounds accepted under that configuration;
a policy settles on the round its caller names (``settle(policy_id, epoch)``).

A policy written with a ``judge`` (an OracleJudge, :mod:`ailedger.chain.oracle_judge`) pays
only while the judge holds its feed accountable (every oracle of the configuration in force
staked): ``settle`` reverts ``FeedNotAccountable`` otherwise, checked at payout time. The
insurer chooses the judge; a holder should accept a policy only with a judge it has checked
(:attr:`PolicyInfo.judge`), since a judge that answers false keeps a triggered policy from
paying (``contracts/ParametricEscrow.sol`` says who relies on what). A policy without a judge
settles as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.errors import ChainError

__all__ = [
    "ParametricEscrow",
    "PerformanceBonus",
    "PolicyInfo",
    "PolicyStatus",
    "Totals",
    "Trigger",
]


class Trigger(IntEnum):
    """When a policy pays: the feed's answer strictly above, or strictly below, a threshold."""

    ABOVE = 0
    BELOW = 1


class PolicyStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    TRIGGERED = 2
    EXPIRED = 3


@dataclass(frozen=True)
class Totals:
    """A settlement contract's books (wei)."""

    deposited: int
    paid: int
    claimable: int
    remaining: int

    @property
    def balanced(self) -> bool:
        return self.paid + self.claimable + self.remaining == self.deposited

    def to_dict(self) -> dict[str, int]:
        return {
            "deposited": self.deposited,
            "paid": self.paid,
            "claimable": self.claimable,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class PolicyInfo:
    policy_id: int
    pool_id: int
    holder: str
    status: PolicyStatus
    trigger: Trigger
    start: int
    expiry: int
    feed_id: bytes
    config_digest: bytes
    threshold: int
    payout: int
    settled_epoch: int
    #: The judge whose ``feedAccountable`` the payout requires; None: no requirement.
    judge: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "pool_id": self.pool_id,
            "holder": self.holder,
            "status": self.status.name.lower(),
            "trigger": self.trigger.name.lower(),
            "start": self.start,
            "expiry": self.expiry,
            "feed_id": "0x" + self.feed_id.hex(),
            "config_digest": "0x" + self.config_digest.hex(),
            "threshold": self.threshold,
            "payout": self.payout,
            "settled_epoch": self.settled_epoch,
            "judge": self.judge,
        }


def _event_arg(receipt: Receipt, event: str, arg: str) -> int:
    for record in receipt.events:
        if record.event == event:
            return int(record.args[arg])
    raise ChainError(f"transaction {receipt.tx_hash} emitted no {event} event")


class _Payments(ContractWrapper):
    """Pull payments and books, shared by both contracts."""

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource, value: int = 0) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer, value=value)

    def claimable(self, account: str) -> int:
        return int(self.chain.call(self.contract, "claimable", account))

    def withdraw(self, *, signer: Signer | AccountSource) -> Receipt:
        """Send the sender everything credited to it."""
        return self._send("withdraw", signer=signer)

    def withdraw_to(self, to: str, *, signer: Signer | AccountSource) -> Receipt:
        """Send everything credited to the sender to ``to``."""
        return self._send("withdrawTo", to, signer=signer)

    def surplus(self) -> int:
        """Ether held beyond the books (forced in, never deposited)."""
        return int(self.chain.call(self.contract, "surplus"))

    def sweep_surplus(self, *, signer: Signer | AccountSource) -> Receipt:
        """Credit the surplus to the contract's owner (the sender must be the owner)."""
        return self._send("sweepSurplus", signer=signer)

    def totals(self) -> Totals:
        return Totals(*(int(v) for v in self.chain.call(self.contract, "totals")))


class ParametricEscrow(_Payments):
    """The ParametricEscrow contract at ``contract`` on ``chain``."""

    def create_pool(self, wei: int = 0, *, signer: Signer | AccountSource) -> int:
        """Open a pool owned by the sender, funded with ``wei``; returns its id."""
        receipt = self._send("createPool", signer=signer, value=wei)
        return _event_arg(receipt, "PoolCreated", "poolId")

    def fund(self, pool_id: int, wei: int, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("fund", pool_id, signer=signer, value=wei)

    def reclaim(self, pool_id: int, wei: int, *, signer: Signer | AccountSource) -> Receipt:
        """Credit ``wei`` of the pool's free funds to its insurer (the sender)."""
        return self._send("reclaim", pool_id, wei, signer=signer)

    def pool(self, pool_id: int) -> tuple[str, int, int]:
        """(insurer, free, reserved)."""
        insurer, free, reserved = self.chain.call(self.contract, "getPool", pool_id)
        return str(insurer), int(free), int(reserved)

    def create_policy(
        self,
        pool_id: int,
        holder: str,
        feed: bytes,
        config_digest: bytes,
        trigger: Trigger,
        threshold: int,
        payout: int,
        start: int,
        expiry: int,
        *,
        signer: Signer | AccountSource,
        judge: str | None = None,
    ) -> int:
        """Write a policy on configuration ``config_digest`` of ``feed`` (reserving ``payout``
        from the pool); returns its id. With ``judge``, the policy pays only while the judge
        holds the feed accountable (reverts ``FeedNotAccountable`` unless it does now)."""
        extra = () if judge is None else (judge,)
        receipt = self._send(
            "createPolicy" if judge is None else "createAccountablePolicy",
            pool_id,
            holder,
            feed,
            config_digest,
            int(trigger),
            threshold,
            payout,
            start,
            expiry,
            *extra,
            signer=signer,
        )
        return _event_arg(receipt, "PolicyCreated", "policyId")

    def settle(self, policy_id: int, epoch: int, *, signer: Signer | AccountSource) -> Receipt:
        """Settle on the feed's round ``epoch``; reverts unless it is under the pinned
        configuration, observed in the window and meets the trigger, and (policy with a
        judge) while the judge holds the feed accountable."""
        return self._send("settle", policy_id, epoch, signer=signer)

    def expire(self, policy_id: int, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("expire", policy_id, signer=signer)

    def judge_of(self, policy_id: int) -> str | None:
        """The judge a policy's payout requires, or None."""
        judge = str(self.chain.call(self.contract, "judgeOf", policy_id))
        return None if int(judge, 16) == 0 else judge

    def policy(self, policy_id: int) -> PolicyInfo | None:
        raw = self.chain.call(self.contract, "getPolicy", policy_id)
        pool, holder, status, trigger, start, expiry, feed, digest, threshold, payout, epoch = raw
        if status == PolicyStatus.NONE:
            return None
        return PolicyInfo(
            policy_id,
            pool,
            holder,
            PolicyStatus(status),
            Trigger(trigger),
            start,
            expiry,
            bytes(feed),
            bytes(digest),
            threshold,
            payout,
            epoch,
            self.judge_of(policy_id),
        )


class PerformanceBonus(_Payments):
    """The PerformanceBonus contract at ``contract`` on ``chain``."""

    def create_agreement(
        self,
        contractor: str,
        feed: bytes,
        config_digest: bytes,
        first_week: int,
        last_week: int,
        wei_per_week: int,
        *,
        refund_after: int,
        signer: Signer | AccountSource,
    ) -> int:
        """Fund weeks ``first_week..last_week`` up front, counted by configuration
        ``config_digest`` of ``feed``; weeks without a round under it may be refunded to the
        payer after ``refund_after`` (unix time). Returns the agreement id."""
        weeks = last_week - first_week + 1
        receipt = self._send(
            "createAgreement",
            contractor,
            feed,
            config_digest,
            first_week,
            last_week,
            refund_after,
            wei_per_week,
            signer=signer,
            value=max(weeks, 0) * wei_per_week,
        )
        return _event_arg(receipt, "AgreementCreated", "agreementId")

    def settle_week(
        self, agreement_id: int, week: int, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Credit the week to the contractor (no incidents) or back to the payer."""
        return self._send("settleWeek", agreement_id, week, signer=signer)

    def refund_week(
        self, agreement_id: int, week: int, *, signer: Signer | AccountSource
    ) -> Receipt:
        """After the agreement's refund time, return an unreported week to the payer."""
        return self._send("refundWeek", agreement_id, week, signer=signer)

    def week_settled(self, agreement_id: int, week: int) -> bool:
        return bool(self.chain.call(self.contract, "weekSettled", agreement_id, week))
