"""The policy's ``max_epsilon`` (issue 17): a model may be released only with a logged
differential-privacy accounting within the limit, covering every contributor; no accounting
fails closed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest.predicates import EvaluationPredicate, Predicate
from ailedger.attest.privacy import PrivacyAccountingPredicate, PrivacyBudget
from ailedger.attest.statements import (
    make_statement,
    sign_statement,
    subject_from_digest,
    verify_statement,
)
from ailedger.errors import PolicyError
from ailedger.identity.keys import Secp256k1Signer
from ailedger.registry.policy import Evidence, GateResult, ModelRef, evaluate_policy, parse_policy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
MODEL = ModelRef("fl-model", "1", DIGEST)


class Org:
    """Keys and the roles they hold: the gate's ``role_of``."""

    def __init__(self) -> None:
        self.members: dict[str, tuple[set[str], str]] = {}

    def key(self, org: str, *roles: str) -> Secp256k1Signer:
        signer = Secp256k1Signer.generate()
        self.members[signer.keyid] = (set(roles), org)
        return signer

    def role_of(self, keyid: str) -> tuple[Collection[str], str | None] | None:
        return self.members.get(keyid)


def evidence(
    ref: str,
    predicate: Predicate,
    signers: Sequence[Secp256k1Signer],
    age: timedelta = timedelta(hours=1),
    digest: str = DIGEST,
) -> Evidence:
    statement = make_statement([subject_from_digest(digest, "fl-model")], predicate)
    verified = verify_statement(sign_statement(statement, signers), [s.public_key for s in signers])
    return Evidence.from_verified(verified, ref=ref, logged_at=NOW - age)


def gate(org: Org, statements: list[Evidence], policy: str) -> GateResult:
    return evaluate_policy(
        parse_policy(policy),
        "prod",
        model_ref=MODEL,
        statements=statements,
        role_of=org.role_of,
        now=NOW,
    )


def codes(result: GateResult) -> list[str]:
    return [u.code for u in result.unmet]


POLICY = """
[all.evaluations]
accuracy = "accuracy >= 0.9"
[all]
max_epsilon = 4.0
"""
A, B = "0x" + "ab" * 20, "0x" + "cd" * 20


def accounting(
    eps_a: float, eps_b: float, *, all_private: bool = True
) -> PrivacyAccountingPredicate:
    return PrivacyAccountingPredicate(
        epsilon=max(eps_a, eps_b),
        delta=2e-5,
        composition="basic",
        mechanism="gaussian-clipped-update",
        contributors=[
            PrivacyBudget(contributor=A, epsilon=eps_a, delta=2e-5, rounds=4),
            PrivacyBudget(contributor=B, epsilon=eps_b, delta=1e-5, rounds=2),
        ],
        all_private=all_private,
    )


def accuracy_ok(org: Org) -> list[Evidence]:
    return [
        evidence(
            "log:1",
            EvaluationPredicate(metric="accuracy", value=0.95, comparator=">=", threshold=0.9),
            [org.key("acme", "qa")],
        )
    ]


def test_within_the_budget_passes() -> None:
    org = Org()
    result = gate(
        org, [*accuracy_ok(org), evidence("log:2", accounting(3.5, 1.0), [org.key("acme")])], POLICY
    )
    assert result.passed, result.lines()
    assert any(m.requirement == "max_epsilon" and m.satisfied_by == ("log:2",) for m in result.met)


def test_no_accounting_fails_closed() -> None:
    org = Org()
    result = gate(org, accuracy_ok(org), POLICY)
    assert codes(result) == ["privacy-accounting-missing"]


def test_accounting_of_another_model_does_not_count() -> None:
    org = Org()
    other = evidence("log:2", accounting(1.0, 1.0), [org.key("acme")], digest=OTHER)
    result = gate(org, [*accuracy_ok(org), other], POLICY)
    assert codes(result) == ["privacy-accounting-missing"]


def test_over_the_budget_is_refused() -> None:
    org = Org()
    result = gate(
        org, [*accuracy_ok(org), evidence("log:2", accounting(1.0, 4.5), [org.key("acme")])], POLICY
    )
    assert codes(result) == ["privacy-budget-exceeded"]
    assert "4.5" in result.unmet[0].message


