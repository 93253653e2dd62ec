"""in-toto Statement v1: subjects (name + digest set), a predicate type and a predicate.

::

    statement = make_statement([subject_from_file(path)], EvaluationPredicate(...))
    envelope = sign_statement(statement, [signer])          # DSSE, payload = RFC 8785 JSON
    verified = verify_statement(envelope, trusted_keys)     # signatures, then structure

The payload is the statement as RFC 8785 canonical JSON, so equal statements are equal
bytes and hash alike. :func:`verify_statement` fails closed: a bad signature raises
:class:`SignatureInvalid`; a payload that is not a valid statement, or whose ailedger
predicate does not validate, raises :class:`InvalidInput`. Statements with predicate types
ailedger does not know (e.g. model-signing's) verify with ``predicate`` left untyped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ailedger import _json
from ailedger.attest import dsse
from ailedger.attest.predicates import (
    Predicate,
    parse_predicate,
    registered_predicate,
    validation_message,
)
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity._signers import PublicKey, Signer

__all__ = [
    "STATEMENT_TYPE",
    "Statement",
    "Subject",
    "VerifiedStatement",
    "attest",
    "make_statement",
    "parse_digest",
    "sign_statement",
    "subject_from_digest",
    "subject_from_file",
    "verify_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

_HEX_LEN = {"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128, "blake3": 64}
_DIGEST_SPEC = re.compile(r"^([a-z0-9]+):([0-9a-fA-F]+)$")


class Subject(BaseModel):
    """An artifact the statement is about. Known hash algorithms need lower-case hex."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str
    digest: dict[str, str] = Field(min_length=1)

    @field_validator("digest")
    @classmethod
    def _check_digest(cls, value: dict[str, str]) -> dict[str, str]:
        for alg, hexdigest in value.items():
            if not re.fullmatch(r"[a-z0-9_-]+", alg):
                raise ValueError(f"digest algorithm {alg!r} must be lower-case")
            size = _HEX_LEN.get(alg)
            if size is not None and not re.fullmatch(rf"[0-9a-f]{{{size}}}", hexdigest):
                raise ValueError(f"{alg} digest must be {size} lower-case hex characters")
            if not hexdigest:
                raise ValueError(f"{alg} digest is empty")
        return value


class Statement(BaseModel):
    """An in-toto Statement v1. Field names follow the JSON (``_type``, ``predicateType``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    type: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[Subject] = Field(min_length=1)
    predicate_type: str = Field(alias="predicateType", min_length=1)
    predicate: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON: the DSSE payload and the bytes to hash."""
        try:
            return bytes(rfc8785.dumps(self.to_dict()))
        except (rfc8785.CanonicalizationError, ValueError) as exc:
            raise InvalidInput(f"statement cannot be canonicalised: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Statement:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc, "in-toto statement")) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> Statement:
        return cls.from_dict(_json.loads(data, what="statement"))

    def typed_predicate(self) -> Predicate | None:
        """The predicate as its registered class, or None for a type not registered (unknown:
        see :mod:`ailedger.attest.predicates`)."""
        if registered_predicate(self.predicate_type) is None:
            return None
        predicate = parse_predicate(self.predicate_type, self.predicate)
        predicate.check_subjects(self.subject)
        return predicate


def parse_digest(spec: str) -> tuple[str, str]:
    """``sha256:HEX`` -> ``("sha256", "hex")`` (lower-cased, length checked)."""
    match = _DIGEST_SPEC.match(spec.strip())
    if not match or match.group(1) not in _HEX_LEN:
        raise InvalidInput(f"not a digest {spec!r}: expected ALG:HEX, e.g. sha256:<64 hex>")
    alg, hexdigest = match.group(1), match.group(2).lower()
    if len(hexdigest) != _HEX_LEN[alg]:
        raise InvalidInput(f"{alg} digest must be {_HEX_LEN[alg]} hex characters")
    return alg, hexdigest


def subject_from_digest(spec: str, name: str | None = None) -> Subject:
    """A subject from ``sha256:HEX``; its name defaults to the digest text."""
    alg, hexdigest = parse_digest(spec)
    return Subject(name=name if name is not None else f"{alg}:{hexdigest}", digest={alg: hexdigest})


def subject_from_file(path: Path, name: str | None = None) -> Subject:
    """A subject for a file: its sha256, named by ``name`` or the file name."""
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"{path} is a directory", hint="fingerprint it first and pass the digest"
        ) from None
    return Subject(name=name if name is not None else path.name, digest={"sha256": digest})


def make_statement(subjects: Sequence[Subject], predicate: Predicate) -> Statement:
    """A statement about ``subjects``; the predicate checks it agrees with them."""
    if not subjects:
        raise InvalidInput("a statement needs at least one subject")
    predicate.check_subjects(subjects)
    return Statement.from_dict(
        {
            "_type": STATEMENT_TYPE,
            "subject": [s.model_dump() for s in subjects],
            "predicateType": predicate.PREDICATE_TYPE,
            "predicate": predicate.to_dict(),
        }
    )


def sign_statement(statement: Statement, signers: Sequence[Signer]) -> dsse.Envelope:
    """A DSSE envelope over the statement's canonical JSON, signed by every signer."""
    return dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, statement.canonical_json(), signers)


def attest(
    predicate: Predicate, subjects: Sequence[Subject], signers: Sequence[Signer]
) -> dsse.Envelope:
    """Build and sign a statement. The CLI writes (and later logs) what this returns."""
    return sign_statement(make_statement(subjects, predicate), signers)


@dataclass(frozen=True)
class VerifiedStatement:
    """A statement whose envelope verified, with the keys that signed it (``keyid_fallbacks``:
    see :class:`~ailedger.attest.dsse.VerifiedEnvelope`)."""

    statement: Statement
    predicate: Predicate | None
    signers: tuple[PublicKey, ...]
    keyid_fallbacks: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": True,
            "predicateType": self.statement.predicate_type,
            "subjects": [s.model_dump() for s in self.statement.subject],
            "signers": [k.keyid for k in self.signers],
            "keyid_fallbacks": [
                {"keyid": claimed, "verified_by": ours} for claimed, ours in self.keyid_fallbacks
            ],
            "typed_predicate": self.predicate is not None,
        }


def verify_statement(
    envelope: dsse.Envelope, trusted: Iterable[PublicKey], *, threshold: int = 1
) -> VerifiedStatement:
    """Check the signatures (at least ``threshold`` trusted signers), then the statement."""
    verified = dsse.verify(
        envelope, trusted, threshold=threshold, payload_type=dsse.PAYLOAD_TYPE_IN_TOTO
    )
    statement = Statement.from_json(verified.payload)
    return VerifiedStatement(
        statement, statement.typed_predicate(), verified.signers, verified.keyid_fallbacks
    )
