"""File, shard and tensor-range hashing: large reads, one pass per job, many jobs in a pool.

``hashlib`` and ``blake3`` release the GIL on large buffers, so files and shards of one file
hash in parallel on threads. A job reads a byte range of one file once, with ``preadv`` into a
reused buffer (measured cheaper than ``mmap`` here: no page fault per 4 KiB): 1 MiB reads while
at most four jobs run at once, so that the second hash of a chunk finds it in the core's cache;
8 MiB reads while more do, so that many threads hand the GIL over eight times less often.

A job that digests its range *and* the safetensors tensors inside it (a ``.safetensors`` file:
the file's SHA-256 for model-signing, the tensors' BLAKE3 for the leaves) feeds every chunk to
both. While every core is busy with jobs, both hashes run on the job's thread, one after the
other on the cached chunk: the least CPU (BLAKE3 adds about a fifth to SHA-256). While a core
is spare (a single large file, the last files of a model, a model of fewer files than cores),
the tensor hashers run on a helper thread: the job hands it each chunk through a ring of four
buffers and reads on, waiting only if the helper falls a whole ring behind, so the tensor
digests cost no wall time. Nothing runs in lock-step across jobs, and no stage is single-
threaded over the data: the pool runs the largest jobs first, every job on its own thread.

A whole file hashed with BLAKE3 and no tensors is hashed by BLAKE3 itself from a mapping, with
its own threads (as model-signing does).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Literal, Protocol

import blake3

from ailedger.errors import InvalidInput, NotFound

__all__ = [
    "ALGORITHMS",
    "CHUNK_SIZE",
    "Algorithm",
    "Cancelled",
    "Hasher",
    "Job",
    "JobResult",
    "hash_bytes",
    "new_hasher",
    "run_job",
    "run_jobs",
]

Algorithm = Literal["sha256", "blake3"]
ALGORITHMS: tuple[Algorithm, ...] = ("sha256", "blake3")
CHUNK_SIZE = 1 << 20
_BLAKE3_THREADS_FROM = 16 << 20  # multithread BLAKE3 only where it pays off
_SPLIT_FROM = 4 * CHUNK_SIZE  # smaller ranges hash their tensors on the job's own thread
_RING = 4  # buffers between a job's thread and its tensor helper
_FEW_JOBS = 4  # up to this many jobs running at once read CHUNK_SIZE, more read _WIDE_CHUNK
_WIDE_CHUNK = 8 * CHUNK_SIZE
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
#: Jobs running in this process; a job hands its tensor hashing to a helper thread only while
#: there are fewer than cores.
_busy_jobs = 0
_busy_lock = threading.Lock()

Progress = Callable[[int], None]


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def digest(self) -> bytes: ...


def new_hasher(algorithm: Algorithm, size_hint: int = 0) -> Hasher:
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake3":
        threads = blake3.blake3.AUTO if size_hint >= _BLAKE3_THREADS_FROM else 1
        hasher: Hasher = blake3.blake3(max_threads=threads)
        return hasher
    raise InvalidInput(f"unknown hash algorithm {algorithm!r} (expected sha256 or blake3)")


def hash_bytes(algorithm: Algorithm, data: bytes) -> bytes:
    h = new_hasher(algorithm)
    h.update(data)
    return h.digest()


@dataclass(frozen=True)
class Job:
    """Read ``[start, end)`` of ``path`` once. With ``whole``, digest the range; also digest
    each of the ``tensors`` ranges (absolute, sorted, contiguous, inside the range)."""

    path: str
    name: str  # the path shown in errors (relative to the model)
    start: int
    end: int
    whole: bool = True
    tensors: tuple[tuple[int, int], ...] = ()
    expect: tuple[int, int, int] | None = None  # (size, mtime_ns, ctime_ns) seen when planned
    tensor_algorithm: Algorithm | None = None  # the tensors' digest (None: ``algorithm``)


@dataclass
class JobResult:
    digest: bytes | None
    tensor_digests: list[bytes] = field(default_factory=list)


_local = threading.local()


def _os_error(exc: OSError, name: str) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{name} disappeared while being fingerprinted")
    reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or exc
    return InvalidInput(f"cannot read {name}: {reason}", hint="check the file's permissions")


def _changed(name: str) -> InvalidInput:
    return InvalidInput(f"{name} changed while it was being read", hint="run the command again")


class Cancelled(Exception):
    """Raised inside a job when its run was cancelled (another job failed, or Ctrl-C)."""


def run_job(
    job: Job,
    algorithm: Algorithm,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> JobResult:
    """Run one job in the calling thread; ``cancel`` stops it between chunks."""
    global _busy_jobs
    with _busy_lock:
        _busy_jobs += 1
    try:
        return _run_job(job, algorithm, progress, cancel)
    finally:
        with _busy_lock:
            _busy_jobs -= 1


def _run_job(
    job: Job,
    algorithm: Algorithm,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> JobResult:
    try:
        with open(job.path, "rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            seen = (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
            if job.expect is not None and seen != job.expect:
                raise _changed(job.name)
            whole_file = job.start == 0 and job.end == before.st_size
            if job.whole and not job.tensors and algorithm == "blake3" and whole_file:
                b3 = new_hasher("blake3", job.end)
                if job.end:
                    b3.update_mmap(job.path)  # type: ignore[attr-defined]
                result = JobResult(b3.digest())
                if progress:
                    progress(job.end)
            else:
                result = _read_range(f, job, algorithm, progress, cancel)
            after = os.fstat(f.fileno())
    except OSError as exc:
        raise _os_error(exc, job.name) from exc
    if seen != (after.st_size, after.st_mtime_ns, after.st_ctime_ns):
        raise _changed(job.name)
    return result


class _TensorFeed:
    """Feeds consecutive chunks of a range to the hashers of the tensors they overlap."""

    def __init__(self, tensors: tuple[tuple[int, int], ...], hashers: list[Hasher]) -> None:
        self.tensors = tensors
        self.hashers = hashers
        self.t = 0

    def update(self, chunk: memoryview, pos: int) -> None:
        tensors, t = self.tensors, self.t
        chunk_end = pos + len(chunk)
        while t < len(tensors) and tensors[t][0] < chunk_end:
            b, e = tensors[t]
            lo, hi = max(b, pos), min(e, chunk_end)
            if hi > lo:
                self.hashers[t].update(chunk[lo - pos : hi - pos])
            if e > chunk_end:
                break
            t += 1
        self.t = t


def _buffer(size: int) -> memoryview:
    """The calling thread's reused read buffer of ``size`` bytes (no allocation per chunk)."""
    bufs: dict[int, memoryview] = _local.__dict__.setdefault("bufs", {})
    buf = bufs.get(size)
    if buf is None:
        buf = bufs[size] = memoryview(bytearray(size))
    return buf


