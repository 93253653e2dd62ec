"""Group commit: one writer task appends what arrived together in one SQLite transaction.

Request handlers verify an envelope (:meth:`TransparencyLog.prepare`) and hand it to
:meth:`Sequencer.submit`, which waits until the entry's transaction has committed (WAL,
``synchronous=FULL``: fsynced) before it returns the index, so an acknowledged entry survives a
crash. While one transaction commits, new submissions queue up and go together into the next:
the batch grows with the load and the fsync cost is shared.

Checkpoints: after a batch, the writer signs a checkpoint (stored in the log) when
``checkpoint_entries`` entries are not yet covered or ``checkpoint_interval_ms`` has passed
since the first uncovered entry was appended; an idle log is covered within the interval.

Duplicates (by leaf hash) get the existing index. The map from leaf hash to index is built at
start and kept by the writer; entries appended by another process while the service runs are
picked up before the next batch (a duplicate racing such an append is not detected: the log
then holds it twice, which is harmless). The map costs about 100 bytes per entry of memory
(100 MB for a million entries): a lookup by leaf hash in the database is left for later.
The SQLite connection of the writer lives in its own thread; the event loop never blocks on
an fsync.

Witnesses (c2sp.org/tlog-witness): with a :class:`~ailedger.service._cosigning.Cosigning`,
a signed checkpoint is not published (:attr:`Sequencer.note`, what ``/checkpoint`` serves)
until at least ``threshold`` configured witnesses cosigned it. A publisher task, apart from
the writer, submits the latest signed checkpoint to the witnesses, stores the valid
cosignatures in the log (as ``log cosign`` does) and publishes the stored, cosigned note; with
too few it keeps serving the previous published checkpoint, logs a warning and tries again
after ``checkpoint_interval_ms`` (or at the next signed checkpoint). Appends and their
acknowledgements never wait for witnesses. At start, the published checkpoint is the latest
stored one that carries enough cosignatures (none: ``/checkpoint`` is 503 until one does).

Read-only (``signer=None``, ``ailedger serve --read-only``): nothing is written or signed; the
published checkpoint is the latest stored one (with witnesses: the latest with enough
cosignatures) and :meth:`Sequencer.submit` refuses (403).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ailedger.errors import ConflictError, NotFound
from ailedger.log import (
    AnyNoteKey,
    Checkpoint,
    NoteSignature,
    PreparedEntry,
    SignedNote,
    TransparencyLog,
    vkey,
)
from ailedger.service._cosigning import Cosigning
from ailedger.service.problems import Problem

__all__ = ["Sequencer", "SequencerSettings", "Submitted"]

_log = logging.getLogger("ailedger.service")


@dataclass(frozen=True)
class SequencerSettings:
    """Batch and checkpoint policy (see the module docstring)."""

    max_batch: int = 4096
    checkpoint_entries: int = 1024
    checkpoint_interval_ms: int = 500
    #: Submissions waiting for the writer at most; beyond, 503 with Retry-After (backpressure:
    #: each waiting request holds its body).
    max_pending: int = 8192


@dataclass(frozen=True)
class Submitted:
    """The outcome of one submission: its index and whether the log already held it."""

    index: int
    leaf_hash: bytes
    duplicate: bool


_Item = tuple[PreparedEntry, "asyncio.Future[Submitted]"]


class Sequencer:
    """The single writer of a log inside the service (create, :meth:`start`, :meth:`stop`)."""

    def __init__(
        self,
        open_writer: Callable[[], TransparencyLog],
        signer: AnyNoteKey | None,
        settings: SequencerSettings = SequencerSettings(),
        cosigning: Cosigning | None = None,
    ) -> None:
        self._open_writer = open_writer
        self._signer = signer
        self._settings = settings
        self._cosigning = cosigning
        self._signed: SignedNote | None = None
        self._wake = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._stalled = -1
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ailedger-log-writer")
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._known: dict[bytes, int] = {}
        self._size = 0
        self._covered = 0
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None
        self._writer: TransparencyLog | None = None
        #: The published checkpoint (what ``/checkpoint`` serves); ``None`` until one is.
        self.note: SignedNote | None = None
        #: Set whenever :attr:`note` changes (the anchoring schedule waits on it).
        self.published = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the writer, index the leaf hashes, sign a checkpoint of the current tree if the
        latest one does not cover it, and start the writer task."""
        loop = asyncio.get_running_loop()
        self._known, self._size = await loop.run_in_executor(self._executor, self._open)
        if self._signer is None:  # read-only: publish what is stored, start no writer
            self.note = await loop.run_in_executor(self._executor, self._stored)
            self.published.set()
            return
        signed = await loop.run_in_executor(self._executor, self._latest_or_sign)
        self._covered = Checkpoint.parse(signed.text).size
        if self._cosigning is None:
            self.note = signed
        else:
            self.note = await loop.run_in_executor(self._executor, self._latest_cosigned)
        self.published.set()
        if self._cosigning is not None:
            self._signed = signed
            self._publisher = asyncio.create_task(self._publish(), name="ailedger-log-publisher")
        self._task = asyncio.create_task(self._run(), name="ailedger-log-writer")

    def _open(self) -> tuple[dict[bytes, int], int]:
        writer = self._writer = self._open_writer()
        size = writer.size()
        known: dict[bytes, int] = {}
        for start in range(0, size, 65536):
            for i, h in enumerate(writer.hashes(0, start, min(65536, size - start))):
                known.setdefault(h, start + i)
        return known, size

    def _stored(self) -> SignedNote | None:
        writer = self._writer
        assert writer is not None
        if self._cosigning is not None:
            return self._latest_cosigned()
        try:
            return writer.latest_checkpoint()
        except NotFound:
            raise NotFound(
                f"log {writer.origin} has no signed checkpoint: nothing to serve read-only",
                hint="sign one with `ailedger log checkpoint`, or serve it with its log key",
            ) from None

    def _latest_or_sign(self) -> SignedNote:
        writer = self._writer
        assert writer is not None
        assert self._signer is not None
        known = writer.log_key()
        if known is not None and vkey(known) != vkey(self._signer):
            raise ConflictError(
                f"log {writer.origin} is signed by {vkey(known)}, not by {vkey(self._signer)}",
                hint="serve the log with its own key (--key)",
            )
        try:
            note = writer.latest_checkpoint()
        except NotFound:
            return writer.checkpoint(self._signer)
        if Checkpoint.parse(note.text).size == writer.size():
            return note
        return writer.checkpoint(self._signer)

    def _latest_cosigned(self) -> SignedNote | None:
        assert self._writer is not None
        assert self._cosigning is not None
        for note in reversed(self._writer.checkpoints()):
            if self._cosigning.count(note) >= self._cosigning.threshold:
                return note
        return None

    async def stop(self) -> None:
        """Finish what is queued, cover it with a checkpoint, close the writer (a checkpoint
        still waiting for witnesses is published at the next start)."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        if self._cosigning is not None:
            self._cosigning.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # --- submissions -----------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether this service takes no submissions (it has no key to sign with)."""
        return self._signer is None

    def lookup(self, leaf_hash: bytes) -> int | None:
        """The index of an entry with this leaf hash, if the log holds one."""
        return self._known.get(leaf_hash)

    async def submit(self, entry: PreparedEntry) -> Submitted:
        """Queue a verified entry; return once it is durably in the log (or was already)."""
        if self._signer is None:
            raise Problem(
                403, "read-only", "Read-only log", "this service serves the log read-only"
            )
        if self._task is None or self._task.done():
            raise RuntimeError("the log writer is not running")
        found = self._known.get(entry.leaf_hash)
        if found is not None:
            return Submitted(found, entry.leaf_hash, True)
        if self._queue.qsize() >= self._settings.max_pending:
            raise Problem(
                503,
                "busy",
                "The log is busy",
                f"{self._queue.qsize()} submissions are waiting for the writer; retry shortly",
                headers={"Retry-After": "1"},
            )
        future: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, future))
        return await future

    # --- the writer task -------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            timeout = None
            if self._size > self._covered:
                timeout = max(0.0, self._due - loop.time())
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                await self._checkpoint()
                continue
            if first is None:
                break
            batch = [first]
            while len(batch) < self._settings.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)
            uncovered = self._size - self._covered
            if uncovered >= self._settings.checkpoint_entries or (
                uncovered and loop.time() >= self._due
            ):
                await self._checkpoint()
        if self._size > self._covered:
            await self._checkpoint()

    async def _commit(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        fresh: list[PreparedEntry] = []
        waiting: dict[bytes, list[asyncio.Future[Submitted]]] = {}
        for entry, future in batch:
            found = self._known.get(entry.leaf_hash)
            if found is not None:
                _resolve(future, Submitted(found, entry.leaf_hash, True))
            elif entry.leaf_hash in waiting:
                waiting[entry.leaf_hash].append(future)
            else:
                waiting[entry.leaf_hash] = [future]
                fresh.append(entry)
        if not fresh:
            return
        try:
            start, external = await loop.run_in_executor(
                self._executor, self._append, fresh, self._size
            )
        except Exception as exc:  # every waiter gets the failure
            _log.error("append of %d entries failed: %s", len(fresh), exc)
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for i, h in enumerate(external):
            self._known.setdefault(h, self._size + i)
        if self._size == self._covered:
            self._due = loop.time() + self._settings.checkpoint_interval_ms / 1000
        for i, entry in enumerate(fresh):
            self._known.setdefault(entry.leaf_hash, start + i)
            first, *dups = waiting[entry.leaf_hash]
            _resolve(first, Submitted(start + i, entry.leaf_hash, False))
            for dup in dups:
                _resolve(dup, Submitted(start + i, entry.leaf_hash, True))
        self._size = start + len(fresh)

    def _append(self, entries: list[PreparedEntry], expected: int) -> tuple[int, list[bytes]]:
        """In the writer thread: pick up foreign appends, then append ``entries``."""
        assert self._writer is not None
        current = self._writer.size()
        external = (
            self._writer.hashes(0, expected, current - expected) if current > expected else []
        )
        indexes = self._writer.append_prepared(entries)
        return indexes[0], external

    async def _checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            note = await loop.run_in_executor(self._executor, self._sign)
        except Exception as exc:  # retried at the next batch or interval
            _log.error("signing a checkpoint failed: %s", exc)
            self._due = loop.time() + self._settings.checkpoint_interval_ms / 1000
            return
        self._covered = Checkpoint.parse(note.text).size
        if self._cosigning is None:
            self.note = note
            self.published.set()
        else:
            self._signed = note
            self._wake.set()

    def _sign(self) -> SignedNote:
        assert self._writer is not None
        assert self._signer is not None
        return self._writer.checkpoint(self._signer)

    # --- the publisher task (with witnesses) -----------------------------------------------

    async def _publish(self) -> None:
        cosigning = self._cosigning
        assert cosigning is not None
        done: SignedNote | None = None
        while True:
            self._wake.clear()
            note, delay = self._signed, None
            if note is not None and note is not done:
                try:
                    published = await self._cosign(cosigning, note)
                except Exception as exc:  # a bug: log it, keep the last published, retry
                    _log.error("publishing size %s failed: %s", note.text.split("\n")[1], exc)
                    published = None
                if published is not None:
                    self.note, done = published, note
                    self.published.set()
                else:
                    delay = self._settings.checkpoint_interval_ms / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _cosign(self, cosigning: Cosigning, note: SignedNote) -> SignedNote | None:
        loop = asyncio.get_running_loop()

        async def proof(old: int, new: int) -> tuple[bytes, ...]:
            return await loop.run_in_executor(self._executor, self._proof, old, new)

        valid = await cosigning.gather(note, proof)
        size = Checkpoint.parse(note.text).size
        if len(valid) < cosigning.threshold:
            if self._stalled != size:  # once per checkpoint, not at every retry
                self._stalled = size
                _log.warning(
                    "checkpoint of size %d has %d of %d witness cosignatures needed: "
                    "not published (retrying)",
                    size,
                    len(valid),
                    cosigning.threshold,
                )
            return None
        try:
            return await loop.run_in_executor(self._executor, self._store_cosignatures, note, valid)
        except Exception as exc:  # retried at the next interval
            _log.error("storing the cosignatures of size %d failed: %s", size, exc)
            return None

    def _proof(self, old: int, new: int) -> tuple[bytes, ...]:
        assert self._writer is not None
        return self._writer.consistency_proof(old, new).hashes

    def _store_cosignatures(
        self, note: SignedNote, valid: list[tuple[NoteSignature, AnyNoteKey]]
    ) -> SignedNote:
        assert self._writer is not None
        stored = note
        for sig, key in valid:
            stored = self._writer.add_cosignature(SignedNote(note.text, (sig,)), key)
        return stored


def _resolve(future: asyncio.Future[Submitted], value: Submitted) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(value)
