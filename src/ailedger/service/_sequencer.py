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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ailedger.errors import ConflictError, NotFound
from ailedger.log import (
    AnyNoteKey,
    Checkpoint,
    PreparedEntry,
    SignedNote,
    TransparencyLog,
    vkey,
)
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
        signer: AnyNoteKey,
        settings: SequencerSettings = SequencerSettings(),
    ) -> None:
        self._open_writer = open_writer
        self._signer = signer
        self._settings = settings
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ailedger-log-writer")
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._known: dict[bytes, int] = {}
        self._size = 0
        self._covered = 0
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None
        self._writer: TransparencyLog | None = None
        self.note: SignedNote | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the writer, index the leaf hashes, sign a checkpoint of the current tree if the
        latest one does not cover it, and start the writer task."""
        loop = asyncio.get_running_loop()
        self._known, self._size = await loop.run_in_executor(self._executor, self._open)
        self.note = await loop.run_in_executor(self._executor, self._latest_or_sign)
        self._covered = Checkpoint.parse(self.note.text).size
        self._task = asyncio.create_task(self._run(), name="ailedger-log-writer")

    def _open(self) -> tuple[dict[bytes, int], int]:
        writer = self._writer = self._open_writer()
        size = writer.size()
        known: dict[bytes, int] = {}
        for start in range(0, size, 65536):
            for i, h in enumerate(writer.hashes(0, start, min(65536, size - start))):
                known.setdefault(h, start + i)
        return known, size

    def _latest_or_sign(self) -> SignedNote:
        writer = self._writer
        assert writer is not None
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

    async def stop(self) -> None:
        """Finish what is queued, cover it with a checkpoint, close the writer."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # --- submissions -----------------------------------------------------------------------

    def lookup(self, leaf_hash: bytes) -> int | None:
        """The index of an entry with this leaf hash, if the log holds one."""
        return self._known.get(leaf_hash)

    async def submit(self, entry: PreparedEntry) -> Submitted:
        """Queue a verified entry; return once it is durably in the log (or was already)."""
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
        self.note = note
        self._covered = Checkpoint.parse(note.text).size

    def _sign(self) -> SignedNote:
        assert self._writer is not None
        return self._writer.checkpoint(self._signer)


def _resolve(future: asyncio.Future[Submitted], value: Submitted) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(value)
