"""The log service anchors its published checkpoint on-chain on a schedule.

``ailedger serve --anchor-every N --anchor-interval T``: :class:`AnchorSchedule` (an asyncio
task beside the sequencer) anchors the *published* checkpoint (what ``/checkpoint`` serves,
so with witnesses one that k of them cosigned) once it is N entries past the last anchor, or
T seconds after the last anchor if the log grew at all, whichever comes first. It never blocks
submissions or publication: the work runs in a thread of its own.

:class:`AnchorJob` is one attempt, synchronous:

1. open the chain for this attempt only (the embedded chain's directory lock is held just
   while anchoring, so other processes' reads of the workspace's chain wait at most one
   attempt) and the workspace's LogAnchors deployment on it;
2. on first use register the log as ``ailedger anchor`` does (the log key's consent, the
   operator's ``--anchor-key`` account as admin and payer, the witnesses and threshold);
3. ask each configured secp256k1 witness for its EIP-712 cosignature of that checkpoint
   (``POST /v1/anchor-cosign``, :mod:`ailedger.service._anchor_cosign`); with fewer than the
   registered threshold, send nothing;
4. send ``anchorWithProof`` with the consistency proof from the last anchor and record the
   anchor in the workspace's anchor book, so receipts carry it.

A failure (node down, a revert, too few cosignatures) is logged once per distinct error,
with the revert's hint, and retried at the next tick: the next publication or ``retry_s``
later, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ailedger.chain.anchoring import AnchorBook, anchor_checkpoint
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.deployments import DeploymentBook
from ailedger.chain.eip712 import log_id
from ailedger.errors import AiledgerError, InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import Checkpoint, SignedNote, TransparencyLog
from ailedger.service._anchor_cosign import AnchorCosignFailed, request_anchor_cosignature

if TYPE_CHECKING:
    from ailedger.chain.client import Chain

__all__ = ["AnchorJob", "AnchorPending", "AnchorSchedule", "AnchorWitness", "Anchorer"]

_log = logging.getLogger("ailedger.service")

#: Bound on one witness round trip for an anchor cosignature.
DEFAULT_TIMEOUT_S = 10.0


class Anchorer(Protocol):
    """What the schedule drives (:class:`AnchorJob`; tests drive fakes); methods block."""

    def anchored_size(self) -> int:
        """The size of the log's latest anchor on the chain (0: none)."""
        ...

    def anchor(self, note: SignedNote) -> int:
        """Anchor ``note`` unless the chain holds an anchor at least as large; the anchored
        size afterwards. Raises on failure."""
        ...


class AnchorPending(Exception):
    """Too few witnesses gave an EIP-712 cosignature: nothing was sent."""


@dataclass(frozen=True)
class AnchorWitness:
    """A witness that cosigns anchors: its URL and its account (the secp256k1 address)."""

    url: str
    address: str


