"""SQLite storage of the transparency log: schema, migrations, the stored tree, batched commits.

Layout (schema version 1)::

    meta(key, value)                       origin, schema version
    head(size, root)                       one row: the tree size and root, updated with
                                           every append (a lost last entry cannot go unseen)
    entries(idx, leaf_hash, time_ms, payload_type, predicate_type, signers, subjects, envelope)
                                           signers / subjects: JSON lists, in envelope order
    entry_signers(keyid, idx)              one row per signature key id  (query by signer)
    entry_subjects(digest, idx, name)      one row per subject digest    (query by subject)
    nodes(level, idx, hash)                hash of the perfect subtree of 2**level leaves
                                           starting at leaf idx * 2**level, for level >= 1
                                           (level 0 is entries.leaf_hash)
    checkpoints(id, size, root, note, time_ms)
    cosignatures(checkpoint_id, line, name, key_id, time)

The tree is the RFC 9162 tree over the leaf hashes. Only *perfect* subtrees are stored: they
never change once complete, so an append writes the new leaf and the nodes it completes (one on
average, at most log2(n)), and any subtree hash of any tree size is composed from O(log n)
stored nodes. Nothing is ever rebuilt or rewritten.

Durability: WAL journal with ``synchronous=FULL``, so a commit returns only after the WAL is
fsynced. (``NORMAL`` in WAL mode survives a process crash but may lose the last commits on power
loss; an acknowledged append is a promise, so we pay one fsync per batch instead.)

Concurrency: every write starts with ``BEGIN IMMEDIATE`` (the writer lock) and reads the tree
size *inside* the transaction, so two processes appending at once serialise and never fork.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ailedger._sqlite import connect_read_only
from ailedger.errors import (
    ConflictError,
    IntegrityError,
    InvalidInput,
    ProofInvalid,
    StorageError,
    WorkspaceError,
)
from ailedger.merkle import EMPTY_ROOT

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL, root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    payload_type TEXT NOT NULL,
    predicate_type TEXT,
    signers TEXT NOT NULL,
    subjects TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_predicate ON entries (predicate_type, idx);
CREATE INDEX IF NOT EXISTS entries_by_time ON entries (time_ms, idx);
CREATE TABLE IF NOT EXISTS entry_signers (
    keyid TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (keyid, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entry_subjects (
    digest TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (digest, idx, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_by_size ON checkpoints (size);
CREATE TABLE IF NOT EXISTS cosignatures (
    checkpoint_id INTEGER NOT NULL REFERENCES checkpoints (id),
    line TEXT NOT NULL,
    name TEXT NOT NULL,
    key_id BLOB NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (checkpoint_id, line)
) WITHOUT ROWID;
"""

_sha256 = hashlib.sha256


