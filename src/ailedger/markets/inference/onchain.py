"""The receipt book meets the InferenceMarket contract: commit each closed epoch's signed root
for every job with calls in it, and build the dispute arguments from a kept receipt.

An epoch of the book holds receipts of several jobs; the contract keeps one record per job and
epoch (the root, and the job's calls in it, which continue the job's earlier epochs). So
:func:`commit_closed_epoch` sends one ``commitEpoch`` per job active on-chain, all with the
same signed root; a job the chain does not know (or not active) is skipped and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ailedger.chain._types import AccountSource, Signer
from ailedger.chain.inference_market import InferenceMarket, JobStatus
from ailedger.errors import AiledgerError, ConflictError, InvalidInput, NotFound
from ailedger.markets.inference._store import ClosedEpoch, ReceiptBook
from ailedger.markets.inference.receipt import SignedReceipt
from ailedger.merkle import InclusionProof

__all__ = [
    "EpochCommit",
    "commit_closed_epoch",
    "epoch_committer",
    "onchain_job_gate",
    "receipt_struct",
    "wrong_model_args",
]


@dataclass(frozen=True)
class EpochCommit:
    """What :func:`commit_closed_epoch` did for one job of the epoch."""

    job: bytes
    calls: int
    committed: bool
    reason: str = ""


def receipt_struct(signed: SignedReceipt) -> tuple[Any, ...]:
    """The contract's ``Receipt`` tuple of a signed receipt."""
    r = signed.receipt
    return (
        r.job, r.counter, r.request_digest, r.response_digest, r.model_digest, r.price,
        r.time_ms, r.consumer, r.epoch, r.position,
    )  # fmt: skip


def wrong_model_args(
    signed: SignedReceipt, proof: InclusionProof
) -> tuple[bytes, tuple[Any, ...], bytes, list[bytes]]:
    """``(jobId, receipt, signature, proof)`` for ``proveWrongModel``."""
    if proof.leaf_index != signed.receipt.position:
        raise InvalidInput("the proof is not for the receipt's position")
    return signed.receipt.job, receipt_struct(signed), signed.signature, list(proof.hashes)


def commit_closed_epoch(
    market: InferenceMarket,
    book: ReceiptBook,
    closed: ClosedEpoch,
    *,
    signer: Signer | AccountSource,
) -> list[EpochCommit]:
    """Commit ``closed`` (a root the book signed) for every job with calls in it that is
    active on-chain with the book's signer; the others are reported, not committed."""
    root = closed.signed.epoch_root
    if closed.signed.domain.verifying_contract.lower() != market.address.lower():
        raise InvalidInput(
            f"the receipt book signs for {closed.signed.domain.verifying_contract}, "
            f"not for the market at {market.address}"
        )
    out: list[EpochCommit] = []
    for job, calls in book.job_calls(root.epoch).items():
        try:
            info = market.job(job)
        except InvalidInput:
            out.append(EpochCommit(job, calls, False, "not a job of this market"))
            continue
        if info.status != JobStatus.ACTIVE:
            out.append(EpochCommit(job, calls, False, f"job is {info.status.name.lower()}"))
            continue
        if info.signer.lower() != book.signer.address.lower():
            out.append(EpochCommit(job, calls, False, "job names another receipt signer"))
            continue
        try:
            market.commit_epoch(
                job, root.epoch, root.size, root.root, calls, closed.signed.signature,
                signer=signer,
            )  # fmt: skip
        except AiledgerError as exc:
            out.append(EpochCommit(job, calls, False, str(exc).splitlines()[0]))
            continue
        out.append(EpochCommit(job, calls, True))
    return out


def epoch_committer(
    market: InferenceMarket,
    book: ReceiptBook,
    *,
    signer: Signer | AccountSource,
    report: Callable[[str], None],
) -> Callable[[ClosedEpoch], None]:
    """An ``on_epoch_closed`` hook for ``book``: commits each closed epoch (see
    :func:`commit_closed_epoch`) and reports what it did, one line per job. It never raises:
    the hook runs inside a call whose receipt is already stored, and a chain fault must not
    turn that call into an error (the epoch's signed root stays in the book; commit it later)."""

    def hook(closed: ClosedEpoch) -> None:
        epoch = closed.signed.epoch_root.epoch
        try:
            done = commit_closed_epoch(market, book, closed, signer=signer)
        except AiledgerError as exc:
            report(f"epoch {epoch}: not committed: {str(exc).splitlines()[0]}")
            return
        for c in done:
            state = "committed" if c.committed else f"not committed ({c.reason})"
            report(f"epoch {epoch}: job 0x{c.job.hex()}: {c.calls} calls {state}")

    return hook


def onchain_job_gate(market: InferenceMarket, book: ReceiptBook) -> Callable[[bytes, str], None]:
    """A ``job_gate`` for the provider's endpoint: serve a call only on a job active on
    ``market`` whose consumer is the caller's named consumer and whose provider signer, model
    digest and price are the book's. The job id then names an escrow that binds consumer,
    provider and model (the caller is still not authenticated: see docs/security.md).
    Accepted jobs are remembered; a refusal is NotFound (404) or ConflictError (409)."""
    accepted: set[tuple[bytes, str]] = set()

    def gate(job: bytes, consumer: str) -> None:
        if (job, consumer) in accepted:
            return
        try:
            info = market.job(job)
        except InvalidInput:
            raise NotFound(
                f"job 0x{job.hex()} is not open on the market {market.address}"
            ) from None
        problems = []
        if info.status != JobStatus.ACTIVE:
            problems.append(f"it is {info.status.name.lower()}")
        if info.consumer.lower() != consumer.lower():
            problems.append(f"its consumer is {info.consumer}")
        if info.signer.lower() != book.signer.address.lower():
            problems.append("it names another provider key")
        if info.terms.model_digest != book.model_digest:
            problems.append("it pays for another model")
        if info.terms.price != book.price:
            problems.append(f"its price is {info.terms.price}, this endpoint charges {book.price}")
        if problems:
            raise ConflictError(f"job 0x{job.hex()} is not served here: " + "; ".join(problems))
        accepted.add((job, consumer))

    return gate
