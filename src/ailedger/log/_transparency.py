"""The append-only transparency log of signed envelopes (RFC 9162 tree in SQLite).

::

    log = TransparencyLog.open(path, "example.com/ailedger-log")
    index = log.append(envelope_bytes)          # verifies the signatures, then appends
    proof = log.inclusion_proof(index)          # O(log n) reads
    signed = log.checkpoint(log_key)            # C2SP signed-note checkpoint, stored

Each entry is a DSSE envelope. The leaf is the RFC 9162 leaf hash of the envelope's canonical
bytes: the RFC 8785 (JCS) serialisation of the JSON object ``{"payload", "payloadType",
"signatures": [{"keyid", "sig"}]}`` exactly as it is stored in the ``entries.envelope`` column,
so ``leaf = SHA-256(0x00 || JCS(envelope))`` can be recomputed by anyone from a receipt.

An append checks every signature of the envelope (valid for its key id; the log admits any
valid signer, policy comes later), then writes the entry and the nodes it completes in one
transaction. See :mod:`ailedger.log._store` for storage, durability and concurrency.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any

from ailedger.attest.dsse import Envelope
from ailedger.errors import ConflictError, IntegrityError, InvalidInput, NotFound, ProofInvalid
from ailedger.log import _store as _log_store
from ailedger.log._envelope import (
    SignatureCheck,
    check_ethereum_signature,
    ingest,
    known_keys_check,
)
from ailedger.log._store import LogSizeChanged
from ailedger.log._verify import verify_store
from ailedger.log.checkpoint import (
    AnyNoteKey,
    Checkpoint,
    Ed25519NoteKey,
    NoteSigner,
    NoteVerifier,
    Secp256k1NoteKey,
    SignedNote,
    parse_cosignature_time,
    parse_vkey,
    vkey,
)
from ailedger.log.receipt import Receipt
from ailedger.merkle import ConsistencyProof, InclusionProof
from ailedger.workspace import Workspace

__all__ = [
    "LOG_DB_NAME",
    "Entry",
    "LogSizeChanged",
    "PreparedEntry",
    "SignatureCheck",
    "TransparencyLog",
    "VerifyReport",
    "check_ethereum_signature",
    "known_keys_check",
    "open_workspace_log",
]

#: One envelope verified and canonicalised by :meth:`TransparencyLog.prepare`, not yet stored.
PreparedEntry = _log_store.Row

#: The log database inside a workspace's ``.ailedger/`` directory.
LOG_DB_NAME = "log.sqlite"


@dataclass(frozen=True)
class Entry:
    """One log entry: the canonical envelope bytes and what the log indexed from it."""

    index: int
    envelope: bytes
    leaf_hash: bytes
    time_ms: int
    payload_type: str
    predicate_type: str | None
    signers: tuple[str, ...]
    subjects: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "time": datetime.fromtimestamp(self.time_ms / 1000).astimezone().isoformat(),
            "payload_type": self.payload_type,
            "predicate_type": self.predicate_type,
            "signers": list(self.signers),
            "subjects": [{"digest": d, "name": n} for d, n in self.subjects],
        }


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`TransparencyLog.verify` checked (it raises on the first failure)."""

    size: int
    root: bytes
    entries: int
    nodes: int
    checkpoints: int
    cosignatures: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "entries_checked": self.entries,
            "nodes_checked": self.nodes,
            "checkpoints_checked": self.checkpoints,
            "cosignatures_checked": self.cosignatures,
            "ok": True,
        }


