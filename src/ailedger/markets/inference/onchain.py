"""The receipt book meets the InferenceMarket contract: commit each closed epoch's signed root
for every job with calls in it, and build the dispute arguments from a kept receipt.

An epoch of the book holds receipts of several jobs; the contract keeps one record per job and
epoch (the root, and the job's calls in it, which continue the job's earlier epochs). So
:func:`commit_closed_epoch` sends one ``commitEpoch`` per job active on-chain, all with the
same signed root; a job the chain does not know (or not active) is skipped and reported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeAlias

from ailedger.chain._types import AccountSource, Signer
from ailedger.chain.inference_market import EpochStatus, InferenceMarket, JobStatus
from ailedger.errors import AiledgerError, ConflictError, InvalidInput, NotFound
from ailedger.markets.inference._store import ClosedEpoch, ReceiptBook, StoredEpoch, stored_epochs
from ailedger.markets.inference.jobs import JobDirectory, JobEntry
from ailedger.markets.inference.receipt import SignedReceipt
from ailedger.merkle import InclusionProof

__all__ = [
    "EpochCommit",
    "MarketAccess",
    "commit_closed_epoch",
    "commit_stored_epochs",
    "epoch_committer",
    "omission_args",
    "onchain_jobs",
    "receipt_struct",
    "wrong_model_args",
]

#: How a long-running provider reaches the market: a context manager per use, so that an
#: embedded chain (one process at a time) is held only for the moment of a look-up or a
#: commitment, and other processes (the consumer's `market job` commands) can use it between.
MarketAccess: TypeAlias = Callable[[], AbstractContextManager[InferenceMarket]]


def _access(market: InferenceMarket | MarketAccess) -> MarketAccess:
    if isinstance(market, InferenceMarket):
        return lambda: contextlib.nullcontext(market)
    return market


@dataclass(frozen=True)
class EpochCommit:
    """What :func:`commit_closed_epoch` did for one job of the epoch."""

    job: bytes
    calls: int
    committed: bool
    reason: str = ""
    #: The commitment was tried and failed (a revert, the chain down): try again later.
    failed: bool = False


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


def omission_args(
    signed: SignedReceipt, held_leaf: bytes, proof: InclusionProof | None
) -> tuple[bytes, tuple[Any, ...], bytes, bytes, list[bytes]]:
    """``(jobId, receipt, signature, heldLeaf, proof)`` for ``proveOmission``: the leaf the
    committed root holds at the receipt's position and its proof (none when the position lies
    beyond the committed size or the epoch was skipped)."""
    hashes = [] if proof is None else list(proof.hashes)
    return signed.receipt.job, receipt_struct(signed), signed.signature, held_leaf, hashes


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
            out.append(EpochCommit(job, calls, False, str(exc).splitlines()[0], failed=True))
            continue
        out.append(EpochCommit(job, calls, True))
    return out


def commit_stored_epochs(
    market: InferenceMarket,
    provider: str,
    epochs: list[StoredEpoch],
    *,
    signer: Signer | AccountSource,
) -> list[tuple[int, EpochCommit]]:
    """Commit every epoch of ``epochs`` (a book's closed epochs, oldest first: see
    :func:`~ailedger.markets.inference._store.stored_epochs`) for each of its jobs that the
    chain does not hold yet: idempotent (an epoch already on-chain is reported ``already
    committed``, not sent again); the same checks as :func:`commit_closed_epoch`."""
    out: list[tuple[int, EpochCommit]] = []
    for e in epochs:
        for job, calls in e.jobs.items():
            try:
                info = market.job(job)
            except InvalidInput:
                out.append((e.epoch, EpochCommit(job, calls, False, "not a job of this market")))
                continue
            if info.signer.lower() != provider.lower():
                reason = "job names another receipt signer"
                out.append((e.epoch, EpochCommit(job, calls, False, reason)))
                continue
            if market.epoch(job, e.epoch).status != EpochStatus.NONE:
                out.append((e.epoch, EpochCommit(job, calls, True, "already committed")))
                continue
            if info.status != JobStatus.ACTIVE:
                reason = f"job is {info.status.name.lower()}"
                out.append((e.epoch, EpochCommit(job, calls, False, reason)))
                continue
            try:
                market.commit_epoch(job, e.epoch, e.size, e.root, calls, e.signature, signer=signer)
            except AiledgerError as exc:
                reason = str(exc).splitlines()[0]
                out.append((e.epoch, EpochCommit(job, calls, False, reason, failed=True)))
                continue
            out.append((e.epoch, EpochCommit(job, calls, True)))
    return out


def epoch_committer(
    market: InferenceMarket | MarketAccess,
    book: ReceiptBook,
    *,
    signer: Signer | AccountSource,
    report: Callable[[str], None],
) -> Callable[[ClosedEpoch], None]:
    """An ``on_epoch_closed`` hook for ``book``: commits each closed epoch (see
    :func:`commit_closed_epoch`) and reports what it did, one line per job. It never raises:
    the hook runs inside a call whose receipt is already stored, and a chain fault must not
    turn that call into an error (the epoch's signed root stays in the book; commit it later).

    Epochs are committed in order: the market refuses an epoch below one already committed
    (``EpochNotIncreasing``), and an epoch left behind could then never be paid, while its
    receipts would read as omitted (``proveOmission``). So before a closed epoch, the hook
    commits every earlier epoch of the book the chain does not hold yet (as ``ailedger market
    commit`` does); if one of them still cannot be committed, the new epoch is held back too
    (reported; ``ailedger market commit`` sends them all once the chain takes them)."""
    access = _access(market)
    caught_up = -1  # every epoch of the book up to this one is on-chain (or not committable)

    def hook(closed: ClosedEpoch) -> None:
        nonlocal caught_up
        epoch = closed.signed.epoch_root.epoch
        earlier: list[tuple[int, EpochCommit]] = []
        try:
            with access() as opened:
                if epoch > caught_up + 1:
                    pending = [
                        e for e in stored_epochs(book.path)[1] if caught_up < e.epoch < epoch
                    ]
                    earlier = commit_stored_epochs(
                        opened, book.signer.address, pending, signer=signer
                    )
                behind = sorted({e for e, c in earlier if c.failed})
                if not behind:
                    done = commit_closed_epoch(opened, book, closed, signer=signer)
        except AiledgerError as exc:
            report(f"epoch {epoch}: not committed: {str(exc).splitlines()[0]}")
            return
        for e, c in earlier:
            if c.reason != "already committed":
                state = "committed" if c.committed else f"not committed ({c.reason})"
                report(f"epoch {e}: job 0x{c.job.hex()}: {c.calls} calls {state} (catching up)")
        if behind:
            report(
                f"epoch {epoch}: held back: earlier epoch(s) {', '.join(map(str, behind))} are "
                "not committed yet (the market takes epochs in order; run `ailedger market commit`)"
            )
            return
        for c in done:
            state = "committed" if c.committed else f"not committed ({c.reason})"
            report(f"epoch {epoch}: job 0x{c.job.hex()}: {c.calls} calls {state}")
        if not any(c.failed for c in done):
            caught_up = epoch

    return hook


def onchain_jobs(
    market: InferenceMarket | MarketAccess,
    book: ReceiptBook,
    *,
    clock: Callable[[], float] = time.time,
) -> JobDirectory:
    """A :data:`~ailedger.markets.inference.provider.JobDirectory` for the provider's
    endpoint: serve a job only while it is active on the market with the book's signer as its
    receipt signer, the book's model digest and price; its consumer (who must sign every
    call), maximum calls and deadline come from the chain. A job found active is remembered
    (the chain is read once per job); a refusal is NotFound (404) or ConflictError (409)."""
    access = _access(market)
    known: dict[bytes, JobEntry] = {}

    def lookup(job: bytes) -> JobEntry:
        entry = known.get(job)
        if entry is not None:
            return entry
        with access() as opened:
            try:
                info = opened.job(job)
            except InvalidInput:
                raise NotFound(
                    f"job 0x{job.hex()} is not open on the market {opened.address}"
                ) from None
        problems = []
        if info.status != JobStatus.ACTIVE:
            problems.append(f"it is {info.status.name.lower()}")
        if info.signer.lower() != book.signer.address.lower():
            problems.append("it names another provider key")
        if info.terms.model_digest != book.model_digest:
            problems.append("it pays for another model")
        if info.terms.price != book.price:
            problems.append(f"its price is {info.terms.price}, this endpoint charges {book.price}")
        if info.terms.deadline < clock():
            problems.append(f"its deadline {info.terms.deadline} has passed")
        if problems:
            raise ConflictError(f"job 0x{job.hex()} is not served here: " + "; ".join(problems))
        entry = JobEntry(info.consumer, info.terms.max_calls, info.terms.deadline)
        known[job] = entry
        return entry

    return lookup
