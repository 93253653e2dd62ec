"""Full re-verification of a stored log (``ailedger log verify``).

Everything is recomputed from the envelopes up; any mismatch raises ``IntegrityError`` naming
the row, and nothing is ever rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ailedger.errors import (
    AiledgerError,
    IntegrityError,
    InvalidInput,
    SignatureInvalid,
    VerificationFailed,
)
from ailedger.log._envelope import SignatureCheck, ingest
from ailedger.log._store import Store, root_of
from ailedger.log.checkpoint import Checkpoint, NoteVerifier, SignedNote
from ailedger.merkle import verify_consistency

_HINT = "the log database is corrupt: restore it from a backup; do not append to it"


def _fail(message: str) -> IntegrityError:
    return IntegrityError(message, hint=_HINT)


def _check_entries(store: Store, check: SignatureCheck, start: int) -> tuple[int, int]:
    db = store.db
    size, head_root = store.head()
    count, last = db.execute("SELECT COUNT(*), MAX(idx) FROM entries").fetchone()
    if count != size or (last if last is not None else -1) != size - 1:
        raise _fail(f"log head says {size} entries but {count} are stored: rows are missing")
    if not 0 <= start <= size:
        raise InvalidInput(f"verification start {start} is outside 0..{size}")
    frontier = store.frontier(start)  # the nodes below ``start`` were verified before
    nodes_checked = 0
    sha = hashlib.sha256
    cursor = db.execute(
        "SELECT idx, leaf_hash, envelope, time_ms FROM entries WHERE idx >= ? ORDER BY idx",
        (start,),
    )
    for expected_index, (index, stored_leaf, envelope, time_ms) in enumerate(cursor, start):
        if index != expected_index:
            raise _fail(f"entry {expected_index} is missing")
        if not isinstance(envelope, bytes):
            raise _fail(f"entry {index} is stored as {type(envelope).__name__}, not bytes")
        try:
            row = ingest(envelope, check, time_ms)
        except AiledgerError as exc:
            raise _fail(f"entry {index} no longer verifies: {exc.message}") from None
        if row.envelope != envelope:
            raise _fail(f"entry {index} is not stored in canonical form")
        if row.leaf_hash != stored_leaf:
            raise _fail(f"entry {index}: stored leaf hash does not match its envelope")
        h, level, pos = row.leaf_hash, 0, index
        while pos & 1:
            _, left = frontier.pop()
            h = sha(b"\x01" + left + h).digest()
            level += 1
            pos >>= 1
            stored = db.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, pos)
            ).fetchone()
            if stored is None:
                raise _fail(f"tree node ({level}, {pos}) is missing")
            if stored[0] != h:
                raise _fail(f"tree node ({level}, {pos}) does not match the entries below it")
            nodes_checked += 1
        frontier.append((level, h))
    stored_nodes = db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]
    expected_nodes = size - size.bit_count()  # perfect subtrees of 2+ leaves in [0, size)
    if stored_nodes != expected_nodes:
        raise _fail(f"log stores {stored_nodes} tree nodes, expected {expected_nodes}")
    if root_of(frontier) != store.subtree(0, size) or root_of(frontier) != head_root:
        raise _fail("the stored tree's root does not match the entries")
    return size, nodes_checked


def verify_store(
    store: Store,
    check: SignatureCheck,
    log_key: NoteVerifier | None,
    witnesses: Sequence[NoteVerifier],
    start: int = 0,
) -> tuple[int, bytes, int, int, int]:
    """(size, root, nodes checked, checkpoints checked, cosignatures checked)."""
    with store.read():
        size, nodes = _check_entries(store, check, start)
        root = store.subtree(0, size)
        prev: Checkpoint | None = None
        cosignatures = 0
        rows = store.checkpoint_rows()
        notes = store.checkpoint_notes()
        for (cid, cp_size, cp_root, _), text in zip(rows, notes, strict=True):
            try:
                note = SignedNote.parse(text)
                cp = Checkpoint.parse(note.text)
            except AiledgerError as exc:
                raise _fail(f"checkpoint {cid} does not parse: {exc.message}") from None
            if cp.origin != store.origin:
                raise _fail(f"checkpoint {cid} is for origin {cp.origin!r}")
            if (cp.size, cp.root) != (cp_size, cp_root) or cp.size > size:
                raise _fail(f"checkpoint {cid} does not match its stored size and root")
            if store.subtree(0, cp.size) != cp.root:
                raise _fail(f"checkpoint {cid} (size {cp.size}) has a root the tree never had")
            if log_key is not None and not any(
                (s.name, s.key_id) == (log_key.name, log_key.key_id) for s in note.signatures
            ):
                raise SignatureInvalid(
                    f"checkpoint {cid} (size {cp.size}) is not signed by the log key "
                    f"{log_key.name} ({log_key.key_id.hex()})",
                    hint="check that the key you trust is this log's key",
                    code="checkpoint-signature-missing",
                )
            try:
                if log_key is not None:
                    note.verify_one(log_key)
                for w in witnesses:
                    if any(s.name == w.name and s.key_id == w.key_id for s in note.signatures):
                        note.verify_one(w)
                        cosignatures += 1
            except VerificationFailed as exc:
                raise _fail(f"checkpoint {cid}: {exc.message}") from None
            if prev is not None:
                old, new = (prev, cp) if prev.size <= cp.size else (cp, prev)
                proof = store.consistency_path(old.size, new.size)
                try:
                    verify_consistency(old.size, new.size, old.root, new.root, proof)
                except VerificationFailed as exc:
                    raise _fail(f"checkpoint {cid} is inconsistent: {exc.message}") from None
            prev = cp
    return size, root, nodes, len(rows), cosignatures
