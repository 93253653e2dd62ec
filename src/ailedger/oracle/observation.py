"""An oracle's observation: what one oracle saw, computed and claims, for one feed and epoch.

:class:`Observation` names the feed, the epoch (round), the value (an integer, e.g. a drought
probability in basis points), the input batch (its RFC 9162 Merkle ``input_root`` and
``input_size``, and the batch file's ``input_sha256``), the model's subject digest, the
oracle's Ethereum address and the time. :meth:`Observation.statement` wraps it as an in-toto
statement whose subject is the input batch file and whose predicate is an
:class:`OracleObservationPredicate` (``https://ailedger.dev/predicates/oracle-observation/v1``),
ready for :func:`ailedger.attest.statements.sign_statement`.

Aggregation. :func:`median_of` is the lower median: the element at index ``(n - 1) // 2`` of
the sorted values (for an even count, the smaller of the two middle values), so the result is
always one of the observed integers and no rounding is needed (a contract can compute the same).
With at least ``2f + 1`` values of which at most ``f`` come from lying oracles, the median lies
within the range of the honest values: at least ``f`` values sit on each side of the median
index, so the liars cannot reach it from either side alone (:func:`median_is_honest` checks a
given case; :func:`min_reports` gives ``2f + 1``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    Hex256,
    Predicate,
    Text,
    validation_message,
)
from ailedger.attest.statements import Statement, Subject, make_statement
from ailedger.errors import InvalidInput

__all__ = [
    "INT256_MAX",
    "INT256_MIN",
    "Observation",
    "OracleObservationPredicate",
    "median_is_honest",
    "median_of",
    "min_reports",
]

INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1


def _address(value: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("must be an Ethereum address (0x and 40 hex characters)")
    return value


Address = Annotated[str, AfterValidator(_address)]
Int256 = Annotated[int, Field(ge=INT256_MIN, le=INT256_MAX, strict=True)]


class OracleObservationPredicate(Predicate):
    """One oracle's observation for ``feed`` at ``epoch`` (module docstring)."""

    NAME: ClassVar[str] = "oracle-observation"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "oracle-observation/v1"
    PURPOSE: ClassVar[str] = "one oracle's signed observation (read by the oracle package)"

    feed: Text
    epoch: Annotated[int, Field(ge=0, strict=True)]
    value: Int256
    input_root: Hex256
    input_size: Annotated[int, Field(ge=1, strict=True)]
    model_digest: Hex256
    oracle: Address
    time: AwareDatetime


class Observation(BaseModel):
    """The observation record an oracle signs (its fields are the predicate's, plus the
    sha256 of the batch file, which becomes the statement's subject)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    feed: Text
    epoch: Annotated[int, Field(ge=0, strict=True)]
    value: Int256
    input_root: Hex256
    input_size: Annotated[int, Field(ge=1, strict=True)]
    input_sha256: Hex256
    input_name: Text = "batch"
    model_digest: Hex256
    oracle: Address
    time: AwareDatetime

    @classmethod
    def create(cls, **fields: object) -> Observation:
        """Validate ``fields``; one :class:`InvalidInput` names the first bad field."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc, "oracle observation")) from None

    def predicate(self) -> OracleObservationPredicate:
        data = self.model_dump(exclude={"input_sha256", "input_name"})
        return OracleObservationPredicate.model_validate(data)

    def statement(self) -> Statement:
        """An in-toto statement: subject = the batch file, predicate = the observation."""
        subject = Subject(name=self.input_name, digest={"sha256": self.input_sha256})
        return make_statement([subject], self.predicate())

    @classmethod
    def from_statement(cls, statement: Statement) -> Observation:
        """Back from a statement made by :meth:`statement` (checks the predicate type)."""
        if statement.predicate_type != OracleObservationPredicate.PREDICATE_TYPE:
            raise InvalidInput(f"not an oracle observation: {statement.predicate_type}")
        if len(statement.subject) != 1 or "sha256" not in statement.subject[0].digest:
            raise InvalidInput("an oracle observation names one input batch by sha256")
        subject = statement.subject[0]
        try:
            pred = OracleObservationPredicate.model_validate(statement.predicate)
            return cls(
                **pred.model_dump(),
                input_sha256=subject.digest["sha256"],
                input_name=subject.name,
            )
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc, "oracle observation")) from None

    @property
    def timestamp(self) -> int:
        """Unix seconds, as a contract sees time."""
        return int(self.time.timestamp())


def median_of(values: Sequence[int]) -> int:
    """The lower median: ``sorted(values)[(len(values) - 1) // 2]``."""
    if not values:
        raise InvalidInput("the median of no observations is undefined")
    return sorted(values)[(len(values) - 1) // 2]


def min_reports(f: int) -> int:
    """How many observations keep the median within the honest range with ``f`` liars."""
    if f < 0:
        raise InvalidInput("f must not be negative")
    return 2 * f + 1


def median_is_honest(honest: Sequence[int], lying: Sequence[int]) -> bool:
    """Whether the median of all values lies within ``[min(honest), max(honest)]``."""
    if not honest:
        raise InvalidInput("at least one honest observation is needed")
    return min(honest) <= median_of([*honest, *lying]) <= max(honest)
