"""Differential-privacy accounting of a model: the (epsilon, delta) its training spent.

:class:`PrivacyAccountingPredicate` is an ``evaluation`` the gate reads under the name
:data:`PRIVACY_EVALUATION` (metrics ``epsilon`` and ``delta``): a policy's ``max_epsilon``
requires one and refuses a model whose epsilon is larger (fail closed: no accounting, no
release). Each contributor's budget is listed with its own (epsilon, delta); the model's
epsilon is the largest of them (each contributor's data is protected by its own budget), under
the composition named in ``composition`` (``basic``: the sum over rounds).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    Outcome,
    Predicate,
    PredicateKind,
    Text,
    register_predicate,
)

__all__ = [
    "PRIVACY_ACCOUNTING_TYPE",
    "PRIVACY_EVALUATION",
    "PrivacyAccountingPredicate",
    "PrivacyBudget",
]

#: The evaluation name the gate's ``max_epsilon`` reads.
PRIVACY_EVALUATION = "differential-privacy"
#: The predicate type of a privacy accounting (what the gate's ``max_epsilon`` reads).
PRIVACY_ACCOUNTING_TYPE = PREDICATE_URI_PREFIX + "privacy-accounting/v1"

Epsilon = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Delta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class PrivacyBudget(BaseModel):
    """What one contributor spent over all its rounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contributor: Text
    epsilon: Epsilon
    delta: Delta
    rounds: Annotated[int, Field(ge=0)]


@register_predicate
class PrivacyAccountingPredicate(Predicate):
    """The privacy a model's training spent, per contributor and in all."""

    NAME: ClassVar[str] = "privacy-accounting"
    PREDICATE_TYPE: ClassVar[str] = PRIVACY_ACCOUNTING_TYPE
    PURPOSE: ClassVar[str] = (
        "the differential privacy (epsilon, delta) a model's training spent: gate evidence "
        "for max_epsilon"
    )
    KIND: ClassVar[PredicateKind] = "evaluation"
    GATE_EVIDENCE: ClassVar[bool] = True
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    epsilon: Epsilon
    delta: Delta
    composition: Literal["basic"]
    mechanism: Text
    contributors: list[PrivacyBudget] = Field(min_length=1)
    #: Contributors that trained without DP: their data has no guarantee, so epsilon is
    #: infinite for them; a model with any is reported with ``all_private`` false.
    all_private: bool

    @model_validator(mode="after")
    def _totals(self) -> PrivacyAccountingPredicate:
        worst = max(c.epsilon for c in self.contributors)
        if abs(worst - self.epsilon) > 1e-9 * max(1.0, worst):
            raise ValueError(f"epsilon {self.epsilon} is not the largest contributor's {worst}")
        if max(c.delta for c in self.contributors) > self.delta + 1e-15:
            raise ValueError("delta is smaller than a contributor's delta")
        return self

    def as_outcome(self) -> Outcome:
        return Outcome(
            PRIVACY_EVALUATION,
            self.all_private,
            {"epsilon": self.epsilon, "delta": self.delta},
            tool="ailedger.fl",
        )
