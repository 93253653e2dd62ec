"""Lineage: a model version's datasets, evaluations, approvals and deployments."""

from __future__ import annotations

import pytest

from _workflow_util import Setup, variant
from ailedger.cli._trace import lineage_tree
from ailedger.errors import NotFound
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.lineage import lineage
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def test_lineage_collects_every_kind(setup: Setup) -> None:
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        ref = VersionRef("triage", "1")
        reg.register_model(
            setup.model,
            ref,
            trainer,
            datasets=[VersionRef("patients", "1")],
            params={"lr": 0.01},
            code_revision="abc",
        )
        other = VersionRef("triage", "2")
        reg.register_model(variant(setup, "m2", '{"v": 2}'), other, trainer)
        reg.record_evaluation(ref, record_evaluation("acc", {"acc": 0.5}, ["acc>=0.9"]), trainer)
        reg.record_evaluation(ref, record_evaluation("acc", {"acc": 0.95}, ["acc>=0.9"]), trainer)
        reg.record_evaluation(other, record_evaluation("acc", {"acc": 0.1}), trainer)
        reg.approve(ref, "qa", qa, comment="ok")
        reg.deploy(ref, "prod", trainer, OPEN)
        reg.deploy(other, "prod", trainer, OPEN)
        reg.rollback("prod", trainer)
        reg.deprecate(other, "worse", trainer)
        reg.record_inference(ref, "sha256:" + "1" * 64, "sha256:" + "2" * 64, trainer)
        tree = lineage(reg, ref)
        second = lineage(reg, other)
    doc = tree.to_dict()
    assert doc["model"] == "triage@1"
    assert doc["registration"]["training"]["hyperparameters"] == {"lr": 0.01}
    assert [d["registered_as"] for d in doc["datasets"]] == [["patients@1"]]
    assert [(e["name"], e["passed"]) for e in doc["evaluations"]] == [("acc", False), ("acc", True)]
    assert [(a["role"], a["decision"], a["comment"]) for a in doc["approvals"]] == [
        ("qa", "approve", "ok")
    ]
    assert [d["action"] for d in doc["deployments"]] == ["deploy", "rollback"]
    assert doc["inference_statements"] == 1
    assert doc["deprecated"] is False
    assert second.deprecated
    assert second.datasets == []
    assert [d.details["action"] for d in second.deployments] == ["deploy", "deprecate"]
    text = str(lineage_tree(second).label)
    assert "deprecated" in text


def test_lineage_of_an_unknown_version(setup: Setup) -> None:
    with setup.registry() as reg, pytest.raises(NotFound, match="unknown model"):
        lineage(reg, VersionRef("triage", "1"))
