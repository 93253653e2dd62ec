"""A typed client for ``contracts/InferenceMarket.sol``: pay-per-inference jobs.

A consumer opens a job (:class:`JobTerms`, a verifier set and threshold) escrowing
``price * max_calls``; the provider accepts, locking its declared stake in the StakeManager
and naming its receipt signer; the provider (or anyone relaying its signature) commits signed
epoch roots with the job's call count; the sample is fixed by the next block's hash; the
verifiers' signed result settles an epoch (or the consumer approves it); after the deadline and
the settle window anyone finishes the job. Disputes take a receipt the provider signed
(wrong model; omitted or altered in the committed root; in a failed epoch, an output the
verifiers could not reproduce). Payments are pulled (:meth:`claim`).

The signed messages (receipts, epoch roots, verification results) are built by
:mod:`ailedger.markets.inference`; this module only moves their bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.chain.stake import Token
from ailedger.errors import ChainError, InvalidInput

__all__ = [
    "ETHER_ASSET",
    "INFERENCE_PROVER_BPS",
    "INFERENCE_SETTLE_WINDOW",
    "EpochInfo",
    "EpochStatus",
    "InferenceMarket",
    "JobInfo",
    "JobStatus",
    "JobTerms",
    "deploy_inference_market",
]

#: The consumer's (prover's) share of a provider's slash when `ailedger chain deploy`
#: registers InferenceMarket as a judge; the rest goes to the treasury.
INFERENCE_PROVER_BPS = 5_000
#: Seconds after a job's deadline during which epochs may still be settled or disputed.
INFERENCE_SETTLE_WINDOW = 86_400
ETHER_ASSET = "0x" + "00" * 20
_U64 = 2**64 - 1


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


class JobStatus(IntEnum):
    NONE = 0
    OPEN = 1
    ACTIVE = 2
    FINISHED = 3
    SLASHED = 4
    CANCELLED = 5


class EpochStatus(IntEnum):
    NONE = 0
    COMMITTED = 1
    PASSED = 2
    FAILED = 3


@dataclass(frozen=True)
class JobTerms:
    """The contract's ``Terms``: provider, payment asset (``ETHER_ASSET`` for ether), stake
    asset and amount, the model digest paid for, price per call, maximum calls, deadline (unix
    time), sample size, pass threshold in basis points (0: 9900) and verifier threshold."""

    provider: str
    asset: str
    stake_asset: str
    stake: int
    model_digest: bytes
    price: int
    max_calls: int
    deadline: int
    k: int
    pass_bps: int = 0
    threshold: int = 1

    def __post_init__(self) -> None:
        if len(self.model_digest) != 32:
            raise InvalidInput("a model digest is 32 bytes")
        if self.stake < 1 or self.price < 1 or not 1 <= self.max_calls <= _U64:
            raise InvalidInput("stake, price and max calls must be positive")
        if not 1 <= self.k <= 1024 or not 0 <= self.pass_bps <= 10_000:
            raise InvalidInput("k must be 1..1024 and the pass threshold 0..10000 bps")
        if not 1 <= self.threshold <= 32:
            raise InvalidInput("the verifier threshold must be 1..32")

    @property
    def escrow(self) -> int:
        return self.price * self.max_calls

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            to_checksum_address(self.provider), to_checksum_address(self.asset),
            to_checksum_address(self.stake_asset), self.stake, self.model_digest, self.price,
            self.max_calls, self.deadline, self.k, self.pass_bps, self.threshold,
        )  # fmt: skip

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> JobTerms:
        return cls(
            str(raw[0]), str(raw[1]), str(raw[2]), int(raw[3]), bytes(raw[4]), int(raw[5]),
            int(raw[6]), int(raw[7]), int(raw[8]), int(raw[9]), int(raw[10]),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "asset": self.asset,
            "stake_asset": self.stake_asset,
            "stake": self.stake,
            "model_digest": self.model_digest.hex(),
            "price": self.price,
            "max_calls": self.max_calls,
            "deadline": self.deadline,
            "k": self.k,
            "pass_bps": self.pass_bps,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class JobInfo:
    job_id: bytes
    terms: JobTerms
    consumer: str
    signer: str
    status: JobStatus
    committed_calls: int
    paid_calls: int
    failed_calls: int
    last_epoch: int
    any_epoch: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id.hex(),
            "terms": self.terms.to_dict(),
            "consumer": self.consumer,
            "signer": self.signer,
            "status": self.status.name.lower(),
            "committed_calls": self.committed_calls,
            "paid_calls": self.paid_calls,
            "failed_calls": self.failed_calls,
            "last_epoch": self.last_epoch if self.any_epoch else None,
        }


@dataclass(frozen=True)
class EpochInfo:
    status: EpochStatus
    size: int
    first: int
    calls: int
    seed_block: int
    root: bytes
    seed: bytes

    @property
    def drawn(self) -> bool:
        return self.seed != b"\0" * 32


class InferenceMarket(ContractWrapper):
    """The InferenceMarket contract at ``contract`` on ``chain``."""

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource, value: int = 0) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer, value=value)

    def _event(self, receipt: Receipt, name: str) -> Any:
        for record in receipt.events:
            if record.event == name and record.address == self.address:
                return record.args
        raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event")

    def open_job(
        self, terms: JobTerms, verifiers: Sequence[str], *, signer: Signer | AccountSource
    ) -> bytes:
        """Open a job (approving the escrow, or sending it as ether); its id."""
        value = 0
        if terms.asset == ETHER_ASSET:
            value = terms.escrow
        else:
            token = Token.at(self.chain, terms.asset)
            sender = to_checksum_address(tx_signer(signer).address)
            if token.allowance(sender, self.address) < terms.escrow:
                token.approve(self.address, terms.escrow, signer=signer)
        vs = [to_checksum_address(v) for v in verifiers]
        receipt = self._send("openJob", terms.as_tuple(), vs, signer=signer, value=value)
        return _bytes(self._event(receipt, "JobOpened")["jobId"])

    def accept_job(
        self, job_id: bytes, receipt_signer: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("acceptJob", job_id, to_checksum_address(receipt_signer), signer=signer)

    def cancel(self, job_id: bytes, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("cancel", job_id, signer=signer)

    def commit_epoch(
        self,
        job_id: bytes,
        epoch: int,
        size: int,
        root: bytes,
        calls: int,
        signature: bytes,
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Commit a provider-signed epoch root holding the job's next ``calls`` calls."""
        return self._send("commitEpoch", job_id, epoch, size, root, calls, signature, signer=signer)

    def draw(self, job_id: bytes, epoch: int, *, signer: Signer | AccountSource) -> bool:
        receipt = self._send("draw", job_id, epoch, signer=signer)
        return any(r.event == "SampleDrawn" for r in receipt.events)

    def settle_epoch(
        self,
        job_id: bytes,
        epoch: int,
        passed: int,
        total: int,
        signatures: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> bool:
        """Settle with the verifiers' signatures (ordered by signer); whether it passed."""
        receipt = self._send(
            "settleEpoch", job_id, epoch, passed, total, list(signatures), signer=signer
        )
        return bool(self._event(receipt, "EpochSettled")["passed"])

    def approve_epoch(
        self, job_id: bytes, epoch: int, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("approveEpoch", job_id, epoch, signer=signer)

    def finish(self, job_id: bytes, *, signer: Signer | AccountSource) -> tuple[int, int]:
        """Finish the job after its settle window: (paid, refunded)."""
        args = self._event(self._send("finish", job_id, signer=signer), "JobFinished")
        return int(args["paid"]), int(args["refund"])

    def prove_wrong_model(
        self,
        job_id: bytes,
        receipt: Sequence[Any],
        signature: bytes,
        proof: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Dispute a receipt naming another model; the amount slashed."""
        r = self._send(
            "proveWrongModel", job_id, tuple(receipt), signature, list(proof), signer=signer
        )
        return int(self._event(r, "ProviderSlashed")["slashed"])

    def prove_omission(
        self,
        job_id: bytes,
        receipt: Sequence[Any],
        signature: bytes,
        held_leaf: bytes,
        proof: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Dispute a signed receipt the committed root omits or alters; the amount slashed."""
        r = self._send(
            "proveOmission",
            job_id,
            tuple(receipt),
            signature,
            held_leaf,
            list(proof),
            signer=signer,
        )
        return int(self._event(r, "ProviderSlashed")["slashed"])

    def prove_wrong_output(
        self,
        job_id: bytes,
        receipt: Sequence[Any],
        signature: bytes,
        proof: Sequence[bytes],
        expected_response_digest: bytes,
        verifier_signatures: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> int:
        """Dispute a receipt of a failed epoch whose response the verifiers could not
        reproduce (their ``Mismatch`` signatures, ordered by signer); the amount slashed."""
        r = self._send(
            "proveWrongOutput",
            job_id,
            tuple(receipt),
            signature,
            list(proof),
            expected_response_digest,
            list(verifier_signatures),
            signer=signer,
        )
        return int(self._event(r, "ProviderSlashed")["slashed"])

    def claim(self, asset: str, to: str | None = None, *, signer: Signer | AccountSource) -> int:
        recipient = to_checksum_address(to or tx_signer(signer).address)
        receipt = self._send("claim", to_checksum_address(asset), recipient, signer=signer)
        return int(self._event(receipt, "Claimed")["amount"])

    # -- views --------------------------------------------------------------------------

    def job(self, job_id: bytes) -> JobInfo:
        raw = self.chain.call(self.contract, "getJob", job_id)
        if int(raw[3]) == JobStatus.NONE:
            raise InvalidInput(f"there is no job {job_id.hex()}")
        return JobInfo(
            job_id, JobTerms.from_tuple(raw[0]), str(raw[1]), str(raw[2]),
            JobStatus(int(raw[3])), int(raw[4]), int(raw[5]), int(raw[6]), int(raw[7]),
            bool(raw[8]),
        )  # fmt: skip

    def epoch(self, job_id: bytes, epoch: int) -> EpochInfo:
        raw = self.chain.call(self.contract, "getEpoch", job_id, epoch)
        return EpochInfo(
            EpochStatus(int(raw[0])), int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]),
            bytes(raw[5]), bytes(raw[6]),
        )  # fmt: skip

    def verifiers(self, job_id: bytes) -> list[str]:
        """The job's verifier set (in the order the consumer named it)."""
        return [str(v) for v in self.chain.call(self.contract, "verifiersOf", job_id)]

    def sample_counters(self, job_id: bytes, epoch: int) -> list[int]:
        return [int(c) for c in self.chain.call(self.contract, "sampleCounters", job_id, epoch)]

    def domain_separator(self) -> bytes:
        return bytes(self.chain.call(self.contract, "domainSeparator"))

    def owed(self, account: str, asset: str) -> int:
        return int(
            self.chain.call(
                self.contract, "owed", to_checksum_address(account), to_checksum_address(asset)
            )
        )

    def held(self, asset: str) -> int:
        return int(self.chain.call(self.contract, "held", to_checksum_address(asset)))


def deploy_inference_market(
    chain: Chain,
    signer: Signer | AccountSource,
    *,
    stake_manager: str,
    settle_window: int = INFERENCE_SETTLE_WINDOW,
) -> DeployedContract:
    """Deploy InferenceMarket over ``stake_manager``. Governance must still register it in
    the StakeManager as a judge and a market (``register_with_stake_manager`` of
    :mod:`ailedger.chain.vouching` does both), which take effect after the governance delay."""
    return chain.deploy(
        "InferenceMarket", to_checksum_address(stake_manager), settle_window, signer=signer
    )
