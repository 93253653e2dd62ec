"""A log as a command sees it, local or behind ``ailedger serve``: :class:`LogSource`.

::

    source = RemoteLog(LogClient(url), workspace.path / MIRRORS_DIR, log_key=key, ...)
    with source.open() as log:        # a TransparencyLog, every entry verified
        ...                           # what a command does with the workspace's own log
    source.append(envelope_bytes)     # signed on the client; the service only sequences it

:class:`LocalLog` is the workspace's own log. :class:`RemoteLog` keeps a **mirror** of the
remote log in the workspace (``.ailedger/remote/<origin>/log.sqlite``, with its own registry
index beside it) and brings it up to date on :meth:`RemoteLog.open`:

1. fetch ``/checkpoint`` and check its signature with the trusted log key (``--log-key``, or
   the key the mirror was first verified with); the service's word is never taken;
2. compare it with the last checkpoint the mirror verified: smaller is a rollback
   (``checkpoint-rollback``), the same size with another root or a consistency proof that
   does not hold is a fork (``consistency-proof-invalid``): refused, nothing is written;
3. fetch the new entries (``/v1/entries?start=``), verify their envelopes' signatures (a
   known key must verify; a key this workspace does not know is mirrored unvouched, as the
   log's inclusion is what is proven) and append them only if the grown tree has the
   checkpoint's root (``remote-entry-mismatch`` otherwise, nothing written);
4. store the checkpoint: the next open checks consistency from it.

With ``witnesses`` and ``witness_threshold`` K, step 1 also needs K valid cosignatures on the
checkpoint by distinct named witness keys (``witness-cosignatures-insufficient`` otherwise):
a checkpoint the witnesses did not see is never believed, whatever the log key signed.

Registry writes go through :meth:`RemoteLog.appender`: submit the signed envelope, wait
(bounded) for a published checkpoint to cover it, sync the mirror to that checkpoint and check
that the mirror holds this very envelope at the index the service answered.

So every byte a command then reads (entries, their times as the service recorded them,
proofs) comes from a tree whose root a trusted key signed, and the index that ``trace``,
``lineage`` and ``audit report`` read is rebuilt from those entries alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ailedger.errors import (
    ConflictError,
    FormatError,
    InvalidInput,
    NotFound,
    ProofInvalid,
    SignatureInvalid,
    WorkspaceError,
)
from ailedger.log import (
    LOG_DB_NAME,
    AnyNoteKey,
    Checkpoint,
    PreparedEntry,
    Receipt,
    Secp256k1NoteKey,
    SignatureCheck,
    SignedNote,
    TransparencyLog,
    open_workspace_log,
    parse_vkey,
    verify_receipt,
    vkey,
)
from ailedger.merkle import ConsistencyProof
from ailedger.registry import INDEX_DB_NAME, Appender
from ailedger.service.client import LogClient, ServiceUnavailable
from ailedger.workspace import Workspace

__all__ = [
    "MIRRORS_DIR",
    "RECEIPT_WAIT_S",
    "LocalLog",
    "LogSource",
    "RemoteLog",
    "Submitted",
    "SyncReport",
    "check_consistency",
    "check_cosignatures",
    "fetch_checkpoint",
    "mirror_check",
    "trusted_key",
]

#: The workspace directory holding the mirrors of remote logs, one directory per origin.
MIRRORS_DIR = "remote"
#: Entries fetched per request (the service's page limit).
PAGE = 100
#: How long :meth:`RemoteLog.receipt` waits for a checkpoint to cover a new entry.
RECEIPT_WAIT_S = 30.0


@dataclass(frozen=True)
class Submitted:
    """Where an appended envelope landed (``duplicate``: it was already logged there)."""

    index: int
    duplicate: bool = False


class LogSource(Protocol):
    """Where a command reads and writes the log: the workspace's own or a service's."""

    @property
    def index_path(self) -> Path:
        """Where the registry index of this log lives."""
        ...

    def open(self) -> TransparencyLog:
        """The log, every entry verified (the caller closes it)."""
        ...

    def append(self, envelope: bytes) -> Submitted:
        """Append one signed envelope (durable on return)."""
        ...


class LocalLog:
    """The workspace's own log (``.ailedger/log.sqlite``)."""

    def __init__(
        self, workspace: Workspace, check_signature: SignatureCheck, *, read_only: bool = False
    ) -> None:
        self.workspace = workspace
        self.check_signature = check_signature
        self.read_only = read_only

    @property
    def index_path(self) -> Path:
        return self.workspace.path / INDEX_DB_NAME

    def open(self) -> TransparencyLog:
        return open_workspace_log(
            self.workspace, check_signature=self.check_signature, read_only=self.read_only
        )

    def append(self, envelope: bytes) -> Submitted:
        with self.open() as log:
            return Submitted(log.append(envelope))


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`RemoteLog.sync` did: the mirror grew from ``previous_size`` to ``size``."""

    url: str
    origin: str
    previous_size: int
    size: int
    root: bytes
    checkpoint: SignedNote

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "origin": self.origin,
            "previous_size": self.previous_size,
            "size": self.size,
            "fetched": self.size - self.previous_size,
            "root": self.root.hex(),
        }


def trusted_key(text: str, origin: str) -> AnyNoteKey:
    """A log key from ``--log-key``: an Ethereum address (the log's secp256k1 key, named
    after ``origin``) or a verifier key ``name+keyid+base64``."""
    if text.startswith("0x") and len(text) == 42:
        return Secp256k1NoteKey(origin, text)
    return parse_vkey(text)


def mirror_check(check: SignatureCheck) -> SignatureCheck:
    """``check`` for a mirror: a signature by a key ``check`` knows (or an Ethereum address)
    must verify; one by a key it does not know is admitted unvouched (other organisations
    sign with keys this workspace may never hold; the log proves inclusion, and whoever uses
    the statement checks its signer against the keys they trust)."""

    def lenient(keyid: str, message: bytes, signature: bytes) -> str | None:
        try:
            return check(keyid, message, signature)
        except SignatureInvalid as exc:
            if exc.code == "signer-unknown":
                return None
            raise

    return lenient


def check_consistency(
    client: LogClient, old: Checkpoint, new: Checkpoint, *, seen: str = "verified"
) -> None:
    """Refuse ``new`` unless the log at ``client`` proves it extends ``old`` (both verified
    by the caller): a smaller size is a rollback, another root or a failing proof a fork."""
    where = client.url
    if new.size < old.size:
        raise ProofInvalid(
            f"log service {where} served a checkpoint of size {new.size}, older than the "
            f"size {old.size} {seen} before: a rollback",
            code="checkpoint-rollback",
            hint="do not trust this service; report it to the log's operator and witnesses",
        )
    if new.size == old.size:
        if new.root != old.root:
            raise ProofInvalid(
                f"log service {where} served a checkpoint of size {new.size} with another "
                f"root than the one {seen} before: the log forked",
                code="consistency-proof-invalid",
                hint="do not trust this service; report it to the log's operator and witnesses",
            )
        return
    doc = client.consistency(old.size, new.size)
    try:
        hashes = doc.get("hashes")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise FormatError("no hash list")
        proof = ConsistencyProof(
            old.size, new.size, old.root, new.root, tuple(bytes.fromhex(h) for h in hashes)
        )
    except (FormatError, ValueError):
        raise ServiceUnavailable(
            f"log service {where} answered a malformed consistency proof"
        ) from None
    try:
        proof.verify()
    except ProofInvalid:
        raise ProofInvalid(
            f"log service {where}: its checkpoint of size {new.size} is not consistent with "
            f"the one of size {old.size} {seen} before: the log forked",
            code="consistency-proof-invalid",
            hint="do not trust this service; report it to the log's operator and witnesses",
        ) from None


def fetch_checkpoint(
    client: LogClient, key: AnyNoteKey | Callable[[str], AnyNoteKey]
) -> tuple[SignedNote, Checkpoint]:
    """The latest checkpoint of the log service at ``client``, its signature checked with
    ``key`` (or the key ``key(origin)`` trusts for the origin it names)."""
    text = client.checkpoint()
    try:
        note = SignedNote.parse(text)
        cp = Checkpoint.parse(note.text)
    except (FormatError, InvalidInput):
        raise ServiceUnavailable(
            f"log service {client.url} answered a malformed checkpoint"
        ) from None
    trusted = key(cp.origin) if callable(key) else key
    if trusted.name != cp.origin:
        raise ProofInvalid(
            f"log service {client.url} serves log {cp.origin!r}, not {trusted.name!r}",
            code="checkpoint-origin-mismatch",
        )
    note.verify_one(trusted)
    return note, cp


def check_cosignatures(
    note: SignedNote, witnesses: Sequence[AnyNoteKey], threshold: int, *, where: str
) -> list[str]:
    """The names of the ``witnesses`` whose cosignature on ``note`` verifies; refuse
    (``witness-cosignatures-insufficient``) fewer than ``threshold`` of them."""
    cosigned: list[str] = []
    for witness in {vkey(w): w for w in witnesses}.values():
        try:
            note.verify_one(witness)
        except SignatureInvalid:
            continue
        cosigned.append(witness.name)
    if len(cosigned) < threshold:
        raise SignatureInvalid(
            f"{where}: its checkpoint has {len(cosigned)} of the required {threshold} valid "
            f"witness cosignatures",
            code="witness-cosignatures-insufficient",
            hint="do not trust this checkpoint; check that the log's witnesses run "
            "(`ailedger serve --witness`) and that --witness-key / [log] witnesses name them",
        )
    return cosigned


def _slug(origin: str) -> str:
    """A directory name for ``origin``: readable, and unique by a digest of the origin."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", origin)[:60]
    return f"{readable}-{hashlib.sha256(origin.encode()).hexdigest()[:12]}"