def _lp2(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class LogSizeChanged(ConflictError):
    """An append that expected the log to have a given size found it had grown (or not):
    nothing was written; ``size`` is what the log had."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, hint="read the log again and retry")
        self.size = size


@dataclass(frozen=True)
class Row:
    """One entry as written: the canonical envelope and what the queries index."""

    envelope: bytes
    leaf_hash: bytes
    time_ms: int
    payload_type: str
    predicate_type: str | None
    signers: tuple[str, ...]
    subjects: tuple[tuple[str, str], ...]  # (digest "alg:hex", subject name)


EntryTuple = tuple[
    int, bytes, bytes, int, str, str | None, tuple[str, ...], tuple[tuple[str, str], ...]
]


class Queries:
    """Read-side queries (entries, index lookups, checkpoints) mixed into :class:`Store`."""

    db: sqlite3.Connection

    def entries_by_index(self, indexes: Sequence[int]) -> list[EntryTuple]:
        out: list[EntryTuple] = []
        db = self.db
        for index in indexes:
            row = db.execute(
                "SELECT idx, envelope, leaf_hash, time_ms, payload_type, predicate_type, "
                "signers, subjects FROM entries WHERE idx = ?",
                (index,),
            ).fetchone()
            if row is None:
                continue
            try:
                signers = tuple(str(k) for k in json.loads(row[6]))
                subjects = tuple((str(d), str(n)) for d, n in json.loads(row[7]))
            except (ValueError, TypeError):
                raise IntegrityError(f"entry {index} has a corrupt index column") from None
            out.append((*row[:6], signers, subjects))
        return out

    def indexes_of_types(self, predicate_types: Sequence[str], start: int, stop: int) -> list[int]:
        """The indexes in ``[start, stop)`` of entries of one of ``predicate_types``, in order
        (each type one range scan of the predicate index)."""
        sql = "SELECT idx FROM entries WHERE predicate_type = ? AND idx >= ? AND idx < ?"
        found = [r[0] for t in predicate_types for r in self.db.execute(sql, (t, start, stop))]
        return sorted(found)

    def hash_range(self, level: int, start: int, count: int) -> list[bytes]:
        """Hashes of level ``level`` from index ``start``, at most ``count``, in order."""
        if level == 0:
            sql = "SELECT leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
            rows = self.db.execute(sql, (start, start + count))
        else:
            sql = "SELECT hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"
            rows = self.db.execute(sql, (level, start, start + count))
        return [bytes(r[0]) for r in rows]

    def envelope_range(self, start: int, count: int) -> list[bytes]:
        """Canonical envelopes of entries ``start`` .. ``start+count-1`` (those that exist)."""
        sql = "SELECT envelope FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
        return [bytes(r[0]) for r in self.db.execute(sql, (start, start + count))]

    @staticmethod
    def query_sql(
        *,
        subject: str | None,
        predicate_type: str | None,
        signer: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int | None,
    ) -> tuple[str, list[object]]:
        """The SQL of a query: each filter is a condition an index answers."""
        where: list[str] = []
        args: list[object] = []
        if subject is not None:
            where.append("idx IN (SELECT idx FROM entry_subjects WHERE digest = ?)")
            args.append(subject)
        if signer is not None:
            where.append("idx IN (SELECT idx FROM entry_signers WHERE keyid = ?)")
            args.append(signer)
        if predicate_type is not None:
            where.append("predicate_type = ?")
            args.append(predicate_type)
        if since_ms is not None:
            where.append("time_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("time_ms < ?")
            args.append(until_ms)
        sql = "SELECT idx FROM entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY idx"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return sql, args

    def query(self, **filters: object) -> list[int]:
        sql, args = self.query_sql(**filters)  # type: ignore[arg-type]
        return [r[0] for r in self.db.execute(sql, args)]

    def predicate_types(self, subject: str) -> list[str]:
        """The distinct predicate types of the entries about ``subject``, sorted."""
        rows = self.db.execute(
            "SELECT DISTINCT predicate_type FROM entries WHERE predicate_type IS NOT NULL "
            "AND idx IN (SELECT idx FROM entry_subjects WHERE digest = ?) ORDER BY 1",
            (subject,),
        )
        return [str(r[0]) for r in rows]

    # --- meta and checkpoints --------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def witness_keys(self) -> list[str]:
        rows = self.db.execute("SELECT value FROM meta WHERE key LIKE 'witness/%' ORDER BY key")
        return [str(r[0]) for r in rows]

    def add_checkpoint(self, size: int, root: bytes, note: str, time_ms: int) -> int:
        cur = self.db.execute(
            "INSERT INTO checkpoints (size, root, note, time_ms) VALUES (?, ?, ?, ?)",
            (size, root, note, time_ms),
        )
        return int(cur.lastrowid or 0)

    def find_checkpoint(self, text: str, size: int) -> int | None:
        """The id of the stored checkpoint of ``size`` whose note text is ``text``."""
        rows = self.db.execute(
            "SELECT id, note FROM checkpoints WHERE size = ? ORDER BY id DESC", (size,)
        )
        for cid, note in rows:
            if note.startswith(text + "\n"):
                return int(cid)
        return None

    def add_cosignature(
        self, checkpoint_id: int, line: str, name: str, key_id: bytes, ts: int
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO cosignatures VALUES (?, ?, ?, ?, ?)",
            (checkpoint_id, line, name, key_id, ts),
        )

    def checkpoint_rows(self) -> list[tuple[int, int, bytes, str]]:
        return [
            (int(i), int(s), bytes(r), str(n))
            for i, s, r, n in self.db.execute(
                "SELECT id, size, root, note FROM checkpoints ORDER BY id"
            )
        ]

    def checkpoint_notes(
        self, *, latest: bool = False, checkpoint_id: int | None = None
    ) -> list[str]:
        """Stored checkpoints as signed notes with their cosignature lines appended."""
        sql = "SELECT id, note FROM checkpoints"
        args: list[object] = []
        if checkpoint_id is not None:
            sql += " WHERE id = ?"
            args.append(checkpoint_id)
        sql += " ORDER BY id DESC LIMIT 1" if latest else " ORDER BY id"
        out = []
        for cid, note in self.db.execute(sql, args).fetchall():
            lines = [
                r[0]
                for r in self.db.execute(
                    "SELECT line FROM cosignatures WHERE checkpoint_id = ? ORDER BY name, line",
                    (cid,),
                )
            ]
            out.append(note + "".join(line + "\n" for line in lines))
        return out


class Store(Queries):
    """One SQLite connection to a log database. Not thread-safe; one per thread/process."""

    def __init__(self, path: Path, origin: str | None, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        if read_only:  # no schema, no WAL switch: nothing written (see ailedger._sqlite)
            self.db = connect_read_only(path, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                self.origin = self._check_meta(origin)
            except sqlite3.DatabaseError as exc:
                self.db.close()
                fault = StorageError.from_exception(exc, path)
                raise fault or IntegrityError(f"log database {path} is unreadable: {exc}") from None
            except BaseException:
                self.db.close()
                raise
            return
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            fault = StorageError.from_exception(exc, path)
            raise fault or WorkspaceError(f"cannot open log database {path}: {exc}") from None
        try:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise WorkspaceError(f"log database {path} cannot use WAL mode (got {mode})")
            self.db.execute("PRAGMA synchronous=FULL")
            self.origin = self._migrate(origin)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            fault = StorageError.from_exception(exc, path)
            raise fault or IntegrityError(f"log database {path} is unreadable: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def _migrate(self, origin: str | None) -> str:
        with self.write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                if origin is None:
                    raise InvalidInput(f"{self.path} is a new log: an origin is required")
                self.db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("origin", origin)],
                )
                self.db.execute("INSERT INTO head VALUES (0, 0, ?)", (EMPTY_ROOT,))
                return origin
        return self._check_meta(origin)

    def _check_meta(self, origin: str | None) -> str:
        rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        version = int(rows.get("schema_version", "0"))
        if version != SCHEMA_VERSION:
            raise WorkspaceError(
                f"log database {self.path} has schema version {version}, "
                f"this ailedger reads {SCHEMA_VERSION}"
            )
        stored = str(rows["origin"])
        if origin is not None and origin != stored:
            raise InvalidInput(f"log {self.path} has origin {stored!r}, not {origin!r}")
        return stored

    # --- transactions ----------------------------------------------------------------------

    def _begin_immediate(self) -> None:
        # SQLite's busy handler sleeps with a growing backoff (up to 100 ms), so a waiting
        # writer can starve while another commits back to back. Poll the writer lock every
        # ~1 ms instead (jittered), up to BUSY_TIMEOUT_MS.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        self.db.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() > deadline:
                        raise ConflictError(
                            f"log database {self.path} stayed locked by another writer for "
                            f"{BUSY_TIMEOUT_MS // 1000} s"
                        ) from None
                    time.sleep(random.uniform(0.0002, 0.002))
        finally:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @contextmanager
    def write(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (durable on return), rolled back on error."""
        try:
            self._begin_immediate()
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            fault = StorageError.from_exception(exc, self.path)
            if fault is None:
                raise
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise fault from None

    @contextmanager
    def read(self) -> Iterator[None]:
        """A read snapshot: sizes and nodes read inside agree with each other."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # --- tree ------------------------------------------------------------------------------

    def size(self) -> int:
        return self.head()[0]

    def head(self) -> tuple[int, bytes]:
        row = self.db.execute("SELECT size, root FROM head").fetchone()
        if row is None:
            raise IntegrityError(f"log database {self.path} has lost its tree head")
        return int(row[0]), bytes(row[1])

    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self.db.execute("SELECT leaf_hash FROM entries WHERE idx = ?", (index,))
        else:
            row = self.db.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            )
        found = row.fetchone()
        if found is None:
            what = "entry" if level == 0 else "node"
            raise IntegrityError(
                f"log database {self.path} is missing {what} ({level}, {index})",
                hint="run `ailedger log verify`; restore the database from a backup",
            )
        value: bytes = found[0]
        return value

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi), from O(log n) stored perfect subtrees."""
        n = hi - lo
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = _lp2(n)
        return _sha256(b"\x01" + self.subtree(lo, lo + k) + self.subtree(lo + k, hi)).digest()

    def frontier(self, size: int) -> list[tuple[int, bytes]]:
        """The perfect subtrees covering [0, size), left to right, as (level, hash)."""
        out: list[tuple[int, bytes]] = []
        offset = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, self.node(level, offset >> level)))
                offset += 1 << level
        return out

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]), leaf sibling first."""
        path: list[bytes] = []
        lo, hi, m = 0, size, index
        while hi - lo > 1:
            k = _lp2(hi - lo)
            if m < k:
                path.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.subtree(lo, lo + k))
                lo, m = lo + k, m - k
        path.reverse()
        return path

    def consistency_path(self, old: int, size: int) -> list[bytes]:
        """RFC 9162 PROOF(old, D[0:size])."""
        if old in (0, size):
            return []
        path: list[bytes] = []
        lo, hi, m, complete = 0, size, old, True
        while True:
            n = hi - lo
            if m == n:
                if not complete:
                    path.append(self.subtree(lo, hi))
                break
            k = _lp2(n)
            if m <= k:
                path.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.subtree(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        path.reverse()
        return path

    # --- appends ---------------------------------------------------------------------------

    def append(
        self,
        rows: Sequence[Row],
        *,
        expect_size: int | None = None,
        expect_root: bytes | None = None,
    ) -> int:
        """Append rows in one transaction; return the index of the first. Caller holds no
        transaction: this one is ``BEGIN IMMEDIATE`` and commits (fsync) before returning.
        With ``expect_size``, raise :class:`LogSizeChanged` (writing nothing) unless the log
        has that many entries inside the transaction; with ``expect_root``, raise
        :class:`ProofInvalid` (writing nothing) unless the new tree has that root."""
        try:
            return self._append(rows, expect_size, expect_root)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(
                f"log database {self.path} disagrees with its tree head: {exc}",
                hint="run `ailedger log verify`",
            ) from None

    def _append(
        self, rows: Sequence[Row], expect_size: int | None, expect_root: bytes | None
    ) -> int:
        with self.write():
            start = self.size()
            if expect_size is not None and start != expect_size:
                raise LogSizeChanged(
                    f"log {self.path} has {start} entries, not the {expect_size} expected",
                    size=start,
                )
            frontier = self.frontier(start)
            nodes: list[tuple[int, int, bytes]] = []
            sha = _sha256
            for i, row in enumerate(rows):
                index = start + i
                h, level, pos = row.leaf_hash, 0, index
                while pos & 1:
                    left_level, left = frontier.pop()
                    if left_level != level:  # pragma: no cover - the frontier invariant
                        raise IntegrityError("log frontier out of order")
                    h = sha(b"\x01" + left + h).digest()
                    level += 1
                    pos >>= 1
                    nodes.append((level, pos, h))
                frontier.append((level, h))
            root = root_of(frontier)
            if expect_root is not None and root != expect_root:
                raise ProofInvalid(
                    f"the {len(rows)} entries after {start} do not lead to the expected root "
                    f"{expect_root.hex()}",
                    code="remote-entry-mismatch",
                )
            db = self.db
            db.execute("UPDATE head SET size = ?, root = ?", (start + len(rows), root))
            db.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        start + i,
                        r.leaf_hash,
                        r.time_ms,
                        r.payload_type,
                        r.predicate_type,
                        json.dumps(r.signers),
                        json.dumps(r.subjects),
                        r.envelope,
                    )
                    for i, r in enumerate(rows)
                ],
            )
            db.executemany("INSERT INTO nodes VALUES (?, ?, ?)", nodes)
            db.executemany(
                "INSERT OR IGNORE INTO entry_signers VALUES (?, ?)",
                [(k, start + i) for i, r in enumerate(rows) for k in r.signers],
            )
            db.executemany(
                "INSERT OR IGNORE INTO entry_subjects VALUES (?, ?, ?)",
                [(d, start + i, name) for i, r in enumerate(rows) for d, name in r.subjects],
            )
        return start


def root_of(frontier: Sequence[tuple[int, bytes]]) -> bytes:
    """MTH from the frontier (perfect subtrees left to right)."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1][1]
    for _, h in reversed(frontier[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc
