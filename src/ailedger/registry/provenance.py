"""SLSA Provenance v1 of a registered model's training run, signed into the log.

::

    with Registry.open(workspace, keys=keystore.list_keys()) as reg:
        reg.register_model(Path("model/"), ref, signer, datasets=[...], code_revision=rev)
        record_provenance(reg, ref, signer, run=RunInfo(invocation_id="ci-1234"))

The provenance is read off the model statement the registry already logged for ``ref``
(so the two never disagree): its training metadata gives the build definition, and each
dataset root it names is resolved to the registered dataset with that root, whose statement
gives the scheme, size and format and whose subject is the file's sha256 (for a one-file
dataset). See :mod:`ailedger.attest.slsa` for the field mapping and docs/provenance.md for the
build type. The statement is signed and appended like every registry action, so it gets a
log entry and a receipt; recording it again for the same version and key signs nothing and
returns the existing entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ailedger import __version__
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DatasetPredicate, ModelPredicate, validation_message
from ailedger.attest.slsa import (
    MERKLE_ROOT_DIGEST,
    SLSA_PROVENANCE_TYPE,
    TRAINING_BUILD_TYPE,
    BuildDefinition,
    Builder,
    BuildMetadata,
    ResourceDescriptor,
    RunDetails,
    SlsaProvenancePredicate,
)
from ailedger.attest.statements import Statement, attest
from ailedger.errors import AiledgerError, IntegrityError, InvalidInput
from ailedger.identity.keys import KeyInfo, Signer
from ailedger.registry._records import Recorded, named_subject
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry

__all__ = ["RunInfo", "builder_id", "record_provenance", "training_provenance"]

_GIT_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class RunInfo:
    """What the registry cannot know about a training run: its id and when it ran."""

    invocation_id: str | None = None
    started_on: datetime | None = None
    finished_on: datetime | None = None
    builder_id: str | None = None


def builder_id(keyid: str, keys: Sequence[KeyInfo] = ()) -> str:
    """``urn:ailedger:builder:ORG:KEYID`` (``urn:ailedger:builder:KEYID`` without an org):
    the registering key, which signs the provenance, and its organisation if known."""
    org = next((k.org for k in keys if k.keyid.lower() == keyid.lower() and k.org), None)
    return f"urn:ailedger:builder:{org}:{keyid}" if org else f"urn:ailedger:builder:{keyid}"


def _statement_at(registry: Registry, index: int) -> Statement:
    return Statement.from_json(Envelope.from_json(registry.log.get(index).envelope).payload)


def _dataset(registry: Registry, root: str) -> ResourceDescriptor:
    found = registry.index.datasets_with_root(root)
    if not found:
        return ResourceDescriptor(
            name=f"dataset:{root}",
            digest={MERKLE_ROOT_DIGEST: root},
            annotations={"registered": False},
        )
    row = found[0]
    pred = _statement_at(registry, row.log_index).typed_predicate()
    if not isinstance(pred, DatasetPredicate):
        raise IntegrityError(f"log entry {row.log_index} is not the dataset statement of {row.ref}")
    digest = {MERKLE_ROOT_DIGEST: root}
    alg, _, value = row.digest.partition(":")
    if pred.format != "files" and alg == "sha256":
        digest["sha256"] = value  # a one-file dataset: the subject is the file's sha256
    annotations: dict[str, Any] = {
        "registered": True,
        "merkleScheme": pred.scheme,
        "records": pred.size,
        "format": pred.format,
        "ailedgerLogIndex": row.log_index,
    }
    return ResourceDescriptor(
        name=str(row.ref), uri=row.location, digest=digest, annotations=annotations
    )


def training_provenance(
    registry: Registry, ref: VersionRef, signer_keyid: str, run: RunInfo | None = None
) -> SlsaProvenancePredicate:
    """The SLSA provenance of ``ref``'s training run, from its logged model statement."""
    run = run or RunInfo()
    row = registry.model(ref)
    model = _statement_at(registry, row.log_index).typed_predicate()
    if not isinstance(model, ModelPredicate):
        raise IntegrityError(f"log entry {row.log_index} is not the model statement of {ref}")
    training = model.training
    roots = list(training.dataset_roots) if training else []
    deps = [_dataset(registry, root) for root in roots]
    external: dict[str, Any] = {
        "model": {"name": ref.name, "version": ref.version},
        "hyperparameters": dict(training.hyperparameters) if training else {},
        "datasets": [d.name for d in deps],
    }
    revision = training.code_revision if training else None
    if revision is not None:
        external["codeRevision"] = revision
        if _GIT_COMMIT.fullmatch(revision):
            deps.append(ResourceDescriptor(name="training-code", digest={"gitCommit": revision}))
    if training is not None and training.team is not None:
        external["team"] = training.team
    internal: dict[str, Any] = {
        "fingerprint": {
            "hashing": model.hashing or model.serialization.hash_type,
            "serialization": model.serialization.method,
        },
        "modelStatementLogIndex": row.log_index,
    }
    try:
        metadata = BuildMetadata(
            invocationId=run.invocation_id, startedOn=run.started_on, finishedOn=run.finished_on
        )
        build = BuildDefinition(
            buildType=TRAINING_BUILD_TYPE,
            externalParameters=external,
            internalParameters=internal,
            resolvedDependencies=deps or None,
        )
        builder = Builder(
            id=run.builder_id or builder_id(signer_keyid, registry.keys),
            version={"ailedger": __version__},
        )
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, "SLSA provenance")) from None
    empty = metadata == BuildMetadata()
    return SlsaProvenancePredicate(
        buildDefinition=build,
        runDetails=RunDetails(builder=builder, metadata=None if empty else metadata),
    )


def _existing(registry: Registry, ref: VersionRef, digest: str, keyid: str) -> Recorded | None:
    for entry in registry.log.query(
        subject=digest, predicate_type=SLSA_PROVENANCE_TYPE, limit=None
    ):
        if keyid.lower() not in {s.lower() for s in entry.signers}:
            continue
        try:
            statement = Statement.from_json(Envelope.from_json(entry.envelope).payload)
            pred = statement.typed_predicate()
        except AiledgerError:
            continue
        if isinstance(pred, SlsaProvenancePredicate) and any(
            s.name == str(ref) for s in statement.subject
        ):
            return Recorded("provenance", str(ref), entry.index, digest, pred.to_dict(), True)
    return None


def record_provenance(
    registry: Registry, ref: VersionRef, signer: Signer, run: RunInfo | None = None
) -> Recorded:
    """Sign the SLSA provenance of ``ref``'s training run and append it to the log (once per
    version and key: a repeat returns the existing entry with ``already`` set)."""
    row = registry.model(ref)
    found = _existing(registry, ref, row.digest, signer.keyid)
    if found is not None:
        return found
    predicate = training_provenance(registry, ref, signer.keyid, run)
    envelope = attest(predicate, [named_subject(ref, row.digest)], [signer])
    index = registry.append_envelope(envelope.to_json())
    return Recorded("provenance", str(ref), index, row.digest, predicate.to_dict())
