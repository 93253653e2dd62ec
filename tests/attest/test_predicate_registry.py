"""The registry of predicate types: one declaration per type, checked, read by every consumer."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import ClassVar

import pytest

import ailedger
from ailedger.attest.flags import AcknowledgementPredicate, AnomalyFlagPredicate
from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    PREDICATES,
    ApprovalPredicate,
    DeploymentPredicate,
    EvaluationPredicate,
    InferencePredicate,
    ModelPredicate,
    Outcome,
    Predicate,
    PredicateKind,
    predicate_class,
    predicate_types,
    register_predicate,
    registered_predicate,
    unregister_predicate,
)
from ailedger.attest.privacy import PrivacyAccountingPredicate
from ailedger.attest.slsa import SlsaProvenancePredicate

SRC = Path(ailedger.__file__).parent
#: The registered types of no registry kind (nothing reads them field by field).
OTHER_KIND = (SlsaProvenancePredicate, AnomalyFlagPredicate, AcknowledgementPredicate)


def test_builtin_types_and_what_reads_them() -> None:
    assert list(PREDICATES) == [
        "dataset", "model", "evaluation", "approval", "deployment", "inference",
        "anomaly-flag", "acknowledgement", "privacy-accounting", "slsa-provenance",
    ]  # fmt: skip
    assert set(predicate_types("gate")) == {
        EvaluationPredicate.PREDICATE_TYPE,
        ApprovalPredicate.PREDICATE_TYPE,
        PrivacyAccountingPredicate.PREDICATE_TYPE,
    }
    assert InferencePredicate.PREDICATE_TYPE not in predicate_types("audit")
    assert DeploymentPredicate.PREDICATE_TYPE in predicate_types("lineage")
    assert set(predicate_types()) == {c.PREDICATE_TYPE for c in PREDICATES.values()}
    for cls in PREDICATES.values():
        assert cls.PURPOSE
        assert cls.KIND != "other" or cls in OTHER_KIND
        assert registered_predicate(cls.PREDICATE_TYPE) is cls
        assert predicate_class(cls.NAME) is cls
    assert registered_predicate(PREDICATE_URI_PREFIX + "nothing/v1") is None


def _cls(
    name: str = "probe",
    kind: PredicateKind = "evaluation",
    gate: bool = True,
    uri: str | None = None,
    base: type[Predicate] = Predicate,
    outcome: bool = True,
) -> type[Predicate]:
    namespace: dict[str, object] = {
        "__annotations__": {"verdict": "bool"},
        "NAME": name,
        "PREDICATE_TYPE": uri or f"https://example.com/{name}/v1",
        "PURPOSE": "a probe",
        "KIND": kind,
        "GATE_EVIDENCE": gate,
        "verdict": True,
    }
    if outcome:
        namespace["as_outcome"] = lambda self: Outcome(self.NAME, self.verdict)
    return type(f"Probe{name.title()}", (base,), namespace)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "evaluation"}, "already registered"),
        ({"uri": EvaluationPredicate.PREDICATE_TYPE}, "already registered"),
        ({"name": "Not Kebab"}, "kebab-case"),
        ({"uri": "no scheme"}, "URI"),
        ({"kind": "deployment"}, "gate reads evaluations and approvals"),
        ({"outcome": False}, "must define as_outcome"),
        ({"kind": "approval", "gate": False}, "must define as_decision"),
        ({"kind": "model", "gate": False}, "must subclass ModelPredicate"),
    ],
)
def test_register_refuses_a_broken_declaration(kwargs: dict[str, object], match: str) -> None:
    cls = _cls(**kwargs)  # type: ignore[arg-type]
    before = dict(PREDICATES)
    with pytest.raises(TypeError, match=match):
        register_predicate(cls)
    assert before == PREDICATES


def test_register_and_unregister() -> None:
    cls = _cls("probe-ok")
    assert register_predicate(cls) is cls
    try:
        assert registered_predicate(cls.PREDICATE_TYPE) is cls
        assert cls.PREDICATE_TYPE in predicate_types("gate")
        assert register_predicate(cls) is cls  # registering the same class again is harmless
    finally:
        unregister_predicate(cls)
    assert cls.PREDICATE_TYPE not in predicate_types()
    assert "probe-ok" not in PREDICATES


def test_a_record_kind_may_extend_the_builtin_class() -> None:
    class SignedModel(ModelPredicate):
        NAME: ClassVar[str] = "signed-model"
        PREDICATE_TYPE: ClassVar[str] = "https://example.com/signed-model/v1"

    register_predicate(SignedModel)
    unregister_predicate(SignedModel)


# --- no list of predicate types outside the registry ----------------------------------------


def _predicate_names(node: ast.AST) -> list[str]:
    """The predicate classes (``XPredicate`` or ``XPredicate.PREDICATE_TYPE``) a literal lists."""
    names = []
    for elt in getattr(node, "elts", []):
        if isinstance(elt, ast.Attribute) and elt.attr == "PREDICATE_TYPE":
            elt = elt.value
        name = elt.id if isinstance(elt, ast.Name) else getattr(elt, "attr", "")
        if name.endswith("Predicate"):
            names.append(name)
    return names


def test_no_hard_coded_list_of_predicate_classes() -> None:
    """A tuple, list or set naming two predicate classes is a second list of predicate types
    (the registry is the one): consumers ask ``predicate_types`` instead."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "attest" / "predicates.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(_predicate_names(node)) > 1:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize(
    "module", ["registry/_gate.py", "registry/lineage.py", "audit/_items.py", "audit/_build.py"]
)
def test_open_kinds_are_read_through_their_views(module: str) -> None:
    """The gate, lineage and the audit report read evaluations and approvals by kind, never
    by class, so a registered class of either kind is read like the built-in one."""
    text = (SRC / module).read_text()
    assert "EvaluationPredicate" not in text
    assert "ApprovalPredicate" not in text
    assert not re.search(r"[A-Za-z]+Predicate\.PREDICATE_TYPE", text)
