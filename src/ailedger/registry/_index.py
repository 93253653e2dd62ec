"""The registry's SQLite index: names, versions, deploy events and inference records.

The transparency log is the source of truth; this index is a cache of what the registry's
statements say, kept so lookups are indexed (``trace`` answers in O(log n)). It records how
many log entries it has read (``meta.synced``) and :meth:`RegistryIndex.sync` reads the rest,
so a command that appended to the log but died before indexing is completed by the next
command, and a deleted index is rebuilt from the log. Layout::

    meta(key, value)                           synced = log entries read; origin
    versions(kind, name, version, ...)         one row per registered dataset or model version
    events(log_idx, env, time_ms, action, ref, digest, signers, linked, prev_idx, prev_leaf,
           leaf, verdict)                      deploy / rollback, by (env, time)
    deprecations(log_idx, ref, reason, signers, verdict)
    inferences(input_digest, log_idx, position, output_digest, ref)   position -1: one record

Rows are written with ``INSERT OR IGNORE`` on natural keys: the first statement for a name
wins, and re-reading an entry changes nothing.

A deploy or rollback statement is an event of its environment only when :meth:`RegistryIndex.
judge` accepts it (``verdict = 'ok'``); every lookup of events reads accepted ones only. Its
signer must be allowed to deploy to the environment (an :data:`EventAuthority`, which the
registry's backend answers: the deployer role), else the verdict is
``unauthorised-deploy-event``; and a linked event must extend the environment's chain of
accepted events (name the last one as ``previous``, or null when there is none), else it is
``environment-history-fork``: of two events naming the same previous, the first in log order
is kept. A deprecation likewise counts only when its signer may deprecate the version
(:data:`DeprecationAuthority`; else ``unauthorised-deprecation``), the first accepted one per
version. An unlinked statement (written before links existed) names no previous event, so it
is taken only while its environment has no linked event yet, and never twice (a copy of an
accepted statement appended again is a replay): else it is ``environment-history-fork`` too.
Rejected events stay in the table for ``ailedger status`` to report.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ailedger._sqlite import connect_read_only
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    PREDICATES,
    DatasetPredicate,
    DeploymentPredicate,
    InferencePredicate,
    ModelPredicate,
    Predicate,
)
from ailedger.attest.statements import Statement
from ailedger.errors import AiledgerError, IntegrityError, StorageError
from ailedger.log import Entry, TransparencyLog
from ailedger.registry._refs import VersionRef

__all__ = [
    "ACCEPTED",
    "FORKED",
    "INDEX_DB_NAME",
    "UNAUTHORISED",
    "UNAUTHORISED_DEPRECATION",
    "DeprecationAuthority",
    "EventAuthority",
    "EventRow",
    "RegistryIndex",
    "Rejected",
    "VersionRow",
]

#: The index database inside ``.ailedger/``.
INDEX_DB_NAME = "registry.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    kind TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, digest TEXT NOT NULL,
    root TEXT, location TEXT, log_idx INTEGER NOT NULL, time_ms INTEGER NOT NULL,
    signer TEXT NOT NULL, PRIMARY KEY (kind, name, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_by_digest ON versions (digest);
CREATE TABLE IF NOT EXISTS events (
    log_idx INTEGER PRIMARY KEY, env TEXT NOT NULL, time_ms INTEGER NOT NULL,
    action TEXT NOT NULL, ref TEXT NOT NULL, digest TEXT NOT NULL, signers TEXT NOT NULL,
    linked INTEGER NOT NULL, prev_idx INTEGER, prev_leaf TEXT, leaf TEXT NOT NULL,
    verdict TEXT NOT NULL DEFAULT 'unjudged'
);
CREATE INDEX IF NOT EXISTS events_by_env_time ON events (verdict, env, time_ms, log_idx);
CREATE INDEX IF NOT EXISTS events_by_env_idx ON events (verdict, env, log_idx);
CREATE TABLE IF NOT EXISTS deprecations (
    log_idx INTEGER PRIMARY KEY, ref TEXT NOT NULL, reason TEXT, signers TEXT NOT NULL,
    verdict TEXT NOT NULL DEFAULT 'unjudged'
);
CREATE INDEX IF NOT EXISTS deprecations_by_ref ON deprecations (verdict, ref, log_idx);
CREATE TABLE IF NOT EXISTS inferences (
    input_digest TEXT NOT NULL, log_idx INTEGER NOT NULL, position INTEGER NOT NULL,
    output_digest TEXT NOT NULL, ref TEXT NOT NULL,
    PRIMARY KEY (input_digest, log_idx, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inferences_by_ref ON inferences (ref, log_idx);
"""