class RemoteLog:
    """The log behind ``ailedger serve`` at ``client.url``, mirrored under ``mirrors_dir``.

    ``mirrors_dir`` None (no workspace) admits :meth:`append` only.
    ``log_key`` is the trusted log key as ``--log-key`` gives it (None: the key the mirror
    of this log was first verified with; with neither, nothing is trusted and every read
    fails closed). ``check_signature`` knows the workspace's keys (see :func:`mirror_check`).
    ``witness_threshold`` of the ``witnesses`` must cosign every checkpoint believed (see
    :func:`check_cosignatures`); ``publish_wait_s`` bounds the wait of :meth:`appender` for
    a published checkpoint that covers a submitted entry.
    """

    def __init__(
        self,
        client: LogClient,
        mirrors_dir: Path | None,
        *,
        log_key: str | None,
        check_signature: SignatureCheck,
        witnesses: Sequence[AnyNoteKey] = (),
        witness_threshold: int = 0,
        publish_wait_s: float = RECEIPT_WAIT_S,
    ) -> None:
        if witness_threshold > len({vkey(w) for w in witnesses}):
            raise InvalidInput(
                f"a witness threshold of {witness_threshold} needs as many witness keys "
                f"(--witness-key or [log] witnesses; {len(witnesses)} given)"
            )
        self.client = client
        self.url = client.url
        self.mirrors_dir = mirrors_dir
        self.log_key_text = log_key
        self.check_signature = mirror_check(check_signature)
        self.witnesses = list(witnesses)
        self.witness_threshold = witness_threshold
        self.publish_wait_s = publish_wait_s
        self._origin: str | None = None
        self.last_sync: SyncReport | None = None
        self.cosigned: list[str] = []

    # --- where the mirror lives -------------------------------------------------------------

    def mirror_dir(self, origin: str) -> Path:
        if self.mirrors_dir is None:
            raise WorkspaceError(
                f"reading the log service {self.url} needs a workspace (it keeps the "
                "verified mirror and the last checkpoint seen)",
                hint="run `ailedger init` or pass --workspace",
            )
        return self.mirrors_dir / _slug(origin)

    @property
    def index_path(self) -> Path:
        """The registry index of the mirror (known once :meth:`open` read the checkpoint)."""
        if self._origin is None:
            raise InvalidInput("the remote log's origin is not known before it is opened")
        return self.mirror_dir(self._origin) / INDEX_DB_NAME

    def _mirror(self, origin: str) -> TransparencyLog:
        path = self.mirror_dir(origin)
        path.mkdir(parents=True, exist_ok=True)
        return TransparencyLog.open(
            path / LOG_DB_NAME, origin, check_signature=self.check_signature
        )

    # --- checkpoints ------------------------------------------------------------------------

    def _key(self, origin: str, mirror: TransparencyLog | None) -> AnyNoteKey:
        recorded = mirror.log_key() if mirror is not None else None
        if self.log_key_text is not None:
            key = trusted_key(self.log_key_text, origin)
            if recorded is not None and vkey(recorded) != vkey(key):
                raise ConflictError(
                    f"the mirror of {origin} was verified with log key {vkey(recorded)}, "
                    f"not {vkey(key)}",
                    hint=f"delete {self.mirror_dir(origin)} to start over with the new key",
                )
            return key
        if recorded is not None:
            return recorded
        raise InvalidInput(
            f"no trusted log key for the log service {self.url} ({origin})",
            hint="give --log-key (the log's address or verifier key; `ailedger serve --json` "
            "prints it) or set [log] url_key in config.toml",
        )

    def trusted(self, origin: str) -> AnyNoteKey:
        """The trusted key of log ``origin``: ``--log-key``, else the one its mirror was
        first verified with (fails closed with neither)."""
        if self.mirrors_dir is None:
            return self._key(origin, None)
        path = self.mirror_dir(origin) / LOG_DB_NAME
        if not path.exists():
            return self._key(origin, None)
        with TransparencyLog.open(path, check_signature=self.check_signature) as mirror:
            return self._key(origin, mirror)

    def fetch_checkpoint(self, key: AnyNoteKey | None = None) -> tuple[SignedNote, Checkpoint]:
        """The service's latest checkpoint, its signature checked with ``key`` (default:
        :meth:`trusted` for its origin)."""
        note, cp = fetch_checkpoint(self.client, key or self.trusted)
        self._origin = cp.origin
        if self.witnesses:
            where = f"log service {self.url}"
            self.cosigned = check_cosignatures(
                note, self.witnesses, self.witness_threshold, where=where
            )
        return note, cp

    # --- the mirror -------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Bring the mirror up to the service's latest checkpoint (see the module doc)."""
        note, cp = self.fetch_checkpoint()
        with self._mirror(cp.origin) as mirror:
            return self._sync(mirror, note, cp)

    def _sync(self, mirror: TransparencyLog, note: SignedNote, cp: Checkpoint) -> SyncReport:
        key = self._key(cp.origin, mirror)
        notes = mirror.checkpoints()
        previous = mirror.size()
        if notes:
            check_consistency(self.client, Checkpoint.parse(notes[-1].text), cp)
        if cp.size <= previous:
            if mirror.root(cp.size) != cp.root:
                raise ProofInvalid(
                    f"log service {self.url}: its checkpoint of size {cp.size} does not match "
                    "the entries mirrored before: the log forked",
                    code="consistency-proof-invalid",
                )
        else:
            rows = self._fetch_rows(mirror, previous, cp.size)
            try:
                mirror.append_prepared(rows, expect_root=cp.root)
            except ProofInvalid:
                raise ProofInvalid(
                    f"log service {self.url}: entries {previous}..{cp.size - 1} it served do not "
                    f"hash to its signed checkpoint of size {cp.size}",
                    code="remote-entry-mismatch",
                    hint="do not trust this service; report it to the log's operator",
                ) from None
        mirror.import_checkpoint(note, key)
        report = SyncReport(self.url, cp.origin, previous, max(previous, cp.size), cp.root, note)
        self.last_sync = report
        return report

    def _fetch_rows(self, mirror: TransparencyLog, start: int, stop: int) -> list[PreparedEntry]:
        rows: list[PreparedEntry] = []
        while start + len(rows) < stop:
            at = start + len(rows)
            page = self.client.entries(at, min(PAGE, stop - at))
            if not page:
                raise ServiceUnavailable(
                    f"log service {self.url} served no entry {at} below its checkpoint "
                    f"of size {stop}"
                )
            for i, doc in enumerate(page[: stop - at]):
                rows.append(self._row(mirror, doc, at + i))
        return rows

    def _row(self, mirror: TransparencyLog, doc: dict[str, Any], index: int) -> PreparedEntry:
        envelope, time_ms = doc.get("envelope"), doc.get("time_ms")
        if (
            doc.get("index") != index
            or not isinstance(envelope, dict)
            or not isinstance(time_ms, int)
            or isinstance(time_ms, bool)
        ):
            raise ServiceUnavailable(f"log service {self.url} served a malformed entry {index}")
        try:
            return mirror.prepare_at(json.dumps(envelope).encode(), time_ms)
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                f"log service {self.url} served entry {index} whose signature does not "
                f"verify: {exc.message}",
                code=exc.code,
            ) from None
        except (FormatError, InvalidInput) as exc:
            raise ServiceUnavailable(
                f"log service {self.url} served a malformed entry {index}: {exc}"
            ) from None

    def open(self) -> TransparencyLog:
        """The mirror, synced: every entry verified against a checkpoint the trusted key
        signed, consistent with every checkpoint verified before."""
        note, cp = self.fetch_checkpoint()
        mirror = self._mirror(cp.origin)
        try:
            self._sync(mirror, note, cp)
        except BaseException:
            mirror.close()
            raise
        return mirror

    # --- writes and receipts ----------------------------------------------------------------

    def append(self, envelope: bytes) -> Submitted:
        """Submit ``envelope`` (signed by the caller; the service never signs for a client)."""
        answer = self.client.submit(envelope)
        index = answer.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ServiceUnavailable(f"log service {self.url} answered without an entry index")
        return Submitted(index, bool(answer.get("duplicate")))

    def wait_published(self, index: int) -> tuple[SignedNote, Checkpoint]:
        """The first verified checkpoint of the service that covers entry ``index``, polled
        for at most :attr:`publish_wait_s` (then :class:`ServiceUnavailable`)."""
        deadline = time.monotonic() + self.publish_wait_s
        pause = 0.02
        while True:
            note, cp = self.fetch_checkpoint()
            if cp.size > index:
                return note, cp
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    f"log service {self.url} logged entry {index} but published no checkpoint "
                    f"covering it within {self.publish_wait_s:g} s",
                    hint="the entry is logged and counts once a checkpoint covers it: see "
                    "`ailedger status` before running the command again; the operator knows "
                    "whether the log's witnesses are down",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def appender(self, mirror: TransparencyLog) -> Appender:
        """How a registry over ``mirror`` (opened by :meth:`open`) appends: submit the
        envelope, wait for a published checkpoint that covers it, sync ``mirror`` to that
        checkpoint, and check that ``mirror`` holds this envelope at the answered index
        (the service's word on the index is not taken)."""

        def append(envelope: bytes) -> int:
            mine = mirror.prepare(envelope).leaf_hash
            index = self.append(envelope).index
            note, cp = self.wait_published(index)
            self._sync(mirror, note, cp)
            if mirror.get(index).leaf_hash != mine:
                raise ProofInvalid(
                    f"log service {self.url} answered index {index} for an envelope that its "
                    "checkpoint does not hold there",
                    code="remote-entry-mismatch",
                    hint="do not trust this service; report it to the log's operator",
                )
            return index

        return append

    def receipt(self, index: int, *, wait_s: float = 0.0) -> Receipt:
        """The receipt of entry ``index``, verified with the trusted log key (waiting up to
        ``wait_s`` for a checkpoint to cover a new entry)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                doc = self.client.receipt(index)
                break
            except NotFound:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        try:
            receipt = Receipt.from_dict(doc)
        except (FormatError, InvalidInput):
            raise ServiceUnavailable(
                f"log service {self.url} answered a malformed receipt"
            ) from None
        _, cp = self.fetch_checkpoint()
        verify_receipt(
            receipt, log_key=self.trusted(cp.origin), check_signature=self.check_signature
        )
        if receipt.proof.index != index:
            raise ProofInvalid(
                f"log service {self.url} answered a receipt for entry {receipt.proof.index}, "
                f"not {index}",
                code="inclusion-proof-invalid",
            )
        check_consistency(
            self.client, Checkpoint.parse(receipt.proof.checkpoint.text), cp, seen="in the receipt"
        )
        return receipt