class TransparencyLog:
    """An append-only log of DSSE envelopes in one SQLite file.

    ``check_signature`` verifies one DSSE signature ``(keyid, pae, sig)`` and raises
    ``SignatureInvalid``; the default admits Ethereum-address key ids (recovery, EIP-191).
    """

    def __init__(self, store: _log_store.Store, check_signature: SignatureCheck) -> None:
        self._store = store
        self._check = check_signature
        self.origin: str = store.origin
        self.path: Path = store.path

    @classmethod
    def open(
        cls,
        path: str | Path,
        origin: str | None = None,
        *,
        check_signature: SignatureCheck = check_ethereum_signature,
        read_only: bool = False,
    ) -> TransparencyLog:
        """Open (or create, when ``origin`` is given) the log database at ``path``.

        ``read_only`` opens an existing log without writing a byte (also on a read-only file
        system); appends then fail with a :class:`~ailedger.errors.StorageError`. A log that
        does not exist yet is still created when ``origin`` is given (an empty log)."""
        p = Path(path)
        if not p.exists():
            if origin is None:
                raise NotFound(f"no log database at {p}", hint="create it with an origin")
            read_only = False
        return cls(_log_store.Store(p, origin, read_only=read_only), check_signature)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- appends ---------------------------------------------------------------------------

    def append(self, envelope: bytes | str, *, expect_size: int | None = None) -> int:
        """Verify and append one envelope; return its index. Durable on return.

        With ``expect_size``, append only if the log still has that many entries (inside the
        writer lock), else raise :class:`LogSizeChanged` and write nothing: a compare-and-swap
        for a caller whose envelope names what the log held when it was signed."""
        return self.append_many([envelope], expect_size=expect_size)[0]

    def append_many(
        self,
        envelopes: Iterable[bytes | str],
        *,
        executor: Executor | None = None,
        expect_size: int | None = None,
    ) -> list[int]:
        """Verify all envelopes, then append them in one transaction (one fsync). Either all
        are appended or none (a bad envelope raises before anything is written).

        With ``executor`` (e.g. a ``ProcessPoolExecutor``) the signature checks run in
        parallel; the signature check must then be picklable (a module-level function).
        ``expect_size`` is as for :meth:`append`."""
        now = int(time.time() * 1000)
        items = list(envelopes)
        if executor is None or len(items) < 64:
            rows = [ingest(e, self._check, now) for e in items]
        else:
            step = max(32, len(items) // 16)
            chunks = [items[i : i + step] for i in range(0, len(items), step)]
            rows = [
                row
                for part in executor.map(_ingest_chunk, chunks, repeat(self._check), repeat(now))
                for row in part
            ]
        if not rows:
            return []
        start = self._store.append(rows, expect_size=expect_size)
        return list(range(start, start + len(rows)))

    def prepare(self, envelope: bytes | str | Envelope) -> PreparedEntry:
        """Parse, verify every signature and canonicalise one envelope without writing (what
        :meth:`append` does first); :meth:`append_prepared` stores the result. A service
        checks and answers for each request here, then commits many at once."""
        return ingest(envelope, self._check, int(time.time() * 1000))

    def append_prepared(
        self, entries: Sequence[PreparedEntry], *, expect_root: bytes | None = None
    ) -> list[int]:
        """Append entries made by :meth:`prepare` in one transaction (durable on return).

        With ``expect_root`` nothing is written unless the grown tree has that root
        (``ProofInvalid``, code ``remote-entry-mismatch``): how a mirror of another log takes
        entries only once they hash to a checkpoint it verified."""
        if not entries:
            return []
        start = self._store.append(entries, expect_root=expect_root)
        return list(range(start, start + len(entries)))

    def prepare_at(self, envelope: bytes | str | Envelope, time_ms: int) -> PreparedEntry:
        """:meth:`prepare` with the append time another log recorded (a mirror's entries keep
        the time their log gave them)."""
        return ingest(envelope, self._check, time_ms)

    # --- reads -----------------------------------------------------------------------------

    def size(self) -> int:
        return self._store.size()

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` entries (default: all)."""
        with self._store.read():
            n = self._resolve_size(size)
            return self._store.subtree(0, n)

    def get(self, index: int) -> Entry:
        entries = self._store.entries_by_index([index])
        if not entries:
            raise NotFound(f"log {self.origin} has no entry {index} (size {self.size()})")
        return Entry(*entries[0])

    def indexes_of_types(
        self, predicate_types: Collection[str], start: int = 0, stop: int | None = None
    ) -> list[int]:
        """The indexes of the entries in ``[start, stop)`` (default: to the end) whose
        predicate type is one of ``predicate_types``, in log order: a reader that wants a few
        kinds of statements skips the rest without reading them."""
        end = self.size() if stop is None else stop
        return self._store.indexes_of_types(sorted(predicate_types), start, end)

    def hashes(self, level: int, start: int, count: int) -> list[bytes]:
        """The stored hashes of the perfect subtrees of ``2**level`` leaves numbered
        ``start .. start+count-1`` (level 0: leaf hashes), as tlog-tiles serve them;
        ``IntegrityError`` if one is missing (ask only for complete subtrees)."""
        found = self._store.hash_range(level, start, count)
        if len(found) != count:
            raise IntegrityError(
                f"log {self.origin} lacks hashes at level {level} in [{start}, {start + count})",
                hint="run `ailedger log verify`",
            )
        return found

    def envelopes(self, start: int, count: int) -> list[bytes]:
        """The canonical envelope bytes of entries ``start .. start+count-1`` (the leaves)."""
        found = self._store.envelope_range(start, count)
        if len(found) != count:
            raise NotFound(f"log {self.origin} has no entries [{start}, {start + count})")
        return found

    def _resolve_size(self, size: int | None) -> int:
        current = self._store.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InvalidInput(f"tree size {size} is outside 0..{current}")
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: current)."""
        with self._store.read():
            n = self._resolve_size(size)
            if not 0 <= index < n:
                raise InvalidInput(f"entry {index} is outside a tree of size {n}")
            return InclusionProof(
                tree_size=n,
                leaf_index=index,
                leaf_hash=self._store.node(0, index),
                hashes=tuple(self._store.inclusion_path(index, n)),
                root=self._store.subtree(0, n),
            )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        with self._store.read():
            n = self._resolve_size(new_size)
            if not 0 <= old_size <= n:
                raise InvalidInput(f"old size {old_size} is outside 0..{n}")
            return ConsistencyProof(
                old_size=old_size,
                new_size=n,
                old_root=self._store.subtree(0, old_size),
                new_root=self._store.subtree(0, n),
                hashes=tuple(self._store.consistency_path(old_size, n)),
            )

    def query(
        self,
        *,
        subject: str | None = None,
        predicate_type: str | None = None,
        signer: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
    ) -> list[Entry]:
        """Entries matching every given filter, oldest first; each filter uses an index.

        ``subject`` is ``alg:hex`` (a bare hex digest means sha256); ``signer`` a key id as in
        the envelope (Ethereum addresses compare case-insensitively); ``since``/``until`` bound
        the append time (inclusive, exclusive)."""
        if subject is not None and ":" not in subject:
            subject = f"sha256:{subject}"
        if subject is not None:
            subject = subject.lower()
        if signer is not None and signer.lower().startswith("0x"):
            signer = signer.lower()
        indexes = self._store.query(
            subject=subject,
            predicate_type=predicate_type,
            signer=signer,
            since_ms=None if since is None else int(since.timestamp() * 1000),
            until_ms=None if until is None else int(until.timestamp() * 1000),
            limit=limit,
        )
        return [Entry(*e) for e in self._store.entries_by_index(indexes)]

    def predicate_types(self, subject: str) -> list[str]:
        """The distinct predicate types of the entries about ``subject`` (``alg:hex``; a bare
        hex digest means sha256), sorted."""
        subject = (subject if ":" in subject else f"sha256:{subject}").lower()
        return self._store.predicate_types(subject)

    # --- checkpoints -----------------------------------------------------------------------

    def checkpoint(
        self, signer: NoteSigner, *, extensions: Sequence[str] = (), size: int | None = None
    ) -> SignedNote:
        """Sign a checkpoint of the current tree (or of ``size``) and store it. The first
        checkpoint records the signer's verifier key as the log key; a later one by another
        key is refused (``ConflictError``)."""
        if signer.name != self.origin:
            raise InvalidInput(f"the log key must be named after the origin {self.origin!r}")
        with self._store.read():
            n = self._resolve_size(size)
            cp = Checkpoint(self.origin, n, self._store.subtree(0, n), tuple(extensions))
        note = SignedNote.sign(cp.body(), [signer])
        key = vkey(signer) if isinstance(signer, AnyNoteKey) else None
        with self._store.write():
            known = self._store.get_meta("log_key")
            if known is not None and key is not None and known != key:
                raise ConflictError(
                    f"log {self.origin} is signed by {known}, not {key}",
                    hint="sign checkpoints with the log's own key",
                )
            if known is None and key is not None:
                self._store.set_meta("log_key", key)
            self._store.add_checkpoint(n, cp.root, note.format(), int(time.time() * 1000))
        return note

    def import_checkpoint(self, note: SignedNote, log_key: AnyNoteKey) -> None:
        """Store a checkpoint another party signed (a mirror keeps its log's checkpoints):
        it must verify with ``log_key`` and match the stored tree at its size. The first
        one records ``log_key`` as the log key; another key later is a ``ConflictError``."""
        note.verify_one(log_key)
        cp = Checkpoint.parse(note.text)
        if cp.origin != self.origin:
            raise ProofInvalid(
                f"checkpoint is for log {cp.origin!r}, not {self.origin!r}",
                code="checkpoint-origin-mismatch",
            )
        key = vkey(log_key)
        with self._store.write():
            n = cp.size
            if n > self._store.size() or self._store.subtree(0, n) != cp.root:
                raise ProofInvalid(
                    f"checkpoint of size {cp.size} does not match the mirrored tree",
                    code="remote-entry-mismatch",
                )
            known = self._store.get_meta("log_key")
            if known is not None and known != key:
                raise ConflictError(f"log {self.origin} is signed by {known}, not {key}")
            if known is None:
                self._store.set_meta("log_key", key)
            if self._store.find_checkpoint(note.text, cp.size) is None:
                self._store.add_checkpoint(n, cp.root, note.format(), int(time.time() * 1000))

    def log_key(self) -> AnyNoteKey | None:
        """The verifier key recorded by the first checkpoint (trust on first use: pass a
        trusted key to :meth:`verify` to check it independently)."""
        known = self._store.get_meta("log_key")
        return None if known is None else parse_vkey(known)

    def witness_keys(self) -> list[AnyNoteKey]:
        """Verifier keys of the witnesses whose cosignatures were stored."""
        return [parse_vkey(k) for k in self._store.witness_keys()]

    def checkpoints(self) -> list[SignedNote]:
        """Every stored checkpoint (oldest first), with its cosignatures added."""
        return [SignedNote.parse(text) for text in self._store.checkpoint_notes()]

    def latest_checkpoint(self) -> SignedNote:
        notes = self._store.checkpoint_notes(latest=True)
        if not notes:
            raise NotFound(f"log {self.origin} has no checkpoint", hint="run `log checkpoint`")
        return SignedNote.parse(notes[0])

    def add_cosignature(self, note: SignedNote, verifier: NoteVerifier) -> SignedNote:
        """Store the cosignature by ``verifier`` found on ``note`` (a checkpoint of this log,
        checked against the stored one and verified); return the stored checkpoint with it."""
        cp = Checkpoint.parse(note.text)
        if cp.origin != self.origin:
            raise ProofInvalid(
                f"checkpoint is for log {cp.origin!r}, not {self.origin!r}",
                code="checkpoint-origin-mismatch",
            )
        sig = note.verify_one(verifier)
        stored = self._store.find_checkpoint(note.text, cp.size)
        if stored is None:
            raise NotFound(f"this log never issued the checkpoint of size {cp.size} being cosigned")
        with self._store.write():
            self._store.add_cosignature(
                stored, sig.line(), sig.name, sig.key_id, parse_cosignature_time(sig)
            )
            if isinstance(verifier, AnyNoteKey):
                self._store.set_meta(f"witness/{verifier.name}", vkey(verifier))
        notes = self._store.checkpoint_notes(checkpoint_id=stored)
        return SignedNote.parse(notes[0])

    def receipt(
        self, index: int, log_key: AnyNoteKey, checkpoint: SignedNote | None = None
    ) -> Receipt:
        """A receipt for entry ``index`` against ``checkpoint`` (default: the latest stored),
        whose signature ``log_key`` made (its verifier key goes into the receipt)."""
        note = self.latest_checkpoint() if checkpoint is None else checkpoint
        cp = Checkpoint.parse(note.text)
        if cp.origin != self.origin:
            raise InvalidInput(f"checkpoint is for log {cp.origin!r}, not {self.origin!r}")
        if not 0 <= index < cp.size:
            raise NotFound(
                f"entry {index} is not covered by the checkpoint of size {cp.size}",
                hint="sign a newer checkpoint with `ailedger log checkpoint`",
            )
        proof = self.inclusion_proof(index, cp.size)
        if proof.root != cp.root:
            raise IntegrityError(f"checkpoint of size {cp.size} does not match the stored tree")
        return Receipt.build(self.get(index).envelope, index, proof.hashes, note, log_key)

    def append_with_receipt(
        self, envelope: bytes | str, log_key: Secp256k1NoteKey | Ed25519NoteKey
    ) -> Receipt:
        """Append one envelope, sign a checkpoint covering it with ``log_key`` and return its
        receipt (what ``ailedger attest`` writes next to the artifact)."""
        index = self.append(envelope)
        return self.receipt(index, log_key, self.checkpoint(log_key))

    # --- verification ----------------------------------------------------------------------

    def verify(
        self,
        log_key: NoteVerifier | None = None,
        witnesses: Sequence[NoteVerifier] = (),
        *,
        start: int = 0,
    ) -> VerifyReport:
        """Re-check everything stored: each envelope (signatures, canonical form) and its leaf
        hash, every node against its children, entry numbering and node count, the tree head,
        every checkpoint's root and signature (by ``log_key``, cosignatures by known
        ``witnesses``) and consistency between consecutive checkpoints. Raises
        ``IntegrityError`` on any mismatch; nothing is ever rewritten.

        ``start`` > 0 re-checks only entries from ``start`` on (and the nodes they complete),
        taking the stored nodes below it as verified before: what a monitor does after a full
        pass. Everything else (head, node count, checkpoints) is always checked in full."""
        size, root, nodes, checkpoints, cosignatures = verify_store(
            self._store, self._check, log_key, witnesses, start
        )
        return VerifyReport(size, root, size - start, nodes, checkpoints, cosignatures)


def _ingest_chunk(
    envelopes: list[bytes | str], check: SignatureCheck, time_ms: int
) -> list[_log_store.Row]:
    return [ingest(e, check, time_ms) for e in envelopes]


def open_workspace_log(
    workspace: Workspace,
    *,
    check_signature: SignatureCheck = check_ethereum_signature,
    read_only: bool = False,
) -> TransparencyLog:
    """The workspace's log (``.ailedger/log.sqlite``, origin from its config), created on
    first use (``read_only``: opened without writing, see :meth:`TransparencyLog.open`)."""
    return TransparencyLog.open(
        workspace.path / LOG_DB_NAME,
        workspace.config.origin,
        check_signature=check_signature,
        read_only=read_only,
    )
