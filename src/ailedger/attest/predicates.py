"""Typed predicates for in-toto statements, each with a versioned type URI.

::

    Predicate (pydantic, frozen, unknown fields rejected)
    ├── DatasetPredicate     https://ailedger.dev/predicates/dataset/v1
    ├── ModelPredicate       https://ailedger.dev/predicates/model/v1
    ├── EvaluationPredicate  https://ailedger.dev/predicates/evaluation/v1
    ├── ApprovalPredicate    https://ailedger.dev/predicates/approval/v1
    ├── DeploymentPredicate  https://ailedger.dev/predicates/deployment/v1
    └── InferencePredicate   https://ailedger.dev/predicates/inference/v1

(:mod:`.slsa` and :mod:`.flags` register three more: SLSA provenance, anomaly flags and
acknowledgements.)

Conventions: a Merkle root or a raw digest whose algorithm is fixed elsewhere (``scheme``,
``algorithm``) is lower-case hex; a self-describing digest is ``ALG:HEX`` (``sha256:...``);
times are RFC 3339 with a time zone. :func:`parse_predicate` turns pydantic's errors into
one :class:`InvalidInput` naming the field.

The model predicate carries the OpenSSF model-signing manifest unchanged (``serialization``
and ``resources`` as in ``https://model_signing/signature/v1.0``), so the statement's subject
digest is the one model-signing computes: sha256 over the raw resource digests in order. It
adds the hashing identifier (``sha256``, ``sha256-sharded-N``, ...), that subject digest
(checked against the resources and the statement's subjects), the per-tensor Merkle root of
``ailedger.fingerprint.model`` when there is one, training metadata, and the ``location`` it was
fingerprinted at (the registry re-hashes it there when a policy asks).

**One registry of predicate types.** Each class declares what it is and who reads it:
``NAME`` (the CLI's ``attest TYPE``), ``PREDICATE_TYPE`` (the URI), ``PURPOSE`` (one line),
``KIND`` (which section it belongs to), ``GATE_EVIDENCE`` (the release gate counts it),
``IN_AUDIT`` and ``IN_LINEAGE`` (the audit report and ``ailedger lineage`` show it). The class
is registered once with :func:`register_predicate`; the gate's evidence
(``Registry.evidence``), the audit report and lineage ask :func:`predicate_types` which URIs
to read, and read an entry through its kind: an ``evaluation`` gives an :class:`Outcome`
(:meth:`Predicate.as_outcome`), an ``approval`` a :class:`Decision`
(:meth:`Predicate.as_decision`). The kinds ``dataset``, ``model``, ``deployment`` and
``inference`` are the registry's own records, read field by field by its index, so a class of
those kinds must subclass the built-in one. :func:`register_predicate` refuses a class that
breaks these rules (a duplicate name or URI, gate evidence that is not an evaluation or an
approval, an evaluation without :meth:`~Predicate.as_outcome`, ...).

A predicate type that is not registered is *unknown*: :meth:`Statement.typed_predicate
<ailedger.attest.statements.Statement.typed_predicate>` gives None for it (a foreign statement,
e.g. model-signing's, still verifies), the gate never counts it and lists it among the
screened-out statements (``unknown-predicate-type``), and the audit report and lineage do not
show it (the audit report's log check still covers its entry).
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    JsonValue,
    NonNegativeInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from ailedger.errors import InvalidInput

__all__ = [
    "PREDICATES",
    "PREDICATE_URI_PREFIX",
    "ApprovalPredicate",
    "DatasetPredicate",
    "Decision",
    "DeploymentPredicate",
    "EvaluationCheck",
    "EvaluationPredicate",
    "EventLink",
    "InferencePredicate",
    "ModelPredicate",
    "ModelResource",
    "ModelSerialization",
    "Outcome",
    "Predicate",
    "PredicateKind",
    "TrainingMetadata",
    "parse_predicate",
    "predicate_class",
    "predicate_types",
    "register_predicate",
    "registered_predicate",
    "unregister_predicate",
    "validation_message",
]

PREDICATE_URI_PREFIX = "https://ailedger.dev/predicates/"

_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128, "blake3": 64}


def _hex256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError("must be 64 lower-case hex characters")
    return value


def _digest(value: str) -> str:
    alg, _, hexpart = value.partition(":")
    size = _DIGEST_HEX_LEN.get(alg)
    if size is None or not re.fullmatch(rf"[0-9a-f]{{{size}}}", hexpart):
        raise ValueError("must be ALG:HEX with ALG one of sha256, sha384, sha512, blake3")
    return value


def _uri(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", value):
        raise ValueError("must be a URI with a scheme, e.g. s3://bucket/path")
    return value


def _finite_json(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    def walk(node: JsonValue) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite (JSON has no NaN or Infinity)")
        if isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return value


Hex256 = Annotated[str, AfterValidator(_hex256)]
Digest = Annotated[str, AfterValidator(_digest)]
Uri = Annotated[str, AfterValidator(_uri)]
Text = Annotated[str, Field(min_length=1, max_length=4096)]


class _Subject(Protocol):
    @property
    def digest(self) -> dict[str, str]: ...


#: The section a predicate type belongs to (see the module docstring).
PredicateKind = Literal[
    "dataset", "model", "evaluation", "approval", "deployment", "inference", "other"
]


@dataclass(frozen=True)
class Outcome:
    """An ``evaluation`` predicate as the gate, the audit report and lineage read it.

    ``name`` is what a policy's ``[evaluations.NAME]`` or ``[audits.NAME]`` requires;
    ``metrics`` what it measured; ``passed`` its verdict (a named audit needs it true).
    """

    name: str
    passed: bool
    metrics: Mapping[str, float] = field(default_factory=dict)
    exit_code: int | None = None
    checks: tuple[dict[str, Any], ...] = ()
    command: str | None = None
    tool: str | None = None


@dataclass(frozen=True)
class Decision:
    """An ``approval`` predicate as the gate, the audit report and lineage read it."""

    role: str
    decision: Literal["approve", "reject"]
    comment: str | None = None
    time: datetime | None = None


class Predicate(BaseModel):
    """Base of every predicate: ``NAME`` is the CLI's TYPE, ``PREDICATE_TYPE`` the URI.

    The other class variables say what the type is for (see the module docstring); a class
    counts only once :func:`register_predicate` has taken it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    NAME: ClassVar[str]
    PREDICATE_TYPE: ClassVar[str]
    PURPOSE: ClassVar[str]
    KIND: ClassVar[PredicateKind] = "other"
    GATE_EVIDENCE: ClassVar[bool] = False
    IN_AUDIT: ClassVar[bool] = False
    IN_LINEAGE: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; absent optional fields are left out."""
        return self.model_dump(mode="json", exclude_none=True)

    def check_subjects(self, subjects: Sequence[_Subject]) -> None:
        """Raise :class:`InvalidInput` if the predicate contradicts the statement's subjects."""

    def as_outcome(self) -> Outcome:
        """The outcome of an ``evaluation`` predicate (every class of that kind defines it)."""
        raise TypeError(f"a {self.NAME} predicate is not an evaluation")

    def as_decision(self) -> Decision:
        """The decision of an ``approval`` predicate (every class of that kind defines it)."""
        raise TypeError(f"a {self.NAME} predicate is not an approval")


