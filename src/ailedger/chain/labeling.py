"""A typed client for ``contracts/LabelingMarket.sol``: labeling tasks paid from an escrowed
ERC-20 pool, labelers' stake locked in the StakeManager (the market is a registered market and
judge there), commit-reveal of labels, the gold reveal with inclusion proofs, on-chain scoring,
settlement and pull claims. Amounts are in the token's base units.

The formats (commitments, gold records and trees) are in :mod:`ailedger.markets.labeling`'s
terms; this module only encodes calls and decodes the contract's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.chain.stake import Token
from ailedger.errors import ChainError

__all__ = [
    "LABELING_PROVER_BPS",
    "LabelerWork",
    "LabelingMarket",
    "TaskInfo",
    "TaskParams",
    "deploy_labeling_market",
]

#: The share of a labeler's slashed stake that goes to whoever settles the task (the rest to
#: the StakeManager's treasury), in basis points.
LABELING_PROVER_BPS = 1_000


@dataclass(frozen=True)
class TaskParams:
    """What a requester posts (see ``LabelingMarket.TaskParams``)."""

    token: str
    batch_root: bytes
    item_count: int
    gold_root: bytes
    gold_count: int
    pool: int
    min_stake: int
    threshold_bps: int
    commit_deadline: int
    reveal_deadline: int
    gold_deadline: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            to_checksum_address(self.token),
            self.batch_root,
            self.item_count,
            self.gold_root,
            self.gold_count,
            self.pool,
            self.min_stake,
            self.threshold_bps,
            self.commit_deadline,
            self.reveal_deadline,
            self.gold_deadline,
        )


@dataclass(frozen=True)
class TaskInfo:
    """A task as the contract stores it (``pool`` is what arrived)."""

    requester: str
    token: str
    batch_root: bytes
    gold_root: bytes
    item_count: int
    gold_count: int
    threshold_bps: int
    commit_deadline: int
    reveal_deadline: int
    gold_deadline: int
    pool: int
    min_stake: int
    gold_digest: bytes
    gold_revealed: bool
    settled: bool

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for k in ("batch_root", "gold_root", "gold_digest"):
            out[k] = "0x" + bytes(out[k]).hex()
        return out


@dataclass(frozen=True)
class LabelerWork:
    """One labeler's state in one task."""

    joined: bool
    revealed: bool
    scored: bool
    correct: int
    #: The commitment until the labeler reveals, then keccak256 of the revealed labels.
    hash: bytes


