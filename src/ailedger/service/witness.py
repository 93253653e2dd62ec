"""A C2SP tlog-witness (c2sp.org/tlog-witness): the state and the checks of ``add-checkpoint``.

The witness trusts a set of log keys per origin and keeps, per origin, the latest checkpoint
it cosigned (one file per log in the state directory). ``POST /add-checkpoint`` carries::

    old <size>\\n
    <base64 hash>\\n          (0..63 consistency proof lines)
    \\n
    <signed checkpoint note>

:meth:`Witness.add_checkpoint` checks, in the spec's order, and answers with
:class:`Refusal` (the HTTP status the spec names) or the cosignature lines:

* malformed body, over 63 proof lines, a proof from size 0: 400;
* unknown origin: 404; no signature by a trusted log key verifies: 403;
* ``old`` above the checkpoint size: 400;
* ``old`` is not the size of the latest cosigned checkpoint: 409 with ``text/x.tlog.size``
  and that size; ``old`` equal to the checkpoint size with another root: 409 (a fork);
* the consistency proof from the stored checkpoint does not verify: 422.

Durability: the check against the stored state and the write of the new state happen under
one lock; the new state is written to a temporary file, fsynced, renamed over the old one and
the directory fsynced *before* the cosignature leaves. A crash at any point leaves the old or
the new state, so the witness never cosigns two checkpoints of one size and never rolls back
(a repeat of the stored checkpoint is cosigned again: same size, same root). A lock file keeps
a second process off the same state directory.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ailedger.errors import AiledgerError, ConflictError, IntegrityError
from ailedger.log import AnyNoteKey, Checkpoint, SignedNote
from ailedger.log.checkpoint import NoteSignature
from ailedger.merkle import verify_consistency

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "TLOG_SIZE_MEDIA_TYPE",
    "AddCheckpoint",
    "Refusal",
    "Witness",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

#: The spec's limit on consistency proof lines.
MAX_PROOF_LINES = 63
#: A request body above this is refused (413): a checkpoint with a few signatures is < 2 KiB.
MAX_REQUEST_BYTES = 64 * 1024
#: Content type of a 409 answer that carries the witness's latest size.
TLOG_SIZE_MEDIA_TYPE = "text/x.tlog.size"
_STATE_SUFFIX = ".checkpoint"


class Refusal(Exception):
    """An ``add-checkpoint`` the witness refuses, with the spec's HTTP status; ``size`` is the
    witness's latest size on a 409 that carries it."""

    def __init__(self, status: int, detail: str, *, size: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.size = size


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request body."""

    old_size: int
    proof: tuple[bytes, ...]
    note: SignedNote
    checkpoint: Checkpoint


def _decimal(text: str) -> int:
    if not text.isascii() or not text.isdigit() or text != str(int(text)):
        raise Refusal(400, f"{text[:30]!r} is not a decimal size without leading zeroes")
    value = int(text)
    if value >= 2**63:
        raise Refusal(400, "size out of range")
    return value


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The request body, or :class:`Refusal` 400 if it is not one."""
    if len(body) > MAX_REQUEST_BYTES:
        raise Refusal(413, f"request body over {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "request body is not UTF-8") from None
    head, sep, note_text = text.partition("\n\n")
    if not sep:
        raise Refusal(400, "request body has no empty line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise Refusal(400, "request body must start with an 'old <size>' line")
    old_size = _decimal(lines[0][4:])
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise Refusal(400, f"over {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(400, "a consistency proof line is not base64") from None
        if len(h) != 32:
            raise Refusal(400, "a consistency proof line is not a 32-byte hash")
        proof.append(h)
    try:
        note = SignedNote.parse(note_text)
        checkpoint = Checkpoint.parse(note.text)
    except AiledgerError as exc:  # FormatError, a bad signature name (InvalidInput)
        raise Refusal(400, f"malformed checkpoint: {exc.message}") from None
    if checkpoint.size >= 2**63:
        raise Refusal(400, "checkpoint size out of range")
    if old_size == 0 and proof:
        raise Refusal(400, "the consistency proof from size 0 must be empty")
    return AddCheckpoint(old_size, tuple(proof), note, checkpoint)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: SignedNote) -> bytes:
    """The request body of ``add-checkpoint`` (what a log sends)."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + note.format()).encode()


def _state_name(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()[:32] + _STATE_SUFFIX


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Witness:
    """A witness: its cosigning key(s), the log keys it trusts per origin, its state directory.

    Create with the state directory (made if absent, locked for this process), then call
    :meth:`add_checkpoint` from any thread; :meth:`close` releases the lock."""

    def __init__(
        self,
        cosigners: Sequence[AnyNoteKey],
        logs: Mapping[str, Sequence[AnyNoteKey]],
        state_dir: Path,
    ) -> None:
        if not cosigners:
            raise ValueError("a witness needs a cosigning key")
        self.cosigners = tuple(cosigners)
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self.state_dir = state_dir
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(state_dir / "witness.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ConflictError(
                f"another witness process holds the state directory {state_dir}",
                hint="stop it first, or give another --state directory",
            ) from None
        self._latest: dict[str, Checkpoint] = {}
        for origin in self.logs:
            self._latest_load(origin)

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- state -----------------------------------------------------------------------------

    def _latest_load(self, origin: str) -> None:
        path = self.state_dir / _state_name(origin)
        stale = path.with_name(path.name + ".tmp")
        if stale.exists():  # a write that crashed before its rename: the old state stands
            stale.unlink()
        if not path.exists():
            return
        try:
            cp = Checkpoint.parse(SignedNote.parse(path.read_bytes()).text)
        except AiledgerError as exc:
            raise IntegrityError(f"witness state {path} is corrupt: {exc.message}") from None
        if cp.origin != origin:
            raise IntegrityError(f"witness state {path} holds log {cp.origin!r}, not {origin!r}")
        self._latest[origin] = cp

    def latest(self, origin: str) -> Checkpoint | None:
        """The latest checkpoint cosigned for ``origin`` (``None``: never)."""
        return self._latest.get(origin)

    def _persist(self, note: SignedNote) -> None:
        origin = Checkpoint.parse(note.text).origin
        path = self.state_dir / _state_name(origin)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, note.format().encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self.state_dir)

    # --- add-checkpoint --------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> str:
        """Check one ``add-checkpoint`` request; on success persist it and return the
        cosignature lines (``— name base64\\n`` each). Raises :class:`Refusal`."""
        req = parse_add_checkpoint(body)
        cp = req.checkpoint
        trusted = self.logs.get(cp.origin)
        if trusted is None:
            raise Refusal(404, f"unknown log {cp.origin[:100]!r}")
        if not any(_verifies(req.note, key) for key in trusted):
            raise Refusal(403, f"no signature by a trusted key of log {cp.origin!r} verifies")
        if req.old_size > cp.size:
            raise Refusal(400, f"old size {req.old_size} is above the checkpoint size {cp.size}")
        text = req.note.text.encode()
        with self._lock:
            latest = self._latest.get(cp.origin)
            latest_size = 0 if latest is None else latest.size
            if req.old_size != latest_size:
                raise Refusal(
                    409,
                    f"old size {req.old_size} is not the latest cosigned size {latest_size}",
                    size=latest_size,
                )
            if latest is not None and req.old_size == cp.size:
                if latest.root != cp.root or req.proof:
                    raise Refusal(409, f"another root at the cosigned size {cp.size}: a fork")
            elif latest is not None:
                try:
                    verify_consistency(latest.size, cp.size, latest.root, cp.root, req.proof)
                except AiledgerError as exc:
                    raise Refusal(
                        422, f"consistency proof does not verify: {exc.message}"
                    ) from None
            elif req.proof:  # old 0 with a proof was refused in parsing: kept as a guard
                raise Refusal(400, "the consistency proof from size 0 must be empty")
            sigs = [NoteSignature(c.name, c.key_id, c.sign(text)) for c in self.cosigners]
            if latest != cp:
                self._persist(SignedNote(req.note.text, (*req.note.signatures, *sigs)))
                self._latest[cp.origin] = cp
        return "".join(s.line() + "\n" for s in sigs)


def _verifies(note: SignedNote, key: AnyNoteKey) -> bool:
    try:
        note.verify_one(key)
    except AiledgerError:
        return False
    return True