class DatasetPredicate(Predicate):
    """A dataset fingerprint: Merkle ``root`` of ``size`` leaves under ``scheme``."""

    NAME: ClassVar[str] = "dataset"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "dataset/v1"
    PURPOSE: ClassVar[str] = "a dataset fingerprint (Merkle root): registers a dataset version"
    KIND: ClassVar[PredicateKind] = "dataset"
    IN_AUDIT: ClassVar[bool] = True

    root: Hex256
    size: NonNegativeInt
    scheme: Text
    format: Text
    schema_hash: Digest | None = None
    metadata_hash: Digest | None = None
    location: Uri | None = None


class ModelResource(BaseModel):
    """One file of a model-signing manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: Text
    algorithm: Text = "sha256"
    digest: Hex256


class ModelSerialization(BaseModel):
    """model-signing's ``serialization`` section (method, hash_type, ignore_paths, ...)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    method: Text
    hash_type: Text = "sha256"


class TrainingMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    dataset_roots: list[Hex256] = Field(default_factory=list)
    code_revision: Text | None = None
    hyperparameters: Annotated[dict[str, JsonValue], AfterValidator(_finite_json)] = Field(
        default_factory=dict
    )
    training_date: AwareDatetime | None = None
    team: Text | None = None


class ModelPredicate(Predicate):
    """A model manifest compatible with OpenSSF model signing, plus training metadata."""

    NAME: ClassVar[str] = "model"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "model/v1"
    PURPOSE: ClassVar[str] = "a model manifest and training metadata: registers a model version"
    KIND: ClassVar[PredicateKind] = "model"
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    hashing: Text | None = None
    serialization: ModelSerialization
    resources: list[ModelResource] = Field(min_length=1)
    subject_digest: Hex256 | None = None
    tensor_root: Hex256 | None = None
    training: TrainingMetadata | None = None
    location: Uri | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelPredicate:
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise ValueError("resources: names must be unique")
        computed = self.computed_subject_digest()
        if self.subject_digest is None:
            object.__setattr__(self, "subject_digest", computed)
        elif self.subject_digest != computed:
            raise ValueError(f"subject_digest: the resources hash to {computed}")
        return self

    @classmethod
    def from_manifest(
        cls, manifest: dict[str, Any], training: TrainingMetadata | None = None
    ) -> ModelPredicate:
        """From the JSON of ``ailedger fingerprint model`` or a model-signing predicate."""
        subject = manifest.get("subject")
        tensors = manifest.get("tensors")
        data: dict[str, Any] = {
            "hashing": manifest.get("hashing"),
            "serialization": manifest.get("serialization"),
            "resources": manifest.get("resources"),
            "subject_digest": subject.get("digest", {}).get("sha256")
            if isinstance(subject, dict)
            else None,
            "tensor_root": tensors.get("root") if isinstance(tensors, dict) else None,
            "training": training,
        }
        try:
            return cls.model_validate({k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc, "model manifest")) from None

    def computed_subject_digest(self) -> str:
        """sha256 over the raw resource digests in listed order (model-signing's subject)."""
        hasher = hashlib.sha256()
        for resource in self.resources:
            hasher.update(bytes.fromhex(resource.digest))
        return hasher.hexdigest()

    def check_subjects(self, subjects: Sequence[_Subject]) -> None:
        expected = self.computed_subject_digest()
        if not any(s.digest.get("sha256") == expected for s in subjects):
            raise InvalidInput(
                f"model predicate: resources hash to sha256:{expected}, "
                "but no subject has that digest"
            )


