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

Exit code 2 is left to the CLI framework for usage errors.

A :class:`VerificationFailed` also carries a stable ``code`` naming what failed
(``checkpoint-signature-invalid``, ``inclusion-proof-invalid``, ...): the list and what each
means is :mod:`ailedger._codes` (and ``docs/verification-codes.md``). A raise that names no
code gets its class's ``default_code``.
"""

from __future__ import annotations

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
    "PolicyError",
    "ProofInvalid",
    "SignatureInvalid",
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