def test_a_contributor_without_dp_is_refused() -> None:
    org = Org()
    ev = evidence("log:2", accounting(1.0, 1.0, all_private=False), [org.key("acme")])
    result = gate(org, [*accuracy_ok(org), ev], POLICY)
    assert codes(result) == ["privacy-budget-exceeded"]
    assert "without differential privacy" in result.unmet[0].message


def test_the_latest_accounting_counts() -> None:
    org = Org()
    key = org.key("acme")
    old = evidence("log:2", accounting(1.0, 1.0), [key], age=timedelta(hours=3))
    new = evidence("log:3", accounting(9.0, 1.0), [key])
    assert codes(gate(org, [*accuracy_ok(org), old, new], POLICY)) == ["privacy-budget-exceeded"]


def test_allowed_signers_narrow_the_accounting() -> None:
    org = Org()
    stranger = org.key("acme")
    allowed = org.key("acme")
    policy = POLICY + f'allowed_signers = ["{allowed.keyid}"]\n'
    ev = evidence("log:2", accounting(1.0, 1.0), [stranger])
    result = gate(
        org,
        [*accuracy_ok(org), ev],
        policy.replace('[all.evaluations]\naccuracy = "accuracy >= 0.9"\n', ""),
    )
    assert codes(result) == ["privacy-accounting-missing"]


def test_max_epsilon_alone_is_a_requirement() -> None:
    org = Org()
    assert codes(gate(org, [], "[all]\nmax_epsilon = 1\n")) == ["privacy-accounting-missing"]


@pytest.mark.parametrize("value", ["0", "-1", "true", '"3"', "inf", "nan"])
def test_bad_max_epsilon_is_refused_with_its_line(value: str) -> None:
    with pytest.raises(PolicyError, match=r"policy.toml:3: max_epsilon must be a positive number"):
        parse_policy(f"version = 1\n[all]\nmax_epsilon = {value}\n", "policy.toml")


@given(st.floats(min_value=1e-6, max_value=1e6), st.floats(min_value=1e-6, max_value=1e6))
@settings(max_examples=examples(60))
def test_max_epsilon_round_trips_and_env_overrides(base: float, env: float) -> None:
    policy = parse_policy(f"[all]\nmax_epsilon = {base!r}\n[env.prod]\nmax_epsilon = {env!r}\n")
    assert policy.section_for("prod").max_epsilon == env
    only_all = parse_policy(f"[all]\nmax_epsilon = {base!r}\n")
    assert only_all.section_for("prod").max_epsilon == base


def test_a_plain_evaluation_named_differential_privacy_does_not_count() -> None:
    """An ordinary evaluation under the accounting's name, reporting a small epsilon (what any
    `ailedger eval` run could sign for a model trained without DP), is not an accounting: it
    lists no contributor and says nothing of who trained without DP. The gate refuses it."""
    org = Org()
    claimed = EvaluationPredicate(name="differential-privacy", metrics={"epsilon": 0.5})
    assert claimed.passed
    result = gate(org, [*accuracy_ok(org), evidence("log:2", claimed, [org.key("acme")])], POLICY)
    assert codes(result) == ["privacy-accounting-missing"]
    assert "privacy-accounting" in " ".join(e.message for e in result.unmet[0].excluded)
    # and it does not shadow a real, older accounting that is over the limit
    over = evidence("log:3", accounting(9.0, 1.0), [org.key("acme")], age=timedelta(hours=3))
    result = gate(
        org,
        [*accuracy_ok(org), over, evidence("log:4", claimed, [org.key("acme")])],
        POLICY,
    )
    assert codes(result) == ["privacy-budget-exceeded"]


def test_epsilon_exactly_at_the_limit_passes_and_just_above_is_refused() -> None:
    org = Org()
    at = evidence("log:2", accounting(4.0, 1.0), [org.key("acme")])
    assert gate(org, [*accuracy_ok(org), at], POLICY).passed
    above = evidence("log:2", accounting(4.000000000000001, 1.0), [org.key("acme")])
    assert codes(gate(org, [*accuracy_ok(org), above], POLICY)) == ["privacy-budget-exceeded"]


@pytest.mark.parametrize("text", ["[all]\nmax_epsilon =", "[all]\nmax_epsilon = 4.0\n[al"])
def test_a_truncated_policy_is_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text, "policy.toml")