class LabelingMarket(ContractWrapper):
    """The LabelingMarket contract at ``contract`` on ``chain``."""

    def _send(self, fn: str, *args: object, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer)

    def _event(self, receipt: Receipt, name: str) -> dict[str, Any]:
        for record in receipt.events:
            if record.event == name and record.address.lower() == self.address.lower():
                return record.args
        raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event")

    def create_task(self, params: TaskParams, *, signer: Signer | AccountSource) -> int:
        """Approve the pool (if needed) and post the task; returns its id."""
        token = Token.at(self.chain, params.token)
        sender = to_checksum_address(tx_signer(signer).address)
        if token.allowance(sender, self.address) < params.pool:
            token.approve(self.address, params.pool, signer=signer)
        receipt = self._send("createTask", params.as_tuple(), signer=signer)
        return int(self._event(receipt, "TaskCreated")["taskId"])

    def join(
        self, task_id: int, commitment: bytes = bytes(32), *, signer: Signer | AccountSource
    ) -> Receipt:
        """Join (the task's minimum stake is locked); a nonzero ``commitment`` commits too."""
        return self._send("join", task_id, commitment, signer=signer)

    def commit(self, task_id: int, commitment: bytes, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("commit", task_id, commitment, signer=signer)

    def reveal(
        self, task_id: int, labels: bytes, salt: bytes, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("reveal", task_id, labels, salt, signer=signer)

    def reveal_gold(
        self,
        task_id: int,
        salts: Sequence[bytes],
        records: bytes,
        proofs: Sequence[Sequence[bytes]],
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        return self._send(
            "revealGold", task_id, list(salts), records, [list(p) for p in proofs], signer=signer
        )

    def score(
        self,
        task_id: int,
        labelers: Sequence[str],
        labels: Sequence[bytes],
        records: bytes,
        *,
        signer: Signer | AccountSource,
    ) -> dict[str, int]:
        """Score ``labelers`` on-chain in one transaction; how many gold items each got right."""
        receipt = self._send(
            "score",
            task_id,
            [to_checksum_address(a) for a in labelers],
            list(labels),
            records,
            signer=signer,
        )
        return {
            to_checksum_address(str(e.args["labeler"])): int(e.args["correct"])
            for e in receipt.events
            if e.event == "Scored" and e.address.lower() == self.address.lower()
        }

    def settle(self, task_id: int, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("settle", task_id, signer=signer)

    def claim(
        self, token: str, to: str | None = None, *, signer: Signer | AccountSource
    ) -> Receipt:
        recipient = to or tx_signer(signer).address
        return self._send(
            "claim", to_checksum_address(token), to_checksum_address(recipient), signer=signer
        )

    # -- views --------------------------------------------------------------------------

    def task(self, task_id: int) -> TaskInfo:
        raw = self.chain.call(self.contract, "taskOf", task_id)
        ints = [int(v) for v in raw[4:12]]
        return TaskInfo(
            requester=str(raw[0]),
            token=str(raw[1]),
            batch_root=bytes(raw[2]),
            gold_root=bytes(raw[3]),
            item_count=ints[0],
            gold_count=ints[1],
            threshold_bps=ints[2],
            commit_deadline=ints[3],
            reveal_deadline=ints[4],
            gold_deadline=ints[5],
            pool=ints[6],
            min_stake=ints[7],
            gold_digest=bytes(raw[12]),
            gold_revealed=bool(raw[13]),
            settled=bool(raw[14]),
        )

    def task_count(self) -> int:
        return int(self.chain.call(self.contract, "taskCount"))

    def labelers(self, task_id: int) -> list[str]:
        return [str(a) for a in self.chain.call(self.contract, "labelersOf", task_id)]

    def work_of(self, task_id: int, labeler: str) -> LabelerWork:
        raw = self.chain.call(self.contract, "workOf", task_id, to_checksum_address(labeler))
        return LabelerWork(bool(raw[0]), bool(raw[1]), bool(raw[2]), int(raw[3]), bytes(raw[4]))

    def owed(self, account: str, token: str) -> int:
        return int(
            self.chain.call(
                self.contract, "owed", to_checksum_address(account), to_checksum_address(token)
            )
        )

    def books(self, token: str) -> dict[str, int]:
        """Per token: open pools (escrowed), owed and claimed."""
        t = to_checksum_address(token)
        return {
            "escrowed": int(self.chain.call(self.contract, "escrowed", t)),
            "owed": int(self.chain.call(self.contract, "totalOwed", t)),
            "claimed": int(self.chain.call(self.contract, "claimed", t)),
        }

    def fault_id(self, task_id: int, labeler: str, reason: int) -> bytes:
        return bytes(
            self.chain.call(self.contract, "faultId", task_id, to_checksum_address(labeler), reason)
        )

    def commitment_of(self, task_id: int, labeler: str, labels_hash: bytes, salt: bytes) -> bytes:
        return bytes(
            self.chain.call(
                self.contract,
                "commitmentOf",
                task_id,
                to_checksum_address(labeler),
                labels_hash,
                salt,
            )
        )


def deploy_labeling_market(
    chain: Chain,
    signer: Signer | AccountSource,
    stake_manager: DeployedContract,
    *,
    prover_bps: int = LABELING_PROVER_BPS,
) -> DeployedContract:
    """Deploy a LabelingMarket over ``stake_manager`` and propose it there as a judge (with
    ``prover_bps``) and a market; ``signer`` must govern the StakeManager. Both registrations
    take effect after the StakeManager's governance delay."""
    market = chain.deploy("LabelingMarket", stake_manager.address, signer=signer)
    chain.transact(stake_manager, "proposeJudge", market.address, prover_bps, signer=signer)
    chain.transact(stake_manager, "proposeMarket", market.address, signer=signer)
    return market