_COMPARATORS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


class EvaluationCheck(BaseModel):
    """One threshold of an evaluation and the value measured (None: not reported)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    metric: Text
    comparator: Literal[">=", ">", "<=", "<", "=="]
    threshold: FiniteFloat
    value: FiniteFloat | None = None
    passed: bool | None = None

    @model_validator(mode="after")
    def _passed_matches(self) -> EvaluationCheck:
        actual = self.value is not None and bool(
            _COMPARATORS[self.comparator](self.value, self.threshold)
        )
        if self.passed is None:
            object.__setattr__(self, "passed", actual)
        elif self.passed != actual:
            raise ValueError(
                f"passed: {self.metric} = {self.value} {self.comparator} {self.threshold} "
                f"is {actual}, but passed={self.passed}"
            )
        return self


class EvaluationPredicate(Predicate):
    """An evaluation's outcome. ``passed`` is computed when omitted and checked when given.

    Two shapes validate. The original one names a single ``metric``, its ``value``, the
    ``comparator`` and ``threshold``. A named run (``name``) adds every reported ``metrics``,
    one ``checks`` entry per threshold, the command's ``exit_code`` and ``duration_seconds``;
    then ``passed`` holds exactly when every check passed and ``exit_code`` is None or 0, so
    a failed, timed-out or never-started run is recorded as a failure (``exit_code`` None
    with no measured values), and a named run that reported no metrics and has no checks
    has not passed. The single-metric fields, when present, must all be present.
    """

    NAME: ClassVar[str] = "evaluation"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "evaluation/v1"
    PURPOSE: ClassVar[str] = (
        "an evaluation or audit result: gate evidence for [evaluations] and [audits]"
    )
    KIND: ClassVar[PredicateKind] = "evaluation"
    GATE_EVIDENCE: ClassVar[bool] = True
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    name: Text | None = None
    metric: Text | None = None
    value: FiniteFloat | None = None
    comparator: Literal[">=", ">", "<=", "<", "=="] | None = None
    threshold: FiniteFloat | None = None
    passed: bool | None = None
    metrics: dict[Text, FiniteFloat] | None = None
    checks: list[EvaluationCheck] | None = None
    exit_code: int | None = None
    duration_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    dataset_root: Hex256 | None = None
    sample_size: NonNegativeInt | None = None
    tool: Text | None = None
    command: Text | None = None

    @model_validator(mode="after")
    def _passed_matches(self) -> EvaluationPredicate:
        single = (self.metric, self.value, self.comparator, self.threshold)
        if any(f is not None for f in single) and any(f is None for f in single):
            raise ValueError("metric, value, comparator and threshold go together")
        if self.metric is None and self.name is None:
            raise ValueError("name: an evaluation needs a name or a metric")
        results: list[bool] = []
        if self.comparator is not None and self.value is not None and self.threshold is not None:
            results.append(bool(_COMPARATORS[self.comparator](self.value, self.threshold)))
        results.extend(bool(c.passed) for c in self.checks or ())
        actual = all(results) and self.exit_code in (None, 0)
        if self.name is not None and not results and not self.metrics:
            actual = False  # a named run that measured nothing has shown nothing
        if self.passed is None:
            object.__setattr__(self, "passed", actual)
        elif self.passed != actual:
            why = f"exit_code {self.exit_code}, " if self.exit_code not in (None, 0) else ""
            raise ValueError(
                f"passed: {why}{sum(results)} of {len(results)} checks pass, so passed is "
                f"{actual}, but passed={self.passed}"
            )
        return self

    def as_outcome(self) -> Outcome:
        # An evaluation is named by ``name``; older documents have only a metric, which names it.
        metrics = {str(k): float(v) for k, v in (self.metrics or {}).items()}
        if self.metric is not None and self.value is not None:
            metrics.setdefault(self.metric, self.value)
        return Outcome(
            name=self.name or self.metric or "evaluation",
            passed=bool(self.passed),
            metrics=metrics,
            exit_code=self.exit_code,
            checks=tuple(c.model_dump(mode="json", exclude_none=True) for c in self.checks or ()),
            command=self.command,
            tool=self.tool,
        )


class ApprovalPredicate(Predicate):
    """A decision by a holder of ``role``; ``comment`` is optional, ``comment_hash`` lets a
    statement commit to a comment kept elsewhere."""

    NAME: ClassVar[str] = "approval"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "approval/v1"
    PURPOSE: ClassVar[str] = "a role holder's approval or rejection: gate evidence for [approvals]"
    KIND: ClassVar[PredicateKind] = "approval"
    GATE_EVIDENCE: ClassVar[bool] = True
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    role: Text
    decision: Literal["approve", "reject"]
    comment_hash: Digest | None = None
    comment: Text | None = None
    time: AwareDatetime | None = None

    def as_decision(self) -> Decision:
        return Decision(self.role, self.decision, self.comment, self.time)


class EventLink(BaseModel):
    """A log entry named by its index and RFC 9162 leaf hash (``SHA-256(0x00 || JCS(envelope))``,
    hex): what a deploy or rollback names as the previous event of its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    log_index: NonNegativeInt
    leaf_hash: Hex256