class AnchorJob:
    """One anchoring attempt at a time (see the module docstring); its methods block."""

    def __init__(
        self,
        *,
        origin: str,
        open_chain: Callable[[], Chain],
        open_log: Callable[[], TransparencyLog],
        deployments: DeploymentBook,
        book: AnchorBook,
        log_key: Secp256k1Signer,
        sender: Secp256k1Signer,
        witnesses: Sequence[AnchorWitness],
        register_witnesses: Sequence[str],
        register_threshold: int,
        on_open: Callable[[Chain], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not 1 <= register_threshold <= len(register_witnesses):
            raise InvalidInput(
                f"an anchored log needs a threshold of 1 to {len(register_witnesses)} "
                f"witnesses (k = {register_threshold}): anchors without witness cosignatures "
                "are refused on-chain",
                hint="give secp256k1 witnesses (--witness URL=VKEY) or [anchor] witnesses",
            )
        self.origin = origin
        self._open_chain = open_chain
        self._open_log = open_log
        self._deployments = deployments
        self._book = book
        self._log_key = log_key
        self._sender = sender
        self._witnesses = list(witnesses)
        self._register_witnesses = list(register_witnesses)
        self._register_threshold = register_threshold
        self._on_open = on_open
        self._timeout = timeout
        self._lid = log_id(origin, log_key.address)

    def _anchors(self, chain: Chain) -> LogAnchors:
        if self._on_open is not None:
            self._on_open(chain)
        dep = self._deployments.require(chain.chain_id)
        return LogAnchors(chain, dep.open(chain, "LogAnchors"))

    def anchored_size(self) -> int:
        """The size of the log's latest anchor on the chain (0: none)."""
        with self._open_chain() as chain:
            latest = self._anchors(chain).latest(self._lid)
        return 0 if latest is None else latest.size

    def anchor(self, note: SignedNote) -> int:
        """Anchor ``note`` (a stored checkpoint of the log) unless the chain already holds an
        anchor at least as large; the anchored size afterwards. Raises on failure."""
        cp = Checkpoint.parse(note.text)
        with self._open_chain() as chain:
            anchors = self._anchors(chain)
            info = anchors.log_info(self._lid)
            latest = anchors.latest(self._lid) if info is not None else None
            if latest is not None and latest.size >= cp.size:
                return latest.size
            threshold = self._register_threshold if info is None else info.threshold
            if info is None:
                wanted = {a.lower() for a in self._register_witnesses}
                asked = [w for w in self._witnesses if w.address.lower() in wanted]
            else:  # only the current witness set counts on-chain (it may have changed)
                asked = [w for w in self._witnesses if anchors.is_witness(self._lid, w.address)]
            cosignatures, failures = [], []
            for w in asked:
                try:
                    cosignatures.append(
                        request_anchor_cosignature(
                            w.url,
                            w.address,
                            note,
                            self._log_key.address,
                            chain.chain_id,
                            anchors.address,
                            self._timeout,
                        )
                    )
                except (AnchorCosignFailed, AiledgerError) as exc:
                    failures.append(str(exc))
            if len(cosignatures) < threshold:
                raise AnchorPending(
                    f"{len(cosignatures)} of {threshold} witness anchor cosignatures needed "
                    f"for size {cp.size}: not anchored (retrying)"
                    + "".join(f"; {f}" for f in failures)
                )
            with self._open_log() as log:
                result = anchor_checkpoint(
                    log,
                    anchors,
                    self._log_key,
                    sender=self._sender,
                    cosignatures=cosignatures,
                    witnesses=self._register_witnesses,
                    threshold=self._register_threshold,
                    with_consistency=True,
                    book=self._book,
                    checkpoint=note,
                )
        _log.info("anchored size %d as anchor #%d", cp.size, result.record.index)
        return result.record.size


class AnchorSchedule:
    """The anchoring task: :meth:`start`, then :meth:`stop` (which lets an attempt finish)."""

    def __init__(
        self,
        job: Anchorer,
        published: Callable[[], SignedNote | None],
        changed: asyncio.Event,
        *,
        every: int | None = None,
        interval: float | None = None,
        retry_s: float = 5.0,
    ) -> None:
        if every is None and interval is None:
            raise InvalidInput("anchoring needs --anchor-every N or --anchor-interval SECONDS")
        self._job = job
        self._published = published
        self._changed = changed
        self._every = every
        self._interval = interval
        self._retry_s = retry_s if interval is None else min(retry_s, interval)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ailedger-anchor")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_error: str | None = None
        #: The size of the latest anchor on the chain, once known.
        self.anchored: int | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ailedger-anchor")

    async def stop(self) -> None:
        self._stopping = True
        self._changed.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._executor.shutdown()

    def _due(self, size: int, anchored: int, since: float) -> bool:
        if size <= anchored:
            return False
        if self._every is not None and size - anchored >= self._every:
            return True
        return self._interval is not None and since >= self._interval

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()  # of the last anchor (the start counts as one)
        retry_at, failed_size = 0.0, -1
        while not self._stopping:
            self._changed.clear()
            now = loop.time()
            note = self._published()
            size = -1 if note is None else Checkpoint.parse(note.text).size
            # a failed attempt is retried after retry_s, or at once for a newer checkpoint
            if note is not None and (now >= retry_at or size != failed_size):
                ok = True
                if self.anchored is None:
                    ok = await self._attempt(self._job.anchored_size)
                elif self._due(size, self.anchored, now - last):
                    ok = await self._attempt(functools.partial(self._job.anchor, note))
                    if ok:
                        last = loop.time()
                if not ok:
                    retry_at, failed_size = loop.time() + self._retry_s, size
                elif self.anchored is not None and self._due(
                    size, self.anchored, loop.time() - last
                ):
                    continue  # e.g. the anchored size just became known: anchor now
            await self._sleep(last, retry_at, size)

    async def _sleep(self, last: float, retry_at: float, size: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = []
        if retry_at > now:
            deadlines.append(retry_at - now)
        elif self.anchored is None:
            deadlines.append(self._retry_s)
        if self._interval is not None and self.anchored is not None and size > self.anchored:
            deadlines.append(max(0.0, last + self._interval - now))
        timeout = min(deadlines) if deadlines else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _attempt(self, work: Callable[[], int]) -> bool:
        try:
            self.anchored = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except Exception as exc:  # node down, revert, too few cosignatures: retried
            message = str(exc)
            hint = getattr(exc, "hint", None)
            if hint:
                message += f" (hint: {hint})"
            if message != self._last_error:  # once per distinct failure, not at every retry
                _log.warning("anchoring failed: %s", message)
            self._last_error = message
            return False
        self._last_error = None
        return True
