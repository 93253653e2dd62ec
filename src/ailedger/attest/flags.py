"""Anomaly flags and their acknowledgements: two registered predicate types.

::

    AnomalyFlagPredicate      https://ailedger.dev/predicates/anomaly-flag/v1
    AcknowledgementPredicate  https://ailedger.dev/predicates/acknowledgement/v1

A flag says "the model with ``model_digest`` (logged at ``model_entry``) scored the dataset
``dataset_digest`` (logged at ``dataset_entry``) at ``score``, below ``threshold``": signed
by whoever ran the model, with the dataset's digest among the statement's subjects. An
acknowledgement is another party's signed receipt of a logged statement, named by its entry
(:class:`~ailedger.attest.predicates.EventLink`: index and leaf hash), with the role it
acknowledges in. Both are registered on import (as :mod:`.slsa` registers SLSA provenance,
when :mod:`ailedger.attest` loads), so ``ailedger attest anomaly-flag`` and ``attest
acknowledgement`` sign them too; neither is gate evidence nor shown by the audit report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from pydantic import AwareDatetime, FiniteFloat

from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    Digest,
    EventLink,
    Predicate,
    PredicateKind,
    Text,
    register_predicate,
)
from ailedger.errors import InvalidInput

__all__ = ["AcknowledgementPredicate", "AnomalyFlagPredicate"]


class _Subject(Protocol):  # what check_subjects reads of a statement's subject
    @property
    def digest(self) -> dict[str, str]: ...


@register_predicate
class AnomalyFlagPredicate(Predicate):
    """A model flagged a dataset (a sensor batch) as anomalous, with its score."""

    NAME: ClassVar[str] = "anomaly-flag"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "anomaly-flag/v1"
    PURPOSE: ClassVar[str] = "a model flagged a dataset as anomalous: score, threshold, model"
    KIND: ClassVar[PredicateKind] = "other"

    dataset_digest: Digest
    dataset_entry: EventLink
    model_digest: Digest
    model_entry: EventLink
    score: FiniteFloat
    threshold: FiniteFloat
    detector: Text
    time: AwareDatetime

    def check_subjects(self, subjects: Sequence[_Subject]) -> None:
        alg, _, value = self.dataset_digest.partition(":")
        if not any(s.digest.get(alg) == value for s in subjects):
            raise InvalidInput(
                f"anomaly flag: the flagged dataset {self.dataset_digest} is not a subject"
            )


@register_predicate
class AcknowledgementPredicate(Predicate):
    """A party acknowledges a logged statement (an anomaly flag, say) by its entry."""

    NAME: ClassVar[str] = "acknowledgement"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "acknowledgement/v1"
    PURPOSE: ClassVar[str] = "a party acknowledges a logged statement, named by its entry"
    KIND: ClassVar[PredicateKind] = "other"

    entry: EventLink
    acknowledged_type: Text
    role: Text
    comment: Text | None = None
    time: AwareDatetime