class DeploymentPredicate(Predicate):
    """A deploy, rollback or deprecation. The registry names versions ``NAME@VERSION``; a
    rollback's ``version`` is the one serving after it; a deprecation applies to every
    environment (``environment`` is ``*``) and gives a ``reason``.

    ``previous`` links a deploy or rollback to the previous deploy or rollback of the same
    environment in the log (:class:`EventLink`), so that two entries prove from the log alone
    that nothing happened to the environment between them. It is ``null`` (present, and null)
    on the first event of an environment, and absent on statements written before links
    existed: :attr:`linked` tells the two apart, and such a statement is *unlinked*, never
    taken as proof of adjacency. A deprecation carries no link.
    """

    NAME: ClassVar[str] = "deployment"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "deployment/v1"
    PURPOSE: ClassVar[str] = "a deploy, rollback or deprecation of a model version"
    KIND: ClassVar[PredicateKind] = "deployment"
    IN_AUDIT: ClassVar[bool] = True
    IN_LINEAGE: ClassVar[bool] = True

    environment: Text
    action: Literal["deploy", "rollback", "deprecate"]
    version: Text | None = None
    previous_version: Text | None = None
    previous: EventLink | None = None
    reason: Text | None = None
    time: AwareDatetime

    @model_validator(mode="after")
    def _link_only_on_events(self) -> DeploymentPredicate:
        if self.action == "deprecate" and "previous" in self.model_fields_set:
            raise ValueError("previous: a deprecation is not an event of an environment")
        return self

    @property
    def linked(self) -> bool:
        """Whether the statement names its previous event (an :class:`EventLink`, or null for
        the first event); False for statements written before links existed."""
        return "previous" in self.model_fields_set

    def to_dict(self) -> dict[str, Any]:
        # ``previous: null`` is a claim (the first event of the environment): keep it.
        out = super().to_dict()
        if self.linked and self.previous is None:
            out["previous"] = None
        return out


