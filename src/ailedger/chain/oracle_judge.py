"""A typed client for ``contracts/OracleJudge.sol``: accountable oracles.

A feed's creator declares the feed's terms once (:meth:`OracleJudge.declare_terms`): the
stake asset, the minimum stake each oracle holds free in the StakeManager, the amount slashed
per fault, the tolerance around the stored median and the challenge window (seconds after the
round was accepted on-chain, at most the StakeManager's unbonding delay). Terms judge only
rounds accepted after they were declared, so a creator cannot pick a tolerance after seeing a
stored round's observations. A settlement that pays on the feed checks
:meth:`OracleJudge.feed_accountable` (every oracle of the configuration in force staked, the
judge registered).

:meth:`OracleJudge.challenge` shows the judge a stored round's report (as transmitted: the
contract compares its struct hash with the one OracleFeeds stored), the position of an
observation in it and its observer's own EIP-712 signature
(:func:`~ailedger.chain.oracle_report.observation_digest`). If the value lies further than
the tolerance from the stored median, the observer is slashed by the StakeManager: fault id
``keccak256(abi.encode(feedId, epoch, oracle))`` (:func:`fault_id`), reason code
:data:`REASON_OUT_OF_TOLERANCE`, evidence hash = the observation's EIP-712 digest, the
challenger as prover. A challenge that does not hold reverts (a
:class:`~ailedger.chain.ContractReverted` with one line saying why); it costs only gas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import abi_encode, keccak, to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.chain.oracle_report import OracleReport
from ailedger.errors import ChainError, InvalidInput

__all__ = [
    "DEFAULT_PROVER_BPS",
    "REASON_OUT_OF_TOLERANCE",
    "Challenge",
    "FeedTerms",
    "OracleJudge",
    "deploy_oracle_judge",
    "fault_id",
]

#: The StakeManager reason code of an observation outside the feed's tolerance.
REASON_OUT_OF_TOLERANCE = 1
#: The prover's share of a slash ``ailedger chain deploy`` registers the judge with: 50 %.
DEFAULT_PROVER_BPS = 5_000


def fault_id(feed: bytes, epoch: int, oracle: str) -> bytes:
    """``faultIdOf``: one fault per (feed, epoch, oracle)."""
    return keccak(
        abi_encode(["bytes32", "uint64", "address"], [feed, epoch, to_checksum_address(oracle)])
    )


@dataclass(frozen=True)
class FeedTerms:
    """A feed's declared terms (amounts in the asset's base units). ``from_epoch`` is the
    feed's next epoch when the terms were declared, as the chain stored it (ignored when
    declaring): only rounds from that epoch on are judged by these terms."""

    asset: str
    challenge_window: int
    min_stake: int
    slash_amount: int
    tolerance: int
    from_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "challenge_window": self.challenge_window,
            "from_epoch": self.from_epoch,
            "min_stake": self.min_stake,
            "slash_amount": self.slash_amount,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class Challenge:
    """A challenge that slashed: what the judge and the StakeManager emitted."""

    feed_id: bytes
    epoch: int
    oracle: str
    challenger: str
    value: int
    answer: int
    deviation: int
    fault_id: bytes
    evidence_hash: bytes
    slashed: int
    prover_share: int
    treasury_share: int
    reason_code: int
    tx_hash: str
    block_number: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed_id": "0x" + self.feed_id.hex(),
            "epoch": self.epoch,
            "oracle": self.oracle,
            "challenger": self.challenger,
            "value": self.value,
            "answer": self.answer,
            "deviation": self.deviation,
            "fault_id": "0x" + self.fault_id.hex(),
            "evidence_hash": "0x" + self.evidence_hash.hex(),
            "reason_code": self.reason_code,
            "slashed": self.slashed,
            "prover_share": self.prover_share,
            "treasury_share": self.treasury_share,
            "transaction": self.tx_hash,
            "block": self.block_number,
        }


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


class OracleJudge(ContractWrapper):
    """The OracleJudge contract at ``contract`` on ``chain``."""

    def declare_terms(
        self,
        feed: bytes,
        terms: FeedTerms,
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Declare ``feed``'s terms (its creator, once)."""
        return self.chain.transact(
            self.contract,
            "declareTerms",
            feed,
            to_checksum_address(terms.asset),
            terms.min_stake,
            terms.slash_amount,
            terms.tolerance,
            terms.challenge_window,
            signer=signer,
        )

    def terms(self, feed: bytes) -> FeedTerms | None:
        asset, window, from_epoch, min_stake, slash, tolerance = self.chain.call(
            self.contract, "termsOf", feed
        )
        if int(min_stake) == 0:
            return None
        return FeedTerms(
            str(asset), int(window), int(min_stake), int(slash), int(tolerance), int(from_epoch)
        )

    def is_accountable(self, feed: bytes, oracle: str) -> bool:
        return bool(
            self.chain.call(self.contract, "isAccountable", feed, to_checksum_address(oracle))
        )

    def feed_accountable(self, feed: bytes) -> bool:
        return bool(self.chain.call(self.contract, "feedAccountable", feed))

    def challenge(
        self,
        report: OracleReport,
        position: int,
        signature: bytes,
        *,
        signer: Signer | AccountSource,
    ) -> Challenge:
        """Challenge the observation at ``position`` of the stored round ``report`` with its
        observer's ``signature``; the slash as the chain recorded it."""
        if not 0 <= position < len(report.observations):
            raise InvalidInput(
                f"position {position} is outside the report's "
                f"{len(report.observations)} observations"
            )
        if len(signature) != 65:
            raise InvalidInput(f"an observation signature is 65 bytes, not {len(signature)}")
        receipt = self.chain.transact(
            self.contract, "challenge", report.as_tuple(), position, signature, signer=signer
        )
        judged = next((r for r in receipt.events if r.event == "ObservationChallenged"), None)
        slashed = next((r for r in receipt.events if r.event == "Slashed"), None)
        if judged is None or slashed is None:
            raise ChainError(f"transaction {receipt.tx_hash} emitted no slash")
        a, s = judged.args, slashed.args
        return Challenge(
            _bytes(a["feedId"]),
            int(a["epoch"]),
            str(a["oracle"]),
            str(a["challenger"]),
            int(a["value"]),
            int(a["answer"]),
            int(a["deviation"]),
            _bytes(a["faultId"]),
            _bytes(a["evidenceHash"]),
            int(a["slashed"]),
            int(s["proverShare"]),
            int(s["treasuryShare"]),
            int(s["reasonCode"]),
            receipt.tx_hash,
            receipt.block_number,
        )


def deploy_oracle_judge(
    chain: Chain,
    stake_manager: str,
    feeds: str,
    signer: Signer | AccountSource,
) -> DeployedContract:
    """Deploy an OracleJudge over the StakeManager and OracleFeeds at those addresses."""
    return chain.deploy(
        "OracleJudge",
        to_checksum_address(stake_manager),
        to_checksum_address(feeds),
        signer=signer,
    )