def _chunk_size() -> int:
    """1 MiB reads while few jobs run at once (both hashes find the chunk in the core's cache),
    wider reads while many do (a thread takes the GIL back after every read and every hash
    update; with many threads, fewer hand-overs of the GIL beat the cache)."""
    return CHUNK_SIZE if min(_busy_jobs, _CORES) <= _FEW_JOBS else _WIDE_CHUNK


class _Helper:
    """A thread that feeds chunks to the tensor hashers while the job's thread reads and
    digests the next ones: a ring of ``_RING`` buffers, handed over through two queues (the
    job waits only when the helper is a whole ring behind)."""

    def __init__(self, feed: _TensorFeed) -> None:
        self._feed = feed
        self._todo: SimpleQueue[tuple[memoryview, memoryview, int] | None] = SimpleQueue()
        self._free: SimpleQueue[memoryview] = SimpleQueue()
        for _ in range(_RING):
            self._free.put(memoryview(bytearray(CHUNK_SIZE)))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ailedger-tensors", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            buf, chunk, pos = item
            if self._error is None:
                try:
                    self._feed.update(chunk, pos)
                except BaseException as exc:  # raised on the job's thread by _check
                    self._error = exc
            self._free.put(buf)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def buffer(self) -> memoryview:
        """A free buffer (waits while the helper still uses every one)."""
        buf = self._free.get()
        self._check()
        return buf

    def submit(self, buf: memoryview, chunk: memoryview, pos: int) -> None:
        self._todo.put((buf, chunk, pos))

    def drain(self) -> None:
        """Wait until the helper has fed every chunk handed to it."""
        bufs = [self._free.get() for _ in range(_RING)]
        for buf in bufs:
            self._free.put(buf)
        self._check()

    def stop(self) -> None:
        """Let the helper finish what it was given, then end its thread."""
        self._todo.put(None)
        self._thread.join()