class InferencePredicate(Predicate):
    """Which model turned which input into which output, and when (for disputes).

    One record names ``input_digest`` and ``output_digest``. A batch instead names the RFC 9162
    Merkle ``batch_root`` of ``batch_size`` records: leaf ``i`` is the RFC 8785 JSON of
    ``{"input": DIGEST, "output": DIGEST}`` of record ``i`` (``leaf_encoding``), so each
    record is provable alone with an inclusion proof against the signed root.
    """

    NAME: ClassVar[str] = "inference"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "inference/v1"
    PURPOSE: ClassVar[str] = (
        "which model turned which input into which output (one record or a batch)"
    )
    KIND: ClassVar[PredicateKind] = "inference"

    input_digest: Digest | None = None
    model_digest: Digest
    output_digest: Digest | None = None
    batch_root: Hex256 | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    leaf_encoding: Literal["jcs-input-output"] | None = None
    time: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _single_fields(cls, data: Any) -> Any:
        # Without batch fields this is the original one-record form: both digests required.
        if isinstance(data, dict) and data.get("batch_root") is None:
            missing = [f for f in ("input_digest", "output_digest") if data.get(f) is None]
            if missing and data.get("batch_size") is None:
                errors = [InitErrorDetails(type="missing", loc=(f,), input=data) for f in missing]
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return data

    @model_validator(mode="after")
    def _one_or_batch(self) -> InferencePredicate:
        single = self.input_digest is not None and self.output_digest is not None
        batch = self.batch_root is not None and self.batch_size is not None
        partial = (self.input_digest, self.output_digest, self.batch_root, self.batch_size)
        if single == batch or sum(f is not None for f in partial) != 2:
            raise ValueError(
                "give input_digest and output_digest (one record) or batch_root and "
                "batch_size (a batch), not both"
            )
        if batch and self.leaf_encoding is None:
            object.__setattr__(self, "leaf_encoding", "jcs-input-output")
        return self


#: Every registered predicate class by its short name (the CLI's ``attest TYPE``). Filled by
#: :func:`register_predicate` only; read it through :func:`predicate_types` and friends.
PREDICATES: dict[str, type[Predicate]] = {}

_KINDS: frozenset[str] = frozenset(get_args(PredicateKind))
_GATE_KINDS = ("evaluation", "approval")
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

P = TypeVar("P", bound=type[Predicate])


def _record_base(kind: str) -> type[Predicate] | None:
    """The built-in class a class of a registry-record kind must extend (see the docstring)."""
    bases: dict[str, type[Predicate]] = {
        "dataset": DatasetPredicate,
        "model": ModelPredicate,
        "deployment": DeploymentPredicate,
        "inference": InferencePredicate,
    }
    return bases.get(kind)


