"""The provider's receipt book: every signed receipt is committed here before it is returned.

One SQLite database in WAL mode, one row per receipt (``INSERT`` in autocommit: the row is
in the write-ahead log when the call returns, so a SIGKILLed provider loses nothing it
handed out; ``fsync=True`` adds ``synchronous=FULL`` for power loss too). Counters are
``max(counter) + 1`` per job, read from the table when a job is first seen, so they keep
increasing across restarts. An epoch is open until it holds ``epoch_size`` receipts or its
first receipt is ``epoch_seconds`` old; closing it computes the RFC 9162 root over the
receipts' EIP-712 digests in position order and stores it with the provider's signature.
One process owns a book at a time (an exclusive lock on ``PATH.lock``).

With each receipt the book keeps the consumer's signed request it answered
(:mod:`.request`: nonce, expiry, signature) and the call's input and salt, in the same row, so
the provider can show that the consumer asked for every call it bills and reveal a sampled
call to the verifiers itself (:func:`kept_calls` reads them, read-only, while the provider
serves); a nonce is charged once per job (a unique index),
so a replayed request is refused even after a restart. A book written before requests were
signed gains the three columns when it is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ailedger.chain.eip712 import Domain
from ailedger.errors import (
    ConflictError,
    IntegrityError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    StorageError,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference.receipt import (
    EpochRoot,
    Receipt,
    SignedEpochRoot,
    SignedReceipt,
    sign_epoch_root,
)
from ailedger.markets.inference.request import SignedRequest
from ailedger.merkle import InclusionProof, inclusion_proof_from_leaf_hashes, leaf_hashes
from ailedger.merkle import root_from_leaf_hashes as _root

__all__ = ["ClosedEpoch", "KeptCall", "ReceiptBook", "StoredEpoch", "kept_calls", "stored_epochs"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    job BLOB NOT NULL,
    counter INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    position INTEGER NOT NULL,
    digest BLOB NOT NULL,
    doc BLOB NOT NULL,
    nonce BLOB,
    request BLOB,
    call BLOB,
    PRIMARY KEY (job, counter),
    UNIQUE (epoch, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    signature BLOB NOT NULL,
    closed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: A consumer's request nonce is charged once per job (NULL: a receipt issued without one).
_NONCE_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS receipt_nonces ON receipts (job, nonce)"


@dataclass(frozen=True)
class ClosedEpoch:
    """A closed epoch: its signed root and when it was closed."""

    signed: SignedEpochRoot
    closed_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.signed.to_dict(), "closed_ms": self.closed_ms}


def _call_doc(value: Any, salt: bytes) -> bytes:
    return orjson.dumps({"input": value, "salt": "0x" + salt.hex()})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ReceiptBook:
    """Issue, store and prove the receipts of one provider key, domain and model."""

    def __init__(
        self,
        path: Path,
        *,
        signer: Secp256k1Signer,
        domain: Domain,
        model_digest: bytes,
        price: int,
        epoch_size: int = 1024,
        epoch_seconds: float = 60.0,
        fsync: bool = False,
        on_epoch_closed: Callable[[ClosedEpoch], None] | None = None,
    ) -> None:
        if epoch_size < 1 or not epoch_seconds > 0:
            raise InvalidInput("an epoch holds at least 1 receipt and lasts more than 0 s")
        if isinstance(price, bool) or not 0 <= price < 1 << 256:
            raise InvalidInput(f"price {price} is not a uint256")
        self.path = path
        self.signer = signer
        self.domain = domain
        self.model_digest = model_digest
        self.price = price
        self.epoch_size = epoch_size
        self.epoch_ms = int(epoch_seconds * 1000)
        #: Called with each epoch once its signed root is stored: e.g.
        #: :func:`ailedger.markets.inference.onchain.commit_closed_epoch` commits it on-chain.
        self.on_epoch_closed = on_epoch_closed
        self._separator = domain.separator()
        self._lock_fd = self._lock(path)
        try:
            self._db = self._open(path, fsync)
            self._check_identity()
            self._jobs: dict[bytes, tuple[str, int]] = {}
            row = self._db.execute("SELECT max(epoch) FROM epochs").fetchone()
            self.epoch = 0 if row[0] is None else int(row[0]) + 1
            row = self._db.execute(
                "SELECT count(*), min(json_extract(doc, '$.message.timeMs')) FROM receipts "
                "WHERE epoch = ?",
                (self.epoch,),
            ).fetchone()
            self.position = int(row[0])
            self._opened_ms: int | None = None if row[1] is None else int(row[1])
            self._leaves: OrderedDict[int, list[bytes]] = OrderedDict()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _lock(path: Path) -> int:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # a file in the way, /proc, ...: the path, not the data
            raise StorageError.from_exception(exc, path) or InvalidInput(
                f"{path}: cannot make its directory or lock file ({exc.strerror or exc})",
                hint="give --store a path in a writable directory",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError(
                f"{path} is in use by another provider process",
                hint="stop the other `ailedger market serve`, or give it its own --store",
            ) from None
        return fd

    @staticmethod
    def _open(path: Path, fsync: bool) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(receipts)")}
            for column in ("nonce", "request", "call"):
                if column not in columns:  # a book written before requests were signed
                    db.execute(f"ALTER TABLE receipts ADD COLUMN {column} BLOB")
            db.execute(_NONCE_INDEX)
        except sqlite3.DatabaseError as exc:
            fault = StorageError.from_exception(exc, path)
            if fault is not None:
                raise fault from None
            raise IntegrityError(f"{path}: not a receipt store ({exc})") from None
        return db

    def _check_identity(self) -> None:
        """A book belongs to one provider, domain and model: refuse to mix them."""
        identity = {
            "provider": self.signer.address,
            "domain": orjson.dumps(self.domain.to_dict()).decode(),
            "model": self.model_digest.hex(),
        }
        stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", identity.items())
            return
        for key, value in identity.items():
            if stored.get(key) != value:
                raise ConflictError(
                    f"{self.path} holds receipts of another {key} ({stored.get(key)})",
                    hint="give this provider, domain or model its own --store",
                )

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self, "_db", None)
        if db is not None:
            db.close()
            del self._db
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> ReceiptBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- issuing ---------------------------------------------------------------------------

    def _job(self, job: bytes) -> tuple[str, int]:
        known = self._jobs.get(job)
        if known is None:
            row = self._db.execute(
                "SELECT consumer, counter FROM receipts WHERE job = ? ORDER BY counter DESC "
                "LIMIT 1",
                (job,),
            ).fetchone()
            known = ("", 0) if row is None else (str(row[0]), int(row[1]))
            self._jobs[job] = known
        return known

    def check_job(self, job: bytes, consumer: str) -> None:
        """Refuse (ConflictError) a call on a job that belongs to another consumer."""
        owner, _ = self._job(job)
        if owner and owner != consumer:
            raise ConflictError(f"job 0x{job.hex()} belongs to another consumer ({owner})")

    def calls(self, job: bytes) -> int:
        """How many receipts the book issued for ``job`` (its last counter)."""
        return self._job(job)[1]

    def nonce_used(self, job: bytes, nonce: bytes) -> bool:
        """Whether a receipt of ``job`` was issued for a request with ``nonce``."""
        row = self._db.execute(
            "SELECT 1 FROM receipts WHERE job = ? AND nonce = ?", (job, nonce)
        ).fetchone()
        return row is not None

    def issue(
        self,
        job: bytes,
        consumer: str,
        request_digest: bytes,
        response_digest: bytes,
        request: SignedRequest | None = None,
        call: tuple[Any, bytes] | None = None,
    ) -> SignedReceipt:
        """Sign the job's next receipt and commit it, with the consumer's signed ``request``
        it answers and the ``call`` itself (``(input, salt)``: what the provider reveals to
        the verifiers when the call is sampled); only then is the counter consumed. A request
        nonce already charged for the job is refused (``request-nonce-reused``), nothing
        charged."""
        if self.position >= self.epoch_size or self._due():
            self.close_epoch()  # a storage fault here is raised: nothing charged yet
        self.check_job(job, consumer)
        _, last = self._job(job)
        now = _now_ms()
        receipt = Receipt(
            job,
            last + 1,
            request_digest,
            response_digest,
            self.model_digest,
            self.price,
            now,
            consumer,
            self.epoch,
            self.position,
        )
        digest = receipt.digest(self._separator)
        signed = SignedReceipt(receipt, self.domain, self.signer.sign_digest(digest))
        try:
            self._db.execute(
                "INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job,
                    receipt.counter,
                    receipt.consumer,
                    receipt.epoch,
                    receipt.position,
                    digest,
                    orjson.dumps(signed.to_dict()),
                    None if request is None else request.nonce,
                    None if request is None else orjson.dumps(request.to_dict()),
                    None if call is None else _call_doc(*call),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if request is not None and self.nonce_used(job, request.nonce):
                raise SignatureInvalid(
                    f"nonce 0x{request.nonce.hex()} was already charged for job 0x{job.hex()}",
                    code="request-nonce-reused",
                ) from None
            raise IntegrityError(
                f"{self.path}: cannot store receipt {receipt.counter} of job 0x{job.hex()}: {exc}"
            ) from None
        except sqlite3.Error as exc:
            raise StorageError.from_exception(exc, self.path) or IntegrityError(
                f"{self.path}: cannot store receipt {receipt.counter} of job 0x{job.hex()}: {exc}"
            ) from None
        self._jobs[job] = (receipt.consumer, receipt.counter)
        if self.position == 0:
            self._opened_ms = now
        self.position += 1
        if self.position >= self.epoch_size:
            # the receipt is committed: return it even if the close fails (a full disk); the
            # next call or tick closes the epoch, and a fault then is reported there
            with contextlib.suppress(StorageError):
                self.close_epoch()
        return signed

    # --- epochs ----------------------------------------------------------------------------

    def _due(self) -> bool:
        return self._opened_ms is not None and _now_ms() - self._opened_ms >= self.epoch_ms

    def tick(self) -> ClosedEpoch | None:
        """Close the open epoch if it is due by time (the server calls this periodically)."""
        return self.close_epoch() if self._due() else None

    def close_epoch(self) -> ClosedEpoch | None:
        """Close the open epoch (None if it is empty): its root, signed, is stored.

        ``on_epoch_closed`` commits it on-chain (the InferenceMarket contract); :meth:`closed`
        gives any past epoch's root; :func:`stored_epochs` reads them all back (``ailedger
        market commit`` commits those the chain does not hold yet)."""
        if self.position == 0:
            return None
        try:
            return self._close_epoch()
        except sqlite3.Error as exc:
            raise StorageError.from_exception(exc, self.path) or IntegrityError(
                f"{self.path}: cannot close epoch {self.epoch}: {exc}"
            ) from None

    def _close_epoch(self) -> ClosedEpoch:
        digests = [
            bytes(r[0])
            for r in self._db.execute(
                "SELECT digest FROM receipts WHERE epoch = ? ORDER BY position", (self.epoch,)
            )
        ]
        if len(digests) != self.position:
            raise IntegrityError(
                f"{self.path}: epoch {self.epoch} holds {len(digests)} receipts, expected "
                f"{self.position}"
            )
        hashes = leaf_hashes(digests)
        root = EpochRoot(self.epoch, len(digests), _root(hashes))
        signed = sign_epoch_root(root, self.domain, self.signer)
        closed = ClosedEpoch(signed, _now_ms())
        self._db.execute(
            "INSERT INTO epochs VALUES (?, ?, ?, ?, ?)",
            (root.epoch, root.size, root.root, signed.signature, closed.closed_ms),
        )
        self._remember(root.epoch, hashes)
        self.epoch += 1
        self.position = 0
        self._opened_ms = None
        if self.on_epoch_closed is not None:
            self.on_epoch_closed(closed)
        return closed

    def _remember(self, epoch: int, hashes: list[bytes]) -> None:
        self._leaves[epoch] = hashes
        self._leaves.move_to_end(epoch)
        while len(self._leaves) > 8:
            self._leaves.popitem(last=False)

    def closed(self, epoch: int) -> ClosedEpoch:
        row = self._db.execute(
            "SELECT size, root, signature, closed_ms FROM epochs WHERE epoch = ?", (epoch,)
        ).fetchone()
        if row is None:
            raise NotFound(f"epoch {epoch} is not closed yet (open epoch: {self.epoch})")
        root = EpochRoot(epoch, int(row[0]), bytes(row[1]))
        return ClosedEpoch(SignedEpochRoot(root, self.domain, bytes(row[2])), int(row[3]))

    # --- reading ---------------------------------------------------------------------------

    def receipt(self, job: bytes, counter: int) -> SignedReceipt:
        row = self._db.execute(
            "SELECT doc FROM receipts WHERE job = ? AND counter = ?", (job, counter)
        ).fetchone()
        if row is None:
            raise NotFound(f"no receipt {counter} of job 0x{job.hex()}")
        return SignedReceipt.from_dict(orjson.loads(row[0]))

    def request(self, job: bytes, counter: int) -> SignedRequest:
        """The consumer's signed request that receipt ``counter`` of ``job`` answered
        (NotFound for a receipt issued without one)."""
        row = self._db.execute(
            "SELECT request FROM receipts WHERE job = ? AND counter = ?", (job, counter)
        ).fetchone()
        if row is None or row[0] is None:
            raise NotFound(f"no signed request for receipt {counter} of job 0x{job.hex()}")
        return SignedRequest.from_dict(orjson.loads(row[0]))

    def proof(self, job: bytes, counter: int) -> tuple[SignedReceipt, ClosedEpoch, InclusionProof]:
        """A receipt, its closed epoch and its inclusion proof (NotFound while it is open)."""
        signed = self.receipt(job, counter)
        epoch = signed.receipt.epoch
        closed = self.closed(epoch)
        hashes = self._leaves.get(epoch)
        if hashes is None:
            hashes = leaf_hashes(
                [
                    bytes(r[0])
                    for r in self._db.execute(
                        "SELECT digest FROM receipts WHERE epoch = ? ORDER BY position", (epoch,)
                    )
                ]
            )
            self._remember(epoch, hashes)
        root = closed.signed.epoch_root
        if len(hashes) != root.size:
            raise IntegrityError(f"{self.path}: epoch {epoch} no longer matches its root")
        position = signed.receipt.position
        proof = InclusionProof(
            tree_size=root.size,
            leaf_index=position,
            leaf_hash=hashes[position],
            hashes=tuple(inclusion_proof_from_leaf_hashes(hashes, position)),
            root=root.root,
        )
        return signed, closed, proof

    def job_calls(self, epoch: int) -> dict[bytes, int]:
        """How many receipts of each job epoch ``epoch`` holds (what the provider commits
        on-chain for each job with the epoch's root)."""
        rows = self._db.execute(
            "SELECT job, count(*) FROM receipts WHERE epoch = ? GROUP BY job ORDER BY job",
            (epoch,),
        )
        return {bytes(job): int(n) for job, n in rows}

    def stats(self) -> dict[str, int]:
        (count,) = self._db.execute("SELECT count(*) FROM receipts").fetchone()
        return {"receipts": int(count), "epoch": self.epoch, "position": self.position}


@dataclass(frozen=True)
class KeptCall:
    """A call as the provider's book keeps it: the signed receipt, the consumer's signed
    request (None if issued without one), the input and salt (``has_call`` False when the
    book did not keep them) and the receipt's inclusion proof in its closed epoch."""

    receipt: SignedReceipt
    request: SignedRequest | None
    input: Any
    salt: bytes
    has_call: bool
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class StoredEpoch:
    """A closed epoch as the book stores it: its signed root and each job's calls in it."""

    epoch: int
    size: int
    root: bytes
    signature: bytes
    jobs: dict[bytes, int]


def _read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFound(f"no receipt store at {path}")
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError.from_exception(exc, path) or IntegrityError(
            f"{path}: cannot open the receipt store ({exc})"
        ) from None


def stored_epochs(path: Path) -> tuple[str, list[StoredEpoch]]:
    """The provider address and every closed epoch of the book at ``path``, oldest first
    (read-only: a serving provider keeps writing)."""
    db = _read_only(path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "provider" not in meta:
            raise IntegrityError(f"{path}: a receipt store without its provider")
        out = []
        for epoch, size, root, signature in db.execute(
            "SELECT epoch, size, root, signature FROM epochs ORDER BY epoch"
        ).fetchall():
            rows = db.execute(
                "SELECT job, count(*) FROM receipts WHERE epoch = ? GROUP BY job ORDER BY job",
                (epoch,),
            )
            jobs = {bytes(job): int(n) for job, n in rows}
            out.append(StoredEpoch(int(epoch), int(size), bytes(root), bytes(signature), jobs))
        return str(meta["provider"]), out
    except sqlite3.DatabaseError as exc:
        raise StorageError.from_exception(exc, path) or IntegrityError(
            f"{path}: not a receipt store ({exc})"
        ) from None
    finally:
        db.close()


def kept_calls(path: Path, job: bytes, epoch: int, counters: set[int]) -> list[KeptCall]:
    """The calls ``counters`` of ``job`` that the book at ``path`` holds in closed epoch
    ``epoch``, with their proofs; read-only (no lock: a serving provider keeps writing).
    NotFound when there is no book or the epoch is not closed; IntegrityError when the
    epoch's receipts no longer give the root the book signed."""
    db = _read_only(path)
    try:
        closed = db.execute("SELECT size, root FROM epochs WHERE epoch = ?", (epoch,)).fetchone()
        if closed is None:
            raise NotFound(f"{path}: epoch {epoch} is not closed")
        digests = [
            bytes(r[0])
            for r in db.execute(
                "SELECT digest FROM receipts WHERE epoch = ? ORDER BY position", (epoch,)
            )
        ]
        hashes = leaf_hashes(digests)
        if len(hashes) != int(closed[0]) or _root(hashes) != bytes(closed[1]):
            raise IntegrityError(f"{path}: epoch {epoch} no longer matches its signed root")
        found = []
        rows = db.execute(
            "SELECT counter, doc, request, call FROM receipts WHERE job = ? AND epoch = ? "
            "ORDER BY counter",
            (job, epoch),
        )
        for counter, doc, request, call in rows:
            if int(counter) not in counters:
                continue
            signed = SignedReceipt.from_dict(orjson.loads(doc))
            kept = None if call is None else orjson.loads(call)
            found.append(
                KeptCall(
                    signed,
                    None if request is None else SignedRequest.from_dict(orjson.loads(request)),
                    None if kept is None else kept["input"],
                    b"" if kept is None else bytes.fromhex(kept["salt"][2:]),
                    kept is not None,
                    tuple(inclusion_proof_from_leaf_hashes(hashes, signed.receipt.position)),
                )
            )
        return found
    except sqlite3.DatabaseError as exc:
        raise StorageError.from_exception(exc, path) or IntegrityError(
            f"{path}: not a receipt store ({exc})"
        ) from None
    finally:
        db.close()