def _read_range(
    f: object,
    job: Job,
    algorithm: Algorithm,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> JobResult:
    """Read ``[start, end)`` once, feeding each chunk to the range hasher and the tensor
    hashers: on this thread while every core is busy with jobs (the chunk is still in cache for
    the second hash: the least CPU), on a helper thread while a core is spare (no wall time)."""
    fd = f.fileno()  # type: ignore[attr-defined]
    whole = new_hasher(algorithm) if job.whole else None
    tensor_algorithm = job.tensor_algorithm or algorithm
    hashers = [new_hasher(tensor_algorithm) for _ in job.tensors]
    feed = _TensorFeed(job.tensors, hashers)
    may_split = whole is not None and bool(job.tensors) and job.end - job.start >= _SPLIT_FROM
    has_tensors = bool(job.tensors)
    helper: _Helper | None = None
    try:
        pos, end = job.start, job.end
        while pos < end:
            if cancel is not None and cancel.is_set():
                raise Cancelled(job.name)
            split = may_split and _busy_jobs < _CORES
            if split:
                if helper is None:
                    helper = _Helper(feed)
                buf = helper.buffer()
            else:
                if helper is not None:
                    helper.drain()  # the tensors take the chunks in order
                buf = _buffer(_chunk_size())
            n = os.preadv(fd, [buf[: min(len(buf), end - pos)]], pos)
            if n <= 0:
                raise _changed(job.name)
            chunk = buf[:n]
            if helper is not None and split:
                helper.submit(buf, chunk, pos)
            elif has_tensors:
                feed.update(chunk, pos)
            if whole is not None:
                whole.update(chunk)
            pos += n
            if progress:
                progress(n)
        if helper is not None:
            helper.drain()
    finally:
        if helper is not None:
            helper.stop()
    return JobResult(whole.digest() if whole is not None else None, [h.digest() for h in hashers])


def run_jobs(
    jobs: Sequence[Job],
    algorithm: Algorithm,
    *,
    max_workers: int | None = None,
    progress: Progress | None = None,
) -> list[JobResult]:
    """Run jobs concurrently, largest first; results in the order of ``jobs``.
    The first failure cancels what has not started and is raised."""
    if not jobs:
        return []
    # more threads than cores, like model-signing's pool: the kernel shares the cores among
    # files of unequal sizes (a pool of exactly one thread per core leaves cores idle at the end)
    workers = max_workers or min(32, _CORES + 4)
    if len(jobs) == 1 or workers == 1:
        return [run_job(j, algorithm, progress) for j in jobs]
    order = sorted(range(len(jobs)), key=lambda i: jobs[i].start - jobs[i].end)
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures: dict[int, Future[JobResult]] = {
            i: pool.submit(run_job, jobs[i], algorithm, progress, cancel) for i in order
        }
        try:
            done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = None if fut.cancelled() else fut.exception()
                if exc is not None:
                    raise exc
        except BaseException:
            # stop the rest promptly (also on Ctrl-C), then let the pool wind down
            cancel.set()
            for other in futures.values():
                other.cancel()
            raise
        return [futures[i].result() for i in range(len(jobs))]