def register_predicate(cls: P) -> P:
    """Register a predicate class: from now on statements of its type parse to it, and the
    gate, the audit report and lineage read it as its class variables say. Usable as a
    class decorator. :class:`TypeError` if the class breaks a rule of the module docstring."""
    name = getattr(cls, "NAME", None)
    uri = getattr(cls, "PREDICATE_TYPE", None)
    purpose = getattr(cls, "PURPOSE", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TypeError(f"{cls.__name__}.NAME must be a kebab-case name, not {name!r}")
    if not isinstance(uri, str) or not re.fullmatch(r"[a-z][a-z0-9+.-]*:\S+", uri):
        raise TypeError(f"{cls.__name__}.PREDICATE_TYPE must be a URI, not {uri!r}")
    if not isinstance(purpose, str) or not purpose.strip():
        raise TypeError(f"{cls.__name__}.PURPOSE must say what the predicate is for")
    if cls.KIND not in _KINDS:
        raise TypeError(f"{cls.__name__}.KIND {cls.KIND!r} is not one of {sorted(_KINDS)}")
    for other in PREDICATES.values():
        if other is not cls and (name == other.NAME or uri == other.PREDICATE_TYPE):
            raise TypeError(
                f"{cls.__name__}: {name} / {uri} is already registered by {other.__name__}"
            )
    if cls.GATE_EVIDENCE and cls.KIND not in _GATE_KINDS:
        raise TypeError(
            f"{cls.__name__}: the gate reads evaluations and approvals, not {cls.KIND!r}"
        )
    if cls.KIND == "evaluation" and cls.as_outcome is Predicate.as_outcome:
        raise TypeError(f"{cls.__name__}: an evaluation predicate must define as_outcome()")
    if cls.KIND == "approval" and cls.as_decision is Predicate.as_decision:
        raise TypeError(f"{cls.__name__}: an approval predicate must define as_decision()")
    base = _record_base(cls.KIND)
    if base is not None and not issubclass(cls, base):
        raise TypeError(
            f"{cls.__name__}: a {cls.KIND} predicate is a registry record and must "
            f"subclass {base.__name__}"
        )
    PREDICATES[name] = cls
    return cls


def unregister_predicate(cls: type[Predicate]) -> None:
    """Undo :func:`register_predicate` (for tests and plug-ins that unload)."""
    if PREDICATES.get(cls.NAME) is cls:
        del PREDICATES[cls.NAME]


def registered_predicate(uri: str) -> type[Predicate] | None:
    """The registered class of the type URI ``uri``, or None: the type is unknown."""
    for cls in PREDICATES.values():
        if uri == cls.PREDICATE_TYPE:
            return cls
    return None


def predicate_types(
    reader: Literal["all", "gate", "audit", "lineage"] = "all",
) -> tuple[str, ...]:
    """The registered type URIs ``reader`` reads, in registration order: ``gate`` the gate's
    evidence, ``audit`` the audit report's items, ``lineage`` the lineage's items."""

    def reads(cls: type[Predicate]) -> bool:
        if reader == "gate":
            return cls.GATE_EVIDENCE
        if reader == "audit":
            return cls.IN_AUDIT
        return cls.IN_LINEAGE if reader == "lineage" else True

    return tuple(c.PREDICATE_TYPE for c in PREDICATES.values() if reads(c))


for _builtin in (
    DatasetPredicate,
    ModelPredicate,
    EvaluationPredicate,
    ApprovalPredicate,
    DeploymentPredicate,
    InferencePredicate,
):
    register_predicate(_builtin)


def predicate_class(name_or_uri: str) -> type[Predicate]:
    """The class for a short name (``dataset``) or a type URI; :class:`InvalidInput` if none."""
    for cls in PREDICATES.values():
        if name_or_uri in (cls.NAME, cls.PREDICATE_TYPE):
            return cls
    known = ", ".join(PREDICATES)
    raise InvalidInput(f"unknown predicate type {name_or_uri!r} (known: {known})")


def validation_message(exc: ValidationError, what: str) -> str:
    """One line from a pydantic error: the first failing field and why."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid {what}: field '{loc}': {first['msg']}{more}"


def parse_predicate(name_or_uri: str, data: Any) -> Predicate:
    """Validate ``data`` as the named predicate."""
    cls = predicate_class(name_or_uri)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, f"{cls.NAME} predicate")) from None
