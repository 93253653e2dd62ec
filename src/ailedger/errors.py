"""Errors raised by ailedger, each with the exit code the CLI returns for it.

::

    AiledgerError                      70  (unexpected; subclasses set their own)
    +-- VerificationFailed              1  a proof, signature, checkpoint or gate does not hold
    |   +-- ProofInvalid                1
    |   +-- SignatureInvalid            1
    |   +-- GateFailed                  1
    +-- InvalidInput (ValueError)       3  the input is malformed
    |   +-- FormatError                 3  a file's bytes do not parse (header, row, line)
    |   +-- PolicyError                 3  a policy file is wrong (with its line)
    +-- NotFound (LookupError)          4  a file, key, model or dataset reference is unknown
    +-- KeyAccessError                  5  a key cannot be used
    |   +-- WrongPassword               5
    +-- WorkspaceError                  6  no workspace, or a broken config
    +-- IntegrityError                  7  stored state is corrupt (never silently repaired)
    +-- ChainError                      8  the chain cannot be used
    |   +-- NodeUnavailable             8  the node is down or unreachable
    |   +-- TransactionReverted         9  a transaction or call reverted
    +-- ConflictError                  10  the request conflicts with recorded state
    +-- StorageError                   11  the disk is full, read-only, not permitted or failing
    +-- OutOfStep                      12  the log, the registry index and the chain disagree
    +-- ServiceError                   13  a log service is down, failing or misbehaving

Exit code 2 is left to the CLI framework for usage errors.

A :class:`VerificationFailed` also carries a stable ``code`` naming what failed
(``checkpoint-signature-invalid``, ``inclusion-proof-invalid``, ...): the list and what each
means is :mod:`ailedger._codes` (and ``docs/verification-codes.md``). A raise that names no
code gets its class's ``default_code``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from typing import ClassVar

from ailedger._codes import VERIFICATION_CODES, VerificationCode

__all__ = [
    "EXIT_CODES",
    "AiledgerError",
    "ChainError",
    "ConflictError",
    "FormatError",
    "GateFailed",
    "IntegrityError",
    "InvalidInput",
    "KeyAccessError",
    "NodeUnavailable",
    "NotFound",
    "OutOfStep",
    "PolicyError",
    "ProofInvalid",
    "ServiceError",
    "SignatureInvalid",
    "StorageError",
    "TransactionReverted",
    "VerificationFailed",
    "WorkspaceError",
    "WrongPassword",
]

#: Exit code -> meaning, as documented in the README.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "verification failed (proof, signature, checkpoint, gate)",
    2: "usage error (unknown option, missing argument)",
    3: "invalid input (malformed file, bad value)",
    4: "not found (file, key, model or dataset reference)",
    5: "key unusable (wrong password, corrupt keystore)",
    6: "workspace missing or misconfigured",
    7: "stored state is corrupt",
    8: "chain unavailable",
    9: "transaction reverted",
    10: "conflict with recorded state",
    11: "storage fault (disk full, read-only, permission denied, I/O error)",
    12: "workspace out of step (log, registry index and chain disagree)",
    13: "log service unavailable (unreachable, timeout, 5xx, 429, malformed or oversized answer)",
    70: "internal error",
}


class AiledgerError(Exception):
    """Root of every error ailedger raises on purpose.

    ``hint`` is an optional sentence telling the user what to do next.
    """

    exit_code: ClassVar[int] = 70
    #: A stable code naming the failure (set on verification failures), or None.
    code: str | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("exit_code", cls.exit_code)
        if code not in EXIT_CODES or code in (0, 2):
            raise TypeError(f"{cls.__name__}.exit_code={code} is not a documented error code")

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class VerificationFailed(AiledgerError):
    """A check does not hold; ``code`` (one of :mod:`ailedger._codes`) says which."""

    exit_code = 1
    default_code: ClassVar[VerificationCode] = "verification-failed"
    code: VerificationCode

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.default_code not in VERIFICATION_CODES:
            raise TypeError(f"{cls.__name__}.default_code={cls.default_code!r} is not listed")

    def __init__(
        self, message: str, *, code: VerificationCode | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code if code is not None else self.default_code
        if self.code not in VERIFICATION_CODES:  # a caller that bypassed the type checker
            raise TypeError(f"verification code {self.code!r} is not listed in ailedger._codes")


class ProofInvalid(VerificationFailed):
    exit_code = 1
    default_code = "proof-invalid"


class SignatureInvalid(VerificationFailed):
    exit_code = 1
    default_code = "signature-invalid"


class GateFailed(VerificationFailed):
    exit_code = 1
    default_code = "gate-failed"


class InvalidInput(AiledgerError, ValueError):
    exit_code = 3


class FormatError(InvalidInput):
    exit_code = 3


class PolicyError(InvalidInput):
    exit_code = 3


class NotFound(AiledgerError, LookupError):
    exit_code = 4


class KeyAccessError(AiledgerError):
    exit_code = 5


class WrongPassword(KeyAccessError):
    exit_code = 5


class WorkspaceError(AiledgerError):
    exit_code = 6


class IntegrityError(AiledgerError):
    exit_code = 7


class ChainError(AiledgerError):
    exit_code = 8


class NodeUnavailable(ChainError):
    exit_code = 8


class TransactionReverted(ChainError):
    exit_code = 9


class ConflictError(AiledgerError):
    exit_code = 10


class OutOfStep(AiledgerError):
    """The log, the registry index and the chain disagree (``ailedger status`` lists where).

    Not corruption (each store is intact) and not a refusal of the request as such: a step
    the log records is missing elsewhere (a command killed between the log and the chain),
    or the chain holds state the log does not explain. ``ailedger status --repair`` finishes
    what the log proves."""

    exit_code = 12


class ServiceError(AiledgerError):
    """A log service (``ailedger serve``) cannot be used: unreachable, timed out, failing
    (5xx), rate limiting (429) or answering something that is not what the protocol says
    (a non-JSON or oversized body). A refusal of the request itself (4xx) is the error its
    problem names instead; a checkpoint or proof that does not verify is a
    :class:`VerificationFailed`."""

    exit_code = 13


#: errno -> the cause a user reads; these are faults of the storage, not of the data.
_OS_CAUSES: dict[int, str] = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an I/O error",
}

#: SQLite primary result codes (the low byte of ``sqlite_errorcode``) -> cause.
_SQLITE_CAUSES: dict[int, str] = {
    13: "the disk is full",  # SQLITE_FULL
    8: "the database is read-only (file system, permissions or a read-only open)",  # READONLY
    14: "the file cannot be opened (read-only or missing directory, or permission denied)",
    3: "permission denied",  # SQLITE_PERM
    10: "an I/O error",  # SQLITE_IOERR
}
_SQLITE_MESSAGES: tuple[tuple[str, int], ...] = (
    ("database or disk is full", 13),
    ("readonly database", 8),
    ("unable to open database file", 14),
    ("disk i/o error", 10),
)


def _sqlite_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_CAUSES:
        return code & 0xFF
    text = str(exc).lower()
    return next((c for needle, c in _SQLITE_MESSAGES if needle in text), None)


def _no_space(path: str | os.PathLike[str]) -> bool:
    """True when the file system holding ``path`` has (next to) no room left."""
    probe = os.path.dirname(os.path.abspath(path)) or "."
    try:
        fs = os.statvfs(probe)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < _LOW_SPACE


#: Below this many free bytes, an I/O error from SQLite is a full disk (a page and its WAL
#: frame do not fit).
_LOW_SPACE = 1 << 20


class StorageError(AiledgerError):
    """The storage failed, not the data: disk full, read-only, permission denied, I/O error.

    Nothing was half-written on purpose (every store writes in transactions); free space or
    fix the permissions and run the command again. :meth:`from_exception` recognises such
    faults in an ``OSError`` or a ``sqlite3`` error, and answers None for anything else (a
    corrupt database stays an :class:`IntegrityError`).
    """

    exit_code = 11

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        cause: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.cause = cause

    @classmethod
    def from_exception(
        cls, exc: BaseException, path: str | os.PathLike[str] | None = None
    ) -> StorageError | None:
        """The storage fault ``exc`` reports (on ``path``), or None if it is not one."""
        if isinstance(exc, StorageError):
            return exc
        cause: str | None = None
        if isinstance(exc, sqlite3.Error):
            code = _sqlite_code(exc)
            cause = None if code is None else _SQLITE_CAUSES[code]
            if code == 10 and path is not None and _no_space(path):
                cause = "the disk is full"  # SQLite reports ENOSPC on the WAL as an I/O error
        elif isinstance(exc, OSError) and exc.errno is not None:
            cause = _OS_CAUSES.get(exc.errno)
            if path is None and exc.filename is not None:
                path = os.fsdecode(exc.filename)
        if cause is None:
            return None
        where = os.fspath(path) if path is not None else "the workspace"
        if cause.startswith("the disk"):
            hint = "free some space and run the command again; nothing was half-written"
        elif cause.startswith("an I/O"):
            hint = "check the disk (dmesg, SMART) before running the command again"
        else:
            hint = "make the workspace writable (or use a read-only command) and run again"
        return cls(f"storage fault at {where}: {cause}", path=where, cause=cause, hint=hint)
