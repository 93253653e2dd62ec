"""A predicate type registered once is gate evidence, an audit item and a lineage item."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from _workflow_util import Setup, make_setup
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    Outcome,
    Predicate,
    PredicateKind,
    register_predicate,
    unregister_predicate,
)
from ailedger.attest.statements import attest, verify_statement
from ailedger.audit import build_report
from ailedger.registry import Registry
from ailedger.registry._records import named_subject
from ailedger.registry._refs import VersionRef
from ailedger.registry.lineage import lineage
from ailedger.registry.policy import Evidence, ModelRef, evaluate_policy, parse_policy

POLICY = parse_policy("version = 1\n[all.audits.fairness]\n")
OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


class FairnessPredicate(Predicate):
    """A bias audit with a shape of its own: one disparity and the most it may be."""

    NAME: ClassVar[str] = "fairness-probe"
    PREDICATE_TYPE: ClassVar[str] = "https://example.com/predicates/fairness/v1"
    PURPOSE: ClassVar[str] = "a demographic-parity audit"
    KIND: ClassVar[PredicateKind] = "evaluation"
    GATE_EVIDENCE: ClassVar[bool] = True
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    disparity: float
    max_disparity: float

    def as_outcome(self) -> Outcome:
        passed = self.disparity <= self.max_disparity
        return Outcome("fairness", passed, {"disparity": self.disparity})


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


@pytest.fixture
def registered() -> Iterator[None]:
    register_predicate(FairnessPredicate)
    yield
    unregister_predicate(FairnessPredicate)


def _log_fairness(setup: Setup, reg: Registry, ref: VersionRef, disparity: float) -> int:
    row = reg.model(ref)
    pred = FairnessPredicate(disparity=disparity, max_disparity=0.1)
    envelope = attest(pred, [named_subject(ref, row.digest)], [setup.signer("qa")])
    index = reg.log.append(envelope.to_json())
    reg.sync()
    return index


def test_unregistered_type_is_never_counted_and_said_so(setup: Setup) -> None:
    ref = VersionRef("triage", "1")
    with setup.registry() as reg:
        reg.register_model(setup.model, ref, setup.signer("trainer"))
        index = _log_fairness(setup, reg, ref, 0.02)
        result = reg.gate(ref, POLICY, "prod")
        tree = lineage(reg, ref)
        report = build_report(reg, audit_names=("fairness",))
    assert [u.code for u in result.unmet] == ["audit-missing"]
    assert [(e.ref, e.reason) for e in result.ignored] == [
        (f"entry {index}", "unknown-predicate-type")
    ]
    assert tree.evaluations == []
    assert report.releases[0].evaluations == []
    assert report.releases[0].bias_audit == "missing"


@pytest.mark.usefixtures("registered")
def test_registered_type_is_gate_evidence_audit_item_and_lineage_item(setup: Setup) -> None:
    ref = VersionRef("triage", "1")
    with setup.registry() as reg:
        reg.register_model(setup.model, ref, setup.signer("trainer"))
        index = _log_fairness(setup, reg, ref, 0.02)
        result = reg.gate(ref, POLICY, "prod")
        tree = lineage(reg, ref)
        report = build_report(reg, audit_names=("fairness",))
        _log_fairness(setup, reg, ref, 0.5)  # a later failed audit is the one that counts
        failed = reg.gate(ref, POLICY, "prod")
    assert result.passed, result.lines()
    assert result.met[0].satisfied_by == (f"entry {index}",)
    assert result.ignored == ()
    assert [u.code for u in failed.unmet] == ["audit-failed"]
    assert [(i.details["name"], i.details["passed"]) for i in tree.evaluations] == [
        ("fairness", True)
    ]
    release = report.releases[0]
    assert [(i.details["name"], i.details["metrics"]) for i in release.evaluations] == [
        ("fairness", {"disparity": 0.02})
    ]
    assert release.bias_audit == "passed"


def test_registered_non_evidence_type_is_screened_out_by_the_gate(setup: Setup) -> None:
    """A deployment handed to the gate as evidence is listed, not silently dropped."""
    ref = VersionRef("triage", "1")
    with setup.registry() as reg:
        reg.register_model(setup.model, ref, setup.signer("trainer"))
        reg.deploy(ref, "dev", setup.signer("trainer"), OPEN)
        row = reg.model(ref)
        deploy = reg.log.query(subject=row.digest, limit=None)[-1]
        keys = [k.public_key for k in setup.store.list_keys()]
        verified = verify_statement(Envelope.from_json(deploy.envelope), keys)
        now = datetime.now(UTC)
        result = evaluate_policy(
            OPEN,
            "prod",
            model_ref=ModelRef(ref.name, ref.version, row.digest),
            statements=[Evidence.from_verified(verified, ref="d", logged_at=now)],
            role_of=reg.backend.role_of,
            now=now,
        )
    assert [(e.ref, e.reason) for e in result.ignored] == [("d", "not-gate-evidence")]