_MEMORY = Path(":memory:")

#: The layout version kept in ``meta.schema``: an index of another layout is emptied and
#: rebuilt from the log (it is a cache).
_SCHEMA_VERSION = "3"
_TABLES = ("meta", "versions", "events", "deprecations", "inferences")

#: The verdict of an accepted event; the others are ``status`` finding kinds.
ACCEPTED = "ok"
UNAUTHORISED = "unauthorised-deploy-event"
FORKED = "environment-history-fork"
UNAUTHORISED_DEPRECATION = "unauthorised-deprecation"

_EVENT_COLUMNS = "log_idx, env, time_ms, action, ref, digest, signers"

#: The predicate kinds the index holds: the registry's own records (see
#: :mod:`ailedger.attest.predicates`; a class of these kinds extends the built-in one).
_RECORD_KINDS = frozenset({"dataset", "model", "deployment", "inference"})


def _record_types() -> frozenset[str]:
    return frozenset(c.PREDICATE_TYPE for c in PREDICATES.values() if c.KIND in _RECORD_KINDS)


@dataclass(frozen=True)
class VersionRow:
    """A registered dataset or model version as the index holds it."""

    kind: str
    ref: VersionRef
    digest: str  # "sha256:HEX", the statement's subject
    root: str | None  # dataset Merkle root (hex)
    location: str | None  # where the artifact was registered from (file:// URI)
    log_index: int
    time_ms: int
    signer: str


@dataclass(frozen=True)
class EventRow:
    """A deploy or rollback event: ``ref`` is the version serving after it."""

    log_index: int
    env: str
    time_ms: int
    action: str
    ref: VersionRef
    digest: str
    signers: tuple[str, ...] = ()
    #: How many earlier statements with the same environment, action, version and signers
    #: were accepted (set when judged: the chain backend matches the contract's events).
    accepted_before: int = 0


#: An event's environment, action, version and signers.
_EventKey = tuple[str, str, str, tuple[str, ...]]

#: Whether one of ``signers`` was allowed to log ``event`` (deploy to its environment).
EventAuthority = Callable[[EventRow], bool]

#: Whether one of the signers (second argument) was allowed to deprecate the version.
DeprecationAuthority = Callable[[VersionRef, tuple[str, ...]], bool]


@dataclass(frozen=True)
class Rejected:
    """A deploy or rollback statement the index does not take as an event: ``verdict`` is
    :data:`UNAUTHORISED` or :data:`FORKED`; ``head`` the accepted event it should have named
    (for a fork)."""

    event: EventRow
    verdict: str
    previous: int | None
    head: int | None
    linked: bool = True  # False: an older statement that names no previous event


#: Reads the batch records of an inference batch by its root: [(input, output), ...] or None.
BatchReader = Callable[[str], "list[tuple[str, str]] | None"]


def _ref_subject(statement: Statement) -> tuple[VersionRef, str] | None:
    """The first subject named like ``name@version``, with its ``sha256:HEX`` digest."""
    for subject in statement.subject:
        sha = subject.digest.get("sha256")
        if sha is None:
            continue
        try:
            return VersionRef.parse(subject.name), f"sha256:{sha}"
        except AiledgerError:
            continue
    return None


