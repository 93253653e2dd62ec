"""A model version's lineage as a CycloneDX 1.6 ML-BOM (``ailedger lineage --format cyclonedx``).

::

    with Registry.open(workspace, keys=keystore.list_keys(), read_only=True) as registry:
        bom = ml_bom(registry, VersionRef("triage", "1.0"))   # a JSON-ready dict

The BOM holds one ``machine-learning-model`` component for the version and one ``data``
component per training dataset, and the dependency graph model -> datasets:

- the model: ``hashes`` is the statement's subject digest (the OpenSSF model-signing digest,
  SHA-256 over the per-file digests in name order); with whole-file hashing each file is a
  nested ``file`` component with its own hash. The ``modelCard`` names the training datasets
  (``modelParameters.datasets``), the metrics of the latest run of each evaluation
  (``quantitativeAnalysis.performanceMetrics``) and, from bias audits (evaluations named in
  ``audit_names``), ``considerations.fairnessAssessments`` and ``ethicalConsiderations``;
  hyperparameters and the code revision are model-card properties.
- a dataset: its Merkle root, scheme, size and format are properties (a Merkle root is not a
  file hash); ``hashes`` holds the file's SHA-256 only for a one-file dataset.
- every statement behind the BOM is named by its ailedger log entry in properties
  (``ailedger:log:*``), with the log's origin, so ``ailedger log receipt N`` proves it.

The document is built here as plain JSON; ``cyclonedx-python-lib`` (the ``[interop]`` extra)
is not needed to write it, only to validate it (the tests do, against the 1.6 schema).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ailedger import __version__
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DatasetPredicate, ModelPredicate
from ailedger.attest.statements import Statement
from ailedger.audit._report import DEFAULT_AUDIT_NAMES
from ailedger.errors import AiledgerError
from ailedger.registry import Registry
from ailedger.registry._refs import VersionRef
from ailedger.registry.lineage import Item, Lineage, lineage

__all__ = ["CYCLONEDX_SCHEMA", "CYCLONEDX_SPEC_VERSION", "ml_bom"]

#: The JSON schema the BOM declares (``$schema``).
CYCLONEDX_SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"
CYCLONEDX_SPEC_VERSION = "1.6"

_HASH_ALG = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512", "blake3": "BLAKE3"}
_WHOLE_FILE = ("sha256", "blake3")


def _prop(name: str, value: object) -> dict[str, str]:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return {"name": f"ailedger:{name}", "value": text}


def _hash(digest: str) -> list[dict[str, str]]:
    alg, _, value = digest.partition(":")
    return [{"alg": _HASH_ALG[alg], "content": value}] if alg in _HASH_ALG else []


def _logged(registry: Registry, index: int) -> Statement | None:
    try:
        return Statement.from_json(Envelope.from_json(registry.log.get(index).envelope).payload)
    except AiledgerError:
        return None


def _entry_props(prefix: str, item: Item) -> list[dict[str, str]]:
    return [
        _prop(f"log:{prefix}", item.log_index),
        _prop(f"log:{prefix}:loggedAt", item.logged_at),
        _prop(f"log:{prefix}:signers", ", ".join(item.signers)),
    ]


def _files(ref: str, model: ModelPredicate | None) -> list[dict[str, Any]]:
    if model is None or model.serialization.method != "files":
        return []  # sharded hashing: the resources are shards, not files
    if (model.hashing or model.serialization.hash_type) not in _WHOLE_FILE:
        return []
    return [
        {
            "type": "file",
            "bom-ref": f"{ref}#file:{r.name}",
            "name": r.name,
            "hashes": [{"alg": _HASH_ALG[r.algorithm], "content": r.digest}],
        }
        for r in model.resources
        if r.algorithm in _HASH_ALG
    ]


def _dataset(registry: Registry, found: dict[str, Any], n: int) -> dict[str, Any]:
    root = str(found["root"])
    names = list(found["registered_as"])
    ref = VersionRef.parse(names[0]) if names else None
    bom_ref = f"dataset:{names[0]}" if names else f"dataset-root:{root}"
    props = [_prop("merkleRoot", root), _prop("merkleTree", "RFC 9162, SHA-256")]
    hashes: list[dict[str, str]] = []
    row = registry.index.version("dataset", ref) if ref is not None else None
    if row is not None:
        props += [_prop("subjectDigest", row.digest), _prop("log:registration", row.log_index)]
        statement = _logged(registry, row.log_index)
        pred = statement.typed_predicate() if statement is not None else None
        if isinstance(pred, DatasetPredicate):
            props += [
                _prop("merkleScheme", pred.scheme),
                _prop("records", pred.size),
                _prop("format", pred.format),
            ]
            if pred.format != "files":
                hashes = _hash(row.digest)  # a one-file dataset: its subject is the file's hash
    if len(names) > 1:
        props.append(_prop("alsoRegisteredAs", ", ".join(names[1:])))
    data: dict[str, Any] = {"type": "dataset", "name": names[0] if names else f"dataset {n}"}
    if found.get("location"):
        data["contents"] = {"url": found["location"]}
    component: dict[str, Any] = {
        "type": "data",
        "bom-ref": bom_ref,
        "name": ref.name if ref is not None else f"unregistered dataset {root[:16]}",
        "data": [data],
        "properties": props,
    }
    if ref is not None:
        component["version"] = ref.version
    if hashes:
        component["hashes"] = hashes
    if ref is None:
        component["description"] = "training dataset named by its Merkle root only"
    return component


def _latest(items: Iterable[Item]) -> list[Item]:
    """The latest run of each evaluation name, in log order."""
    by_name: dict[str, Item] = {}
    for item in items:
        by_name[str(item.details["name"])] = item
    return sorted(by_name.values(), key=lambda i: i.log_index)


def _metrics(item: Item) -> str:
    metrics = item.details.get("metrics") or {}
    return ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())) or "no metrics reported"


def _model_card(
    tree: Lineage, dataset_refs: list[str], audit_names: tuple[str, ...]
) -> dict[str, Any]:
    card: dict[str, Any] = {}
    if dataset_refs:
        card["modelParameters"] = {"datasets": [{"ref": r} for r in dataset_refs]}
    evaluations = _latest(tree.evaluations)
    audits = [i for i in evaluations if str(i.details["name"]).lower() in audit_names]
    performance = [
        {"type": str(metric), "value": f"{value:g}", "slice": str(item.details["name"])}
        for item in evaluations
        if item not in audits
        for metric, value in sorted((item.details.get("metrics") or {}).items())
    ]
    if performance:
        card["quantitativeAnalysis"] = {"performanceMetrics": performance}
    if audits:
        verdicts = [
            f"bias audit {i.details['name']} "
            f"{'passed' if i.details['passed'] else 'FAILED'} ({_metrics(i)}); "
            f"ailedger log entry {i.log_index}"
            for i in audits
        ]
        card["considerations"] = {
            "ethicalConsiderations": [
                {"name": "unequal performance across groups", "mitigationStrategy": v}
                for v in verdicts
            ],
            "fairnessAssessments": [
                {"groupAtRisk": "the groups the audit compares", "mitigationStrategy": v}
                for v in verdicts
            ],
        }
    props: list[dict[str, str]] = []
    training = tree.registration.details.get("training", {}) if tree.registration else {}
    for key, value in sorted((training.get("hyperparameters") or {}).items()):
        props.append(_prop(f"hyperparameter:{key}", value))
    for key in ("code_revision", "team", "training_date"):
        if training.get(key) is not None:
            props.append(_prop(key.replace("_", "-"), training[key]))
    for item in tree.evaluations:
        verdict = "passed" if item.details["passed"] else "failed"
        props.append(
            _prop(f"evaluation:{item.details['name']}", f"{verdict}, log entry {item.log_index}")
        )
    if props:
        card["properties"] = props
    return card


def ml_bom(
    registry: Registry,
    ref: VersionRef,
    *,
    audit_names: Iterable[str] = DEFAULT_AUDIT_NAMES,
    timestamp: datetime | None = None,
    serial_number: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of the registered model ``ref`` (see the module docstring)."""
    tree = lineage(registry, ref)
    names = tuple(n.lower() for n in audit_names)
    model_ref = f"model:{ref}"
    reg = tree.registration
    statement = _logged(registry, reg.log_index) if reg is not None else None
    pred = statement.typed_predicate() if statement is not None else None
    model = pred if isinstance(pred, ModelPredicate) else None
    datasets: list[dict[str, Any]] = []
    for n, found in enumerate(tree.datasets, 1):
        data = _dataset(registry, found, n)
        if all(d["bom-ref"] != data["bom-ref"] for d in datasets):
            datasets.append(data)
    dataset_refs = [d["bom-ref"] for d in datasets]

    props = [_prop("subjectDigest", tree.digest), _prop("log:origin", registry.log.origin)]
    if model is not None:
        props.append(_prop("hashing", model.hashing or model.serialization.hash_type))
        if model.tensor_root:
            props.append(_prop("tensorRoot", model.tensor_root))
        if model.location:
            props.append(_prop("location", model.location))
    if reg is not None:
        props += _entry_props("registration", reg)
    for i, item in enumerate(tree.provenance):
        props += _entry_props(f"slsaProvenance:{i}", item)
    for i, item in enumerate(tree.approvals):
        props += _entry_props(f"approval:{i}", item)
        props.append(_prop(f"approval:{i}:decision", item.summary))
    for i, item in enumerate(tree.deployments):
        props += _entry_props(f"deployment:{i}", item)
        props.append(_prop(f"deployment:{i}:action", item.summary))
    props.append(_prop("deprecated", str(tree.deprecated).lower()))
    props.append(_prop("receipt", "`ailedger log receipt N` proves a log:* entry N"))

    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": ref.name,
        "version": ref.version,
        "description": "hashes: the OpenSSF model-signing subject digest (SHA-256 over the "
        "per-file digests in name order)",
        "hashes": _hash(tree.digest),
    }
    files = _files(model_ref, model)
    if files:
        component["components"] = files
    card = _model_card(tree, dataset_refs, names)
    if card:
        component["modelCard"] = card
    component["properties"] = props
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return {
        "$schema": CYCLONEDX_SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": CYCLONEDX_SPEC_VERSION,
        "serialNumber": (serial_number or uuid.uuid4()).urn,
        "version": 1,
        "metadata": {
            "timestamp": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "tools": {
                "components": [{"type": "application", "name": "ailedger", "version": __version__}]
            },
            "properties": [_prop("log:origin", registry.log.origin)],
        },
        "components": [component, *datasets],
        "dependencies": [
            {"ref": model_ref, "dependsOn": dataset_refs},
            *({"ref": r} for r in dataset_refs),
        ],
    }
