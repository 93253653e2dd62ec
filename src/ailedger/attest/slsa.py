"""SLSA Provenance v1 (``https://slsa.dev/provenance/v1``) for training runs.

::

    SlsaProvenancePredicate
    ├── buildDefinition: BuildDefinition
    │   ├── buildType                 TRAINING_BUILD_TYPE for ailedger training runs
    │   ├── externalParameters        what the trainer chose (hyperparameters, datasets, code)
    │   ├── internalParameters        how ailedger fingerprinted the result (optional)
    │   └── resolvedDependencies      ResourceDescriptor per dataset and for the code revision
    └── runDetails: RunDetails
        ├── builder.id                who trained: the registering key (and its organisation)
        ├── metadata                  invocationId, startedOn, finishedOn (when known)
        └── byproducts

Field names are the spec's (camelCase), so the predicate's JSON is the SLSA document. The
statement's subject is the model's subject digest, as in the model statement. Datasets are
resource descriptors whose digest set holds :data:`MERKLE_ROOT_DIGEST` (the dataset's RFC 9162
Merkle root under its leaf ``scheme``, lower-case hex: not a file hash, so not ``sha256``) and,
when the dataset is one file, that file's ``sha256``. A code revision of 40 or 64 hex digits is
a ``gitCommit`` digest. docs/provenance.md documents the build type and the digest key.

Unknown fields are kept, not refused: the in-toto parsing rules tell consumers to ignore
fields they do not know, and provenance from other builders carries extensions.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)

from ailedger.attest.predicates import Predicate, PredicateKind, register_predicate

__all__ = [
    "MERKLE_ROOT_DIGEST",
    "SLSA_PROVENANCE_TYPE",
    "TRAINING_BUILD_TYPE",
    "BuildDefinition",
    "BuildMetadata",
    "Builder",
    "ResourceDescriptor",
    "RunDetails",
    "SlsaProvenancePredicate",
]

#: The SLSA Provenance v1 predicate type.
SLSA_PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"

#: The ``buildType`` of an ailedger training run (docs/provenance.md defines its parameters).
TRAINING_BUILD_TYPE = "https://ailedger.dev/build-types/training/v1"

#: The digest-set key of a dataset's Merkle root (RFC 9162 root, lower-case hex).
MERKLE_ROOT_DIGEST = "ailedgerMerkleRoot"

_Text = Annotated[str, Field(min_length=1)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


class ResourceDescriptor(_Open):
    """An in-toto ResourceDescriptor v1: at least one of ``uri``, ``digest``, ``content``."""

    name: _Text | None = None
    uri: _Text | None = None
    digest: dict[_Text, _Text] | None = None
    content: str | None = None
    downloadLocation: _Text | None = None
    mediaType: _Text | None = None
    annotations: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _identified(self) -> ResourceDescriptor:
        if self.uri is None and not self.digest and self.content is None:
            raise ValueError("a resource descriptor needs a uri, a digest or content")
        return self


class BuildDefinition(_Open):
    buildType: _Text
    externalParameters: dict[str, JsonValue]
    internalParameters: dict[str, JsonValue] | None = None
    resolvedDependencies: list[ResourceDescriptor] | None = None


class Builder(_Open):
    id: _Text
    builderDependencies: list[ResourceDescriptor] | None = None
    version: dict[str, str] | None = None


class BuildMetadata(_Open):
    invocationId: _Text | None = None
    startedOn: AwareDatetime | None = None
    finishedOn: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BuildMetadata:
        if self.startedOn and self.finishedOn and self.finishedOn < self.startedOn:
            raise ValueError("finishedOn is before startedOn")
        return self


class RunDetails(_Open):
    builder: Builder
    metadata: BuildMetadata | None = None
    byproducts: list[ResourceDescriptor] | None = None


@register_predicate
class SlsaProvenancePredicate(Predicate):
    """SLSA Provenance v1: how a model was trained, from what, by whom."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    NAME: ClassVar[str] = "slsa-provenance"
    PREDICATE_TYPE: ClassVar[str] = SLSA_PROVENANCE_TYPE
    PURPOSE: ClassVar[str] = (
        "SLSA Provenance v1 of a training run: parameters, datasets and code, and who trained"
    )
    KIND: ClassVar[PredicateKind] = "other"
    IN_LINEAGE: ClassVar[bool] = True

    buildDefinition: BuildDefinition
    runDetails: RunDetails

    @property
    def is_training_run(self) -> bool:
        return self.buildDefinition.buildType == TRAINING_BUILD_TYPE

    def dataset_roots(self) -> list[str]:
        """The Merkle roots of the resolved dependencies that are datasets, in order."""
        return [
            d.digest[MERKLE_ROOT_DIGEST]
            for d in self.buildDefinition.resolvedDependencies or ()
            if d.digest and MERKLE_ROOT_DIGEST in d.digest
        ]