class RegistryIndex:
    """The index database at ``path`` (created on first use).

    ``read_only`` leaves the file untouched (also on a read-only file system): the index
    is copied into memory and brought up to date there, since it is rebuilt from the log.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        try:
            if read_only:
                self.db = sqlite3.connect(":memory:", isolation_level=None)
                if path != _MEMORY and path.is_file():
                    source = connect_read_only(path)
                    try:
                        source.backup(self.db)
                    finally:
                        source.close()
            else:
                self.db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
                self.db.execute("PRAGMA journal_mode=WAL")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise StorageError.from_exception(exc, path) or IntegrityError(
                f"the registry index {path} is unreadable: {exc}",
                hint="delete it; it is rebuilt from the log",
            ) from None

    def _ensure_schema(self) -> None:
        """Create the tables; an index of an older layout is dropped and rebuilt."""
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is not None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != _SCHEMA_VERSION:
                for table in _TABLES:
                    self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.executescript(_SCHEMA)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))

    @classmethod
    def in_memory(cls) -> RegistryIndex:
        """An empty index in memory (``sync`` it to rebuild the index from a log)."""
        return cls(_MEMORY, read_only=True)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- sync from the log -----------------------------------------------------------------

    def synced(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'synced'").fetchone()
        return 0 if row is None else int(row[0])

    def sync(self, log: TransparencyLog, read_batch: BatchReader, *, chunk: int = 2000) -> int:
        """Index log entries not read yet; return how many were read."""
        known = self.db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        if known is not None and known[0] != log.origin:
            raise IntegrityError(
                f"the registry index {self.path} belongs to log {known[0]}, not {log.origin}",
                hint="delete it; it is rebuilt from the log",
            )
        start, size = self.synced(), log.size()
        if start > size:
            raise IntegrityError(
                f"the registry index has read {start} entries; the log has {size}",
                hint=f"delete {self.path}; it is rebuilt from the log",
            )
        done = start
        while done < size:
            stop = min(size, done + chunk)
            with self._write():
                if self.synced() != done:  # another process indexed this range meanwhile
                    done = self.synced()
                    continue
                # only the registry's record types: the others are never indexed, and a log
                # of mostly other statements is read in one index scan, not entry by entry
                for index in log.indexes_of_types(_record_types(), done, stop):
                    self._index_entry(log.get(index), read_batch)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('synced', ?), ('origin', ?)",
                    (str(stop), log.origin),
                )
            done = stop
        return size - start

    def rebuild(self, log: TransparencyLog, read_batch: BatchReader) -> int:
        """Forget every row and index ``log`` again from its first entry; return how many
        entries were read. The log is the record: nothing is lost."""
        with self._write():
            for table in _TABLES:
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
        return self.sync(log, read_batch)

    def judge(
        self,
        authority: EventAuthority,
        may_deprecate: DeprecationAuthority | None = None,
        taken: EventAuthority | None = None,
    ) -> None:
        """Decide which deploy/rollback statements are events (see the module docstring),
        environment by environment in log order, and which deprecations count (all of them
        without ``may_deprecate``); store the verdicts.

        With ``taken`` (the chain backend: whether the contract took the statement), a
        statement the contract took outranks statements it never took: when it names an
        earlier event as its previous and only untaken statements were accepted after that
        one, those are dropped as forks and it is accepted. So a statement an unauthorised
        key logged, which a later role grant would make acceptable, cannot push the
        contract's own history aside."""
        self._judge_deprecations(may_deprecate)
        # per environment, the accepted events in order: (log index, leaf, key, before, event)
        stacks: dict[str, list[tuple[int, str, _EventKey, int, EventRow]]] = {}
        has_links: set[str] = set()  # environments with an accepted linked event
        seen: set[str] = set()  # the leaves of accepted events: a copy is a replay
        memo: dict[tuple[str, str, str, tuple[str, ...], int], bool] = {}
        accepted: dict[tuple[str, str, str, tuple[str, ...]], int] = {}
        verdicts: dict[int, str] = {}
        old_verdicts: dict[int, str] = {}
        taken_memo: dict[int, bool] = {}

        def was_taken(event: EventRow, before: int) -> bool:
            if taken is None:
                return True  # no backend of its own: every accepted statement stands
            if event.log_index not in taken_memo:
                taken_memo[event.log_index] = taken(replace(event, accepted_before=before))
            return taken_memo[event.log_index]

        rows = self.db.execute(
            f"SELECT {_EVENT_COLUMNS}, linked, prev_idx, prev_leaf, leaf, verdict FROM events "
            "ORDER BY log_idx"
        ).fetchall()
        for row in rows:
            event = _event_row(row[:7])
            linked, prev_idx, prev_leaf, leaf, old = row[7:]
            old_verdicts[event.log_index] = str(old)
            key = (event.env, event.action, str(event.ref), event.signers)
            before = accepted.get(key, 0)
            if (*key, before) not in memo:
                memo[(*key, before)] = authority(replace(event, accepted_before=before))
            stack = stacks.setdefault(event.env, [])
            expected = (stack[-1][0], stack[-1][1]) if stack else (None, None)
            if not memo[(*key, before)]:
                verdict = UNAUTHORISED
            elif linked and (prev_idx, prev_leaf) != expected:
                verdict = FORKED
                if taken is not None and was_taken(event, before):
                    # the contract took it: drop the untaken statements accepted after its
                    # previous event, if only such stand in its way
                    depth = next(
                        (
                            i + 1
                            for i in range(len(stack) - 1, -1, -1)
                            if (stack[i][0], stack[i][1]) == (prev_idx, prev_leaf)
                        ),
                        0 if prev_idx is None else None,
                    )
                    above = [] if depth is None else stack[depth:]
                    if depth is not None and not any(was_taken(e, b) for _, _, _, b, e in above):
                        for idx, dropped_leaf, dropped_key, _, _ in above:
                            verdicts[idx] = FORKED
                            seen.discard(dropped_leaf)
                            accepted[dropped_key] -= 1
                        del stack[depth:]
                        before = accepted.get(key, 0)
                        verdict = ACCEPTED
            elif not linked and (event.env in has_links or str(leaf) in seen):
                # an unlinked (older) statement names no previous event, so nothing ties it
                # to this place in the history: taken only before links, and never twice
                verdict = FORKED
            else:
                verdict = ACCEPTED
            if verdict == ACCEPTED:
                stack.append((event.log_index, str(leaf), key, before, event))
                seen.add(str(leaf))
                accepted[key] = before + 1
                if linked:
                    has_links.add(event.env)
            verdicts[event.log_index] = verdict
        changed = [(v, i) for i, v in verdicts.items() if v != old_verdicts[i]]
        if changed:
            with self._write():
                self.db.executemany("UPDATE events SET verdict = ? WHERE log_idx = ?", changed)

    def _judge_deprecations(self, may_deprecate: DeprecationAuthority | None) -> None:
        changed: list[tuple[str, int]] = []
        memo: dict[tuple[str, str], bool] = {}
        rows = self.db.execute("SELECT log_idx, ref, signers, verdict FROM deprecations")
        for idx, ref, signers, old in rows.fetchall():
            key = (str(ref), str(signers))
            if key not in memo:
                who = tuple(s for s in str(signers).split(",") if s)
                memo[key] = may_deprecate is None or may_deprecate(VersionRef.parse(key[0]), who)
            verdict = ACCEPTED if memo[key] else UNAUTHORISED_DEPRECATION
            if verdict != old:
                changed.append((verdict, int(idx)))
        if changed:
            with self._write():
                self.db.executemany(
                    "UPDATE deprecations SET verdict = ? WHERE log_idx = ?", changed
                )

    def unjudged(self) -> bool:
        """Whether events or deprecations were read that :meth:`judge` has not judged yet."""
        for table in ("events", "deprecations"):
            row = self.db.execute(f"SELECT 1 FROM {table} WHERE verdict = 'unjudged' LIMIT 1")
            if row.fetchone() is not None:
                return True
        return False

    def rejected_deprecations(self) -> list[tuple[VersionRef, int, tuple[str, ...]]]:
        """The deprecations judged not to count: (version, log index, signers), in log order."""
        rows = self.db.execute(
            "SELECT ref, log_idx, signers FROM deprecations WHERE verdict != ? ORDER BY log_idx",
            (ACCEPTED,),
        )
        return [
            (VersionRef.parse(str(r)), int(i), tuple(x for x in str(s).split(",") if x))
            for r, i, s in rows
        ]

    def is_deprecation(self, log_index: int) -> bool:
        """Whether log entry ``log_index`` is a deprecation that counts."""
        row = self.db.execute(
            "SELECT 1 FROM deprecations WHERE log_idx = ? AND verdict = ?", (log_index, ACCEPTED)
        ).fetchone()
        return row is not None

    def rejected(self) -> list[Rejected]:
        """The deploy/rollback statements judged not to be events, in log order."""
        out: list[Rejected] = []
        head: dict[str, int] = {}
        rows = self.db.execute(
            f"SELECT {_EVENT_COLUMNS}, verdict, prev_idx, linked FROM events ORDER BY log_idx"
        )
        for row in rows:
            event = _event_row(row[:7])
            verdict, prev_idx, linked = row[7:]
            if verdict == ACCEPTED:
                head[event.env] = event.log_index
                continue
            previous = None if not linked or prev_idx is None else int(prev_idx)
            out.append(Rejected(event, str(verdict), previous, head.get(event.env), bool(linked)))
        return out

    def is_event(self, log_index: int) -> bool:
        """Whether log entry ``log_index`` is an accepted deploy or rollback event."""
        row = self.db.execute(
            "SELECT 1 FROM events WHERE log_idx = ? AND verdict = ?", (log_index, ACCEPTED)
        ).fetchone()
        return row is not None

    def _index_entry(self, entry: Entry, read_batch: BatchReader) -> None:
        if entry.predicate_type not in _record_types():
            return
        try:
            statement = Statement.from_json(Envelope.from_json(entry.envelope).payload)
            predicate = statement.typed_predicate()
        except AiledgerError:
            return  # not a statement this registry wrote or can read: not indexed
        found = _ref_subject(statement)
        if predicate is None or found is None:
            return
        self._index_predicate(entry, predicate, *found, read_batch)

    def _index_predicate(
        self,
        entry: Entry,
        predicate: Predicate,
        ref: VersionRef,
        digest: str,
        read_batch: BatchReader,
    ) -> None:
        signer = entry.signers[0] if entry.signers else ""
        if isinstance(predicate, DatasetPredicate | ModelPredicate):
            kind = predicate.KIND
            root = predicate.root if isinstance(predicate, DatasetPredicate) else None
            self.db.execute(
                "INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, ref.name, ref.version, digest, root, predicate.location, entry.index,
                 entry.time_ms, signer),
            )  # fmt: skip
        elif isinstance(predicate, DeploymentPredicate) and predicate.action == "deprecate":
            self.db.execute(
                "INSERT OR IGNORE INTO deprecations VALUES (?, ?, ?, ?, 'unjudged')",
                (entry.index, str(ref), predicate.reason,
                 ",".join(s.lower() for s in entry.signers)),
            )  # fmt: skip
        elif isinstance(predicate, DeploymentPredicate):
            link = predicate.previous
            self.db.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unjudged')",
                (entry.index, predicate.environment, entry.time_ms, predicate.action, str(ref),
                 digest, ",".join(s.lower() for s in entry.signers), int(predicate.linked),
                 None if link is None else link.log_index,
                 None if link is None else link.leaf_hash.lower(), entry.leaf_hash.hex()),
            )  # fmt: skip
        elif isinstance(predicate, InferencePredicate):
            self._index_inference(entry, predicate, ref, read_batch)

    def _index_inference(
        self, entry: Entry, predicate: InferencePredicate, ref: VersionRef, read: BatchReader
    ) -> None:
        if predicate.input_digest is not None and predicate.output_digest is not None:
            rows = [(predicate.input_digest, -1, predicate.output_digest)]
        else:
            records = read(predicate.batch_root or "") or []
            rows = [(inp, pos, out) for pos, (inp, out) in enumerate(records)]
        self.db.executemany(
            "INSERT OR IGNORE INTO inferences VALUES (?, ?, ?, ?, ?)",
            [(inp, entry.index, pos, out, str(ref)) for inp, pos, out in rows],
        )

    # --- lookups ---------------------------------------------------------------------------

    def version(self, kind: str, ref: VersionRef) -> VersionRow | None:
        row = self.db.execute(
            "SELECT kind, name, version, digest, root, location, log_idx, time_ms, signer "
            "FROM versions WHERE kind = ? AND name = ? AND version = ?",
            (kind, ref.name, ref.version),
        ).fetchone()
        return None if row is None else _version_row(row)

    def versions(self, kind: str, name: str | None = None) -> list[VersionRow]:
        sql = (
            "SELECT kind, name, version, digest, root, location, log_idx, time_ms, signer "
            "FROM versions WHERE kind = ?"
        )
        args: list[object] = [kind]
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        return [_version_row(r) for r in self.db.execute(sql + " ORDER BY log_idx", args)]

    def deprecation(self, ref: VersionRef) -> tuple[int, str | None] | None:
        row = self.db.execute(
            "SELECT log_idx, reason FROM deprecations WHERE verdict = ? AND ref = ? "
            "ORDER BY log_idx LIMIT 1",
            (ACCEPTED, str(ref)),
        ).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def events(self, env: str) -> list[EventRow]:
        """The deploy/rollback events of ``env`` in log order."""
        rows = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? ORDER BY log_idx",
            (ACCEPTED, env),
        )
        return [_event_row(r) for r in rows]

    def event_at(self, env: str, time_ms: int) -> EventRow | None:
        """The last event of ``env`` at or before ``time_ms``."""
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? AND time_ms <= ? "
            "ORDER BY time_ms DESC, log_idx DESC LIMIT 1",
            (ACCEPTED, env, time_ms),
        ).fetchone()
        return None if row is None else _event_row(row)

    def first_event(self, env: str) -> EventRow | None:
        """The first event of ``env`` in log order."""
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? "
            "ORDER BY log_idx LIMIT 1",
            (ACCEPTED, env),
        ).fetchone()
        return None if row is None else _event_row(row)

    def last_event(self, env: str) -> EventRow | None:
        """The last event of ``env`` in log order (what a new event names as previous)."""
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? "
            "ORDER BY log_idx DESC LIMIT 1",
            (ACCEPTED, env),
        ).fetchone()
        return None if row is None else _event_row(row)

    def event_before(self, event: EventRow) -> EventRow | None:
        """The event of the same environment just before ``event`` in log order."""
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? AND log_idx < ? "
            "ORDER BY log_idx DESC LIMIT 1",
            (ACCEPTED, event.env, event.log_index),
        ).fetchone()
        return None if row is None else _event_row(row)

    def datasets_with_root(self, root: str) -> list[VersionRow]:
        return [v for v in self.versions("dataset") if v.root == root]

    def event_after(self, event: EventRow) -> EventRow | None:
        """The event of the same environment just after ``event`` in log order."""
        row = self.db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE verdict = ? AND env = ? AND log_idx > ? "
            "ORDER BY log_idx LIMIT 1",
            (ACCEPTED, event.env, event.log_index),
        ).fetchone()
        return None if row is None else _event_row(row)

    def deprecations(self) -> list[tuple[VersionRef, int, str | None]]:
        """Every deprecation that counts, the first per version: (version, log index,
        reason), in log order."""
        rows = self.db.execute(
            "SELECT ref, MIN(log_idx), reason FROM deprecations WHERE verdict = ? GROUP BY ref "
            "ORDER BY 2",
            (ACCEPTED,),
        )
        return [(VersionRef.parse(str(r)), int(i), reason) for r, i, reason in rows]

    def environments(self) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT env FROM events WHERE verdict = ? ORDER BY env", (ACCEPTED,)
        )
        return [str(r[0]) for r in rows]

    def inferences(self, input_digest: str, limit: int = 100) -> list[tuple[int, int, str, str]]:
        """(log index, position, output digest, model ref) of records with this input."""
        rows = self.db.execute(
            "SELECT log_idx, position, output_digest, ref FROM inferences "
            "WHERE input_digest = ? ORDER BY log_idx, position LIMIT ?",
            (input_digest, limit),
        )
        return [(int(a), int(b), str(c), str(d)) for a, b, c, d in rows]

    def inference_statements(self, ref: VersionRef) -> int:
        """How many inference statements (single or batch) name ``ref``."""
        row = self.db.execute(
            "SELECT COUNT(DISTINCT log_idx) FROM inferences WHERE ref = ?", (str(ref),)
        ).fetchone()
        return int(row[0])

    def dump(self) -> str:
        """Every row read from the log, for comparing a rebuilt index with the original (the
        verdicts of events and deprecations are left out: :meth:`judge` decides them with the
        backend's rules)."""
        tables = ("versions", "events", "deprecations", "inferences")
        rows = {t: [list(r) for r in self.db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
                for t in tables}  # fmt: skip
        rows["events"] = [r[:-1] for r in rows["events"]]
        rows["deprecations"] = [r[:-1] for r in rows["deprecations"]]
        return json.dumps(rows, sort_keys=True)


def _version_row(row: tuple[object, ...]) -> VersionRow:
    kind, name, version, digest, root, location, idx, time_ms, signer = row
    return VersionRow(
        str(kind),
        VersionRef(str(name), str(version)),
        str(digest),
        None if root is None else str(root),
        None if location is None else str(location),
        int(str(idx)),
        int(str(time_ms)),
        str(signer),
    )


def _event_row(row: tuple[object, ...]) -> EventRow:
    idx, env, time_ms, action, ref, digest, signers = row
    return EventRow(
        int(str(idx)), str(env), int(str(time_ms)), str(action), VersionRef.parse(str(ref)),
        str(digest), tuple(s for s in str(signers).split(",") if s),
    )  # fmt: skip
