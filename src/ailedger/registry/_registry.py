"""The model registry: register, evaluate, approve, gate, deploy, roll back, deprecate, infer.

::

    with Registry.open(workspace, keys=keystore.list_keys()) as reg:
        reg.register_dataset(Path("train.csv"), VersionRef("patients", "1"), signer)
        reg.register_model(Path("model/"), VersionRef("triage", "1.0"), signer,
                           datasets=[VersionRef("patients", "1")])
        reg.deploy(VersionRef("triage", "1.0"), "prod", signer, policy)

Every action signs an in-toto statement and appends it to the workspace log first; the log
is the record. The subject of each statement is the artifact's digest, named ``NAME@VERSION``.
Then the index (:mod:`ailedger.registry._index`) is brought up to date from the log, and
last the :class:`RegistryBackend` is told (a no-op locally; a transaction on a chain). A
failure after the append leaves the log entry, which the next command indexes. Re-running an
action that is already in the log (a registration of the same artifact, a deploy of the
version serving, a rollback to it, a deprecation, an approval the backend lacks) signs
nothing, returns the existing entry (``already``) and tells the backend again, so a retry
completes what a failure between the log and the backend left undone; backends must
therefore accept repeated calls. A backend with rules of its own (:class:`PreflightBackend`:
the chain's requirement, roles and gate) is asked before a deploy or rollback is signed, and
handed the policy to enforce.

A deploy or rollback names the previous deploy or rollback of its environment
(``previous``: log index and leaf hash, null for the first; :mod:`ailedger.registry._events`)
and is appended by compare-and-swap on the log size, so the events of an environment form
one chain that proves "nothing in between" from the log alone (:mod:`.trace`).

Refusals happen before anything is signed: unknown references (:class:`NotFound`, listing
what exists), a second registration of a name with another artifact, a deprecated version,
a rollback with nothing to roll back to (:class:`ConflictError`),
a key without the role (:class:`RoleMissing`) and a failed gate (:class:`GateFailed`). A
deploy or rollback that another event of its environment overtook between its decision and
its append is refused after signing but before logging (:class:`ConflictError`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

import rfc8785

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    ApprovalPredicate,
    DatasetPredicate,
    DeploymentPredicate,
    EvaluationPredicate,
    InferencePredicate,
    ModelPredicate,
    Predicate,
    TrainingMetadata,
    predicate_types,
    registered_predicate,
)
from ailedger.attest.statements import Subject, attest, verify_statement
from ailedger.errors import AiledgerError, ConflictError, InvalidInput, NotFound
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import KeyInfo, Signer
from ailedger.log import TransparencyLog, known_keys_check, open_workspace_log
from ailedger.registry import _batch, _events
from ailedger.registry._backend import (
    DEPLOYER_ROLE,
    LocalBackend,
    RegistryBackend,
    VersionRegistration,
    normalize_role,
)
from ailedger.registry._index import INDEX_DB_NAME, EventRow, RegistryIndex, VersionRow
from ailedger.registry._records import (
    Recorded,
    RoleMissing,
    named_subject,
    path_of,
    utc_now,
)
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import EvaluationResult
from ailedger.registry.policy import Evidence, GateResult, ModelRef, Policy, evaluate_policy
from ailedger.workspace import Workspace

__all__ = [
    "INDEX_DB_NAME",
    "Appender",
    "EventRow",
    "LocalBackend",
    "PreflightBackend",
    "Recorded",
    "Registry",
    "RegistryBackend",
    "RoleMissing",
    "VersionRef",
    "VersionRegistration",
    "VersionRow",
]

_SINGLE = ("metric", "value", "comparator", "threshold")

#: How the registry appends a signed envelope to a log it does not write itself (a log
#: service): submit it, wait until the log's own copy (``Registry.log``, e.g. a verified
#: mirror) holds it, and return its index. There is no compare-and-swap on the log size:
#: an event that lost a race is judged after the fact (see :mod:`._events`).
Appender = Callable[[bytes], int]


@runtime_checkable
class PreflightBackend(Protocol):
    """A backend with rules of its own that can refuse a deploy or a rollback (the chain's
    requirement, roles and gate): the registry asks it after its own checks and before
    signing, so a refusal leaves nothing in the log (``prepare_register``,
    ``prepare_approve`` and ``prepare_deprecate`` likewise). ``prepare_deploy`` also makes the
    backend enforce the policy's approvals for ``env``. ``approved`` tells whether it holds
    an approval already: a repeated approval it lacks is a retry (completed without a new
    log entry), one it holds is a fresh decision (signed again, e.g. to renew its age)."""

    def approved(self, ref: VersionRef, role: str, *, signer: Signer) -> bool: ...

    def prepare_deploy(
        self, ref: VersionRef, env: str, policy: Policy, *, signer: Signer
    ) -> None: ...

    def prepare_rollback(self, env: str, to: VersionRef, *, signer: Signer) -> None: ...

    def prepare_register(self, version: VersionRegistration, *, signer: Signer) -> None: ...

    def prepare_approve(self, ref: VersionRef, role: str, *, signer: Signer) -> None: ...

    def prepare_deprecate(self, ref: VersionRef, *, signer: Signer) -> None: ...

    def serves(self, env: str, ref: VersionRef) -> bool: ...

    def learn_roles(self, roles: Iterable[str]) -> None: ...

    def taken(self, event: EventRow) -> bool:
        """Whether the backend itself took ``event`` (the contract's own deploy/rollback
        event from one of its signers): such an event outranks statements it never took."""
        ...


class Registry:
    """The registry of one workspace: its log, its index and a backend."""

    def __init__(
        self,
        workspace: Workspace,
        log: TransparencyLog,
        index: RegistryIndex,
        backend: RegistryBackend,
        keys: Sequence[KeyInfo],
        appender: Appender | None = None,
    ) -> None:
        self.workspace = workspace
        self.log = log
        self.appender = appender
        self.index = index
        self.backend = backend
        self.keys = list(keys)
        self.batch_dir = workspace.path / "inference"
        self._judged = False

    @classmethod
    def open(
        cls,
        workspace: Workspace,
        *,
        keys: Sequence[KeyInfo] = (),
        backend: RegistryBackend | None = None,
        read_only: bool = False,
        log: TransparencyLog | None = None,
        index_path: Path | None = None,
        appender: Appender | None = None,
    ) -> Registry:
        """Open the workspace's log and index (creating them) and bring the index up to date.

        ``keys`` are the workspace keys whose signatures the log admits and the gate trusts.
        ``read_only`` writes nothing to the workspace (for lookups, gate, trace, lineage).
        ``log`` (with its own ``index_path``) is another log than the workspace's, e.g. the
        verified mirror of a log service; the registry takes it over (and closes it).
        ``appender`` writes to that log's source (the service) instead of ``log`` itself.
        """
        if log is None:
            log = open_workspace_log(
                workspace,
                check_signature=known_keys_check([k.public_key for k in keys]),
                read_only=read_only,
            )
        try:
            index = RegistryIndex(index_path or workspace.path / INDEX_DB_NAME, read_only=read_only)
        except BaseException:
            log.close()
            raise
        registry = cls(
            workspace, log, index, backend or LocalBackend(workspace, keys), keys, appender
        )
        try:
            registry.sync()
        except BaseException:
            registry.close()
            raise
        return registry

    def close(self) -> None:
        self.index.close()
        self.log.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def sync(self) -> int:
        """Index the log entries not indexed yet, then judge which deploy and rollback
        statements are events (their signer may deploy there, and they extend their
        environment's chain; see :mod:`._index`); return how many entries were read."""
        read = self.index.sync(self.log, lambda root: _batch.read(self.batch_dir, root))
        # the first sync judges every event (the roles may have changed since), later ones
        # the events read since (or all again after the index was rebuilt)
        if read or not self._judged or self.index.unjudged():
            taken = self.backend.taken if isinstance(self.backend, PreflightBackend) else None
            self.index.judge(self.backend.may_deploy, self.backend.may_deprecate, taken)
            self._judged = True
        return read

    def _may_deploy(self, env: str, signer: Signer) -> None:
        """Refuse (before signing) a deploy or rollback by a key the index would not take
        as an event of ``env``. A backend with rules of its own (the chain) is asked by its
        preflight instead, which also lets the registry admin set a first requirement."""
        if isinstance(self.backend, PreflightBackend):
            return
        probe = EventRow(
            self.log.size(), env, 0, "deploy", VersionRef("probe", "0"), "", (signer.keyid,)
        )
        if not self.backend.may_deploy(probe):
            raise RoleMissing(
                f"key {signer.keyid} may not deploy to {env} in the {self.backend.name} "
                f"registry: it does not hold the role {DEPLOYER_ROLE!r}",
                hint=f"an admin grants it: `ailedger roles grant KEY {DEPLOYER_ROLE}`",
            )

    def append_envelope(self, envelope: bytes, *, expect_size: int | None = None) -> int:
        """Append a signed envelope to the log (through :attr:`appender` when the log is a
        service's: ``expect_size`` is then not checked) and index it; its log index."""
        if self.appender is None:
            index = self.log.append(envelope, expect_size=expect_size)
        else:
            index = self.appender(envelope)
        self.sync()
        return index

    def _append(self, predicate: Predicate, subjects: list[Subject], signer: Signer) -> int:
        return self.append_envelope(attest(predicate, subjects, [signer]).to_json())

    def _completed_by_its_signer(self, what: str, index: int, signer: Signer) -> None:
        """A retry completes a logged action on a backend with rules of its own (the chain)
        only with the key that signed it, so the log never credits a key the backend did
        not act for (and a key the backend refused cannot be replaced by another)."""
        if not isinstance(self.backend, PreflightBackend):
            return  # the local backend acts on nothing: the existing entry is the answer
        signers = [s.lower() for s in self.log.get(index).signers]
        if signer.keyid.lower() not in signers:
            raise ConflictError(
                f"{what} is log entry {index}, signed by {', '.join(signers) or 'nobody'}; "
                f"key {signer.keyid} cannot complete it",
                hint="complete it with the key that signed it (--key NAME), "
                "or check the state with `ailedger status`",
            )

    def _append_event(
        self, head: _events.Head, predicate: DeploymentPredicate, subject: Subject, signer: Signer
    ) -> int:
        envelope = attest(predicate, [subject], [signer]).to_json()
        ref = VersionRef.parse(predicate.version or "")
        # the log grew meanwhile: a deprecation of the version logged since refuses it too
        return _events.append(
            self.append_envelope,
            self.index,
            self.sync,
            head,
            envelope,
            lambda: self._not_deprecated(ref),
            swap=self.appender is None,
        )

    # --- lookups ---------------------------------------------------------------------------

    def _lookup(self, kind: str, ref: VersionRef) -> VersionRow:
        row = self.index.version(kind, ref)
        if row is not None:
            return row
        same = self.index.versions(kind, ref.name)
        known = same or self.index.versions(kind)
        listed = ", ".join(str(r.ref) for r in known[-20:]) or "none"
        which = f"versions of {ref.name}" if same else f"registered {kind}s"
        raise NotFound(
            f"unknown {kind} {ref}; {which}: {listed}",
            hint=f"register it with `ailedger {kind} register`",
        )

    def dataset(self, ref: VersionRef) -> VersionRow:
        return self._lookup("dataset", ref)

    def model(self, ref: VersionRef) -> VersionRow:
        return self._lookup("model", ref)

    def stack(self, env: str) -> list[VersionRef]:
        """What served ``env``, as a rollback walks it back: current last.

        Each entry is a time a version became current, and the entries below it are what
        served before it became current. A deploy pushes its version. A rollback to ``X``
        returns to the nearest entry below the top that is ``X`` and drops the entries above
        it, so ``X``'s own past comes back with it: after deploys of r@1, r@2, r@3, r@1, r@2 a
        rollback gives r@1 (stack r@1 r@2 r@3 r@1), the next r@3, then r@2, then r@1. A
        rollback event naming a version not below the top (a log written by hand) pushes it.
        Deprecations do not change the history; :meth:`rollback` skips them.
        """
        stack: list[VersionRef] = []
        for event in self.index.events(env):
            below = stack[:-1]
            if stack and event.ref == stack[-1]:
                continue  # already current (only a log written by hand has this)
            if event.action == "rollback" and event.ref in below:
                del stack[len(below) - below[::-1].index(event.ref) :]
            else:
                stack.append(event.ref)
        return stack

    def current(self, env: str) -> VersionRef | None:
        stack = self.stack(env)
        return stack[-1] if stack else None

    # --- registration ----------------------------------------------------------------------

    def _existing(self, kind: str, ref: VersionRef, digest: str) -> VersionRow | None:
        row = self.index.version(kind, ref)
        if row is not None and row.digest != digest:
            raise ConflictError(
                f"{kind} {ref} is already registered (entry {row.log_index}) with {row.digest}, "
                f"not {digest}",
                hint="register the changed artifact under a new version",
            )
        return row

    def register_dataset(
        self,
        path: Path,
        ref: VersionRef,
        signer: Signer,
        *,
        format: str | None = None,
        secret: bytes | None = None,
        skip_lines: int = 0,
        header_row: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Recorded:
        """Fingerprint the dataset at ``path`` and sign a dataset statement about it.

        ``metadata_hash`` binds the fingerprint's metadata (CSV: header, ``skip_lines``,
        ``header_row``, ``skipped_sha256``), so the statement says how the root was read.
        ``progress`` is called with the bytes read as the data streams by."""
        fp = fingerprint_dataset(
            path,
            secret=secret,
            format=format,
            skip_lines=skip_lines,
            header_row=header_row,
            progress=progress,
        )
        digest = f"sha256:{fp.data_sha256}"
        predicate = DatasetPredicate(
            root=fp.root.hex(),
            size=fp.size,
            scheme=fp.scheme,
            format=fp.format,
            metadata_hash="sha256:" + hashlib.sha256(rfc8785.dumps(fp.metadata)).hexdigest(),
            location=path.resolve().as_uri(),
        )
        row = self._existing("dataset", ref, digest)
        if row is not None:
            return Recorded("dataset", str(ref), row.log_index, digest, predicate.to_dict(), True)
        index = self._append(predicate, [named_subject(ref, digest)], signer)
        return Recorded("dataset", str(ref), index, digest, predicate.to_dict())

    def register_model(
        self,
        path: Path,
        ref: VersionRef,
        signer: Signer,
        *,
        datasets: Sequence[VersionRef] = (),
        params: Mapping[str, Any] | None = None,
        code_revision: str | None = None,
        team: str | None = None,
    ) -> Recorded:
        """Fingerprint the model at ``path`` and sign its manifest and training metadata."""
        roots = [str(self.dataset(d).root) for d in datasets]
        fp = fingerprint_model(path)
        training = TrainingMetadata(
            dataset_roots=roots,
            code_revision=code_revision,
            hyperparameters=dict(params or {}),
            training_date=utc_now(),
            team=team,
        )
        manifest = ModelPredicate.from_manifest(fp.to_dict(), training)
        predicate = ModelPredicate.model_validate(
            {**manifest.to_dict(), "location": path.resolve().as_uri()}
        )
        digest = f"sha256:{fp.subject_digest.hex()}"
        row = self._existing("model", ref, digest)
        if row is None:
            if isinstance(self.backend, PreflightBackend):
                planned = VersionRegistration(ref, digest, tuple(roots), self.log.size())
                self.backend.prepare_register(planned, signer=signer)
            index = self._append(predicate, [named_subject(ref, digest)], signer)
        else:
            index = row.log_index
            self._completed_by_its_signer(f"the registration of {ref}", index, signer)
        self.backend.register_version(
            VersionRegistration(ref, digest, tuple(roots), index), signer=signer
        )
        return Recorded("model", str(ref), index, digest, predicate.to_dict(), row is not None)

    # --- evaluations and approvals ---------------------------------------------------------

    def record_evaluation(
        self, ref: VersionRef, result: EvaluationResult, signer: Signer
    ) -> Recorded:
        """Sign the outcome of an evaluation of ``ref``, passed or not."""
        row = self.model(ref)
        fields = result.predicate_fields()
        if any(fields.get(k) is None for k in _SINGLE):
            fields = {k: v for k, v in fields.items() if k not in _SINGLE}
        predicate = EvaluationPredicate.model_validate(fields)
        index = self._append(predicate, [named_subject(ref, row.digest)], signer)
        return Recorded("evaluation", str(ref), index, row.digest, predicate.to_dict())

    def approve(
        self,
        ref: VersionRef,
        role: str,
        signer: Signer,
        *,
        comment: str | None = None,
        reject: bool = False,
    ) -> Recorded:
        """Sign an approval (or rejection) of ``ref`` for ``role``; the key must hold it."""
        row = self.model(ref)
        role = normalize_role(role)
        if isinstance(self.backend, PreflightBackend):
            self.backend.learn_roles([role])
        member = self.backend.role_of(signer.keyid)
        held = {r.lower() for r in member[0]} if member is not None else set()
        if role not in held:
            raise RoleMissing(
                f"key {signer.keyid} does not hold the role {role!r} in the {self.backend.name} "
                f"registry (holds: {', '.join(sorted(held)) or 'none'})",
                hint=f"an admin grants it: `ailedger roles grant KEY {role}`",
            )
        decision: Literal["approve", "reject"] = "reject" if reject else "approve"
        found = self._approval_by(row, role, signer.keyid)
        if (
            found is not None
            and (found.decision, found.comment) == (decision, comment)
            and isinstance(self.backend, PreflightBackend)
            and not reject
            and not self.backend.approved(ref, role, signer=signer)
        ):
            index = found.index  # the approval this key signed (found by its signer)
            self.backend.approve(ref, role, not reject, index, signer=signer)
            return Recorded("approval", str(ref), index, row.digest, found.predicate, True)
        if isinstance(self.backend, PreflightBackend) and not reject:
            self.backend.prepare_approve(ref, role, signer=signer)
        predicate = ApprovalPredicate(
            role=role,
            decision=decision,
            comment=comment,
            comment_hash=None
            if comment is None
            else "sha256:" + hashlib.sha256(comment.encode()).hexdigest(),
            time=utc_now(),
        )
        index = self._append(predicate, [named_subject(ref, row.digest)], signer)
        self.backend.approve(ref, role, not reject, index, signer=signer)
        return Recorded("approval", str(ref), index, row.digest, predicate.to_dict())

    def _approval_by(self, row: VersionRow, role: str, keyid: str) -> _Approval | None:
        """The latest approval statement of ``row`` for ``role`` signed by ``keyid``."""
        trusted = [k.public_key for k in self.keys]
        found: _Approval | None = None
        for entry in self.log.query(
            subject=row.digest, predicate_type=ApprovalPredicate.PREDICATE_TYPE, limit=None
        ):
            try:
                verified = verify_statement(Envelope.from_json(entry.envelope), trusted)
            except AiledgerError:
                continue
            pred = verified.predicate
            signers = {k.keyid.lower() for k in verified.signers}
            if not isinstance(pred, ApprovalPredicate) or pred.role != role:
                continue
            if keyid.lower() in signers and (found is None or entry.index > found.index):
                found = _Approval(entry.index, pred.decision, pred.comment, pred.to_dict())
        return found

    # --- the gate and deployments ----------------------------------------------------------

    def evidence(self, row: VersionRow) -> list[Evidence]:
        """The statements about the version in the log that the gate reads, verified against
        the known keys (statements that do not verify are left out).

        These are the predicate types registered as gate evidence
        (:func:`~ailedger.attest.predicates.predicate_types`), and statements of types not
        registered at all: the gate cannot read those and lists them as screened out
        (``unknown-predicate-type``) rather than letting them vanish.
        """
        trusted = [k.public_key for k in self.keys]
        out: list[Evidence] = []
        readable = set(predicate_types("gate"))
        entries = [
            entry
            for kind in self.log.predicate_types(row.digest)
            if kind in readable or registered_predicate(kind) is None
            for entry in self.log.query(subject=row.digest, predicate_type=kind, limit=None)
        ]
        for entry in sorted(entries, key=lambda e: e.index):
            try:
                verified = verify_statement(Envelope.from_json(entry.envelope), trusted)
            except AiledgerError:
                continue  # not signed by a known key, or not a statement: not evidence
            logged = datetime.fromtimestamp(entry.time_ms / 1000, UTC)
            out.append(
                Evidence.from_verified(verified, ref=f"entry {entry.index}", logged_at=logged)
            )
        return out

    def gate(
        self,
        ref: VersionRef,
        policy: Policy,
        env: str,
        *,
        now: datetime | None = None,
        path: Path | None = None,
    ) -> GateResult:
        """Check the policy for ``env`` against the log; re-hash the artifact when asked."""
        row = self.model(ref)
        artifact = path if path is not None else path_of(row.location)

        def check() -> bool:
            if artifact is None:
                raise NotFound(f"{ref} was registered without a local path; pass --path")
            return f"sha256:{fingerprint_model(artifact).subject_digest.hex()}" == row.digest

        if isinstance(self.backend, PreflightBackend):
            self.backend.learn_roles(policy.section_for(env).role_names())
        return evaluate_policy(
            policy,
            env,
            model_ref=ModelRef(ref.name, ref.version, row.digest),
            statements=self.evidence(row),
            role_of=self.backend.role_of,
            now=now or utc_now(),
            artifact_check=check,
        )

    def _not_deprecated(self, ref: VersionRef) -> None:
        found = self.index.deprecation(ref)
        if found is not None:
            why = f": {found[1]}" if found[1] else ""
            raise ConflictError(f"{ref} is deprecated (entry {found[0]}{why})")

    def deploy(
        self,
        ref: VersionRef,
        env: str,
        signer: Signer,
        policy: Policy,
        *,
        path: Path | None = None,
    ) -> Recorded:
        """Gate ``ref`` for ``env``, then sign and log the deployment."""
        row = self.model(ref)
        self._not_deprecated(ref)
        self._may_deploy(env, signer)
        head = _events.head(self.index, env)
        current = self.current(env)
        if current == ref:
            return self._renotify(env, row, signer)
        result = self.gate(ref, policy, env, path=path)
        result.raise_for_unmet()
        if isinstance(self.backend, PreflightBackend):
            self.backend.prepare_deploy(ref, env, policy, signer=signer)
        predicate = DeploymentPredicate(
            environment=env,
            action="deploy",
            version=str(ref),
            previous_version=None if current is None else str(current),
            previous=_events.link(self.log, head.last),
            time=utc_now(),
        )
        index = self._append_event(head, predicate, named_subject(ref, row.digest), signer)
        self.backend.deploy(env, ref, index, signer=signer)
        gate = {"gate": result.to_dict()}
        return Recorded("deploy", str(ref), index, row.digest, predicate.to_dict(), extra=gate)

    def _renotify(self, env: str, row: VersionRow, signer: Signer) -> Recorded:
        """``row`` already serves ``env``: tell the backend again (a retry after a failure
        between the log and the backend completes it) and sign nothing."""
        last = self.index.last_event(env)
        if last is None or last.ref != row.ref:  # pragma: no cover - current() read the events
            raise ConflictError(f"{row.ref} does not serve {env}")
        extra = {"note": f"{row.ref} already serves {env}"}
        if isinstance(self.backend, PreflightBackend) and self.backend.serves(env, row.ref):
            # nothing to complete: any deployer may ask, whoever signed the event
            return Recorded(last.action, str(row.ref), last.log_index, row.digest, {}, True, extra)
        self._completed_by_its_signer(
            f"the {last.action} of {row.ref} to {env}", last.log_index, signer
        )
        if last.action == "deploy":
            self.backend.deploy(env, row.ref, last.log_index, signer=signer)
        else:
            self.backend.rollback(env, row.ref, last.log_index, signer=signer)
        return Recorded(last.action, str(row.ref), last.log_index, row.digest, {}, True, extra)

    def rollback(self, env: str, signer: Signer, *, to: VersionRef | None = None) -> Recorded:
        """Return ``env`` to the version that served before the current one became current
        (see :meth:`stack`), skipping deprecated versions; or to ``to``, its nearest earlier
        entry. Each further rollback walks one more step back along that history."""
        self._may_deploy(env, signer)
        head = _events.head(self.index, env)
        stack = self.stack(env)
        if not stack:
            raise ConflictError(f"nothing has been deployed to {env}; nothing to roll back")
        current = stack[-1]
        earlier = stack[:-1]
        if to is None:
            skipped = [r for r in earlier if r != current and self.index.deprecation(r)]
            candidates = [r for r in earlier if r != current and self.index.deprecation(r) is None]
            if not candidates:
                why = (
                    f"the earlier versions there are deprecated "
                    f"({', '.join(dict.fromkeys(map(str, skipped)))})"
                    if skipped
                    else f"{current} is the only version deployed"
                )
                raise ConflictError(f"nothing to roll back to in {env}: {why}")
            target = candidates[-1]
        elif to == current:
            return self._renotify(env, self.model(to), signer)
        elif to not in earlier:
            listed = ", ".join(dict.fromkeys(map(str, earlier))) or "none"
            raise ConflictError(
                f"cannot roll {env} back to {to}: it is not an earlier deployment there "
                f"(earlier: {listed})"
            )
        else:
            target = to
        self._not_deprecated(target)
        row = self.model(target)
        if isinstance(self.backend, PreflightBackend):
            self.backend.prepare_rollback(env, target, signer=signer)
        predicate = DeploymentPredicate(
            environment=env,
            action="rollback",
            version=str(target),
            previous_version=str(current),
            previous=_events.link(self.log, head.last),
            time=utc_now(),
        )
        subject = named_subject(target, row.digest)
        index = self._append_event(head, predicate, subject, signer)
        self.backend.rollback(env, target, index, signer=signer)
        return Recorded("rollback", str(target), index, row.digest, predicate.to_dict())

    def deprecate(self, ref: VersionRef, reason: str, signer: Signer) -> Recorded:
        """Mark ``ref`` deprecated: it can no longer be deployed or rolled back to."""
        row = self.model(ref)
        if not reason.strip():
            raise InvalidInput("give a --reason for the deprecation")
        found = self.index.deprecation(ref)
        if found is not None:
            self._completed_by_its_signer(f"the deprecation of {ref}", found[0], signer)
            self.backend.deprecate(ref, found[0], signer=signer)
            return Recorded("deprecate", str(ref), found[0], row.digest, {}, already=True)
        if isinstance(self.backend, PreflightBackend):
            self.backend.prepare_deprecate(ref, signer=signer)
        predicate = DeploymentPredicate(
            environment="*", action="deprecate", version=str(ref), reason=reason, time=utc_now()
        )
        index = self._append(predicate, [named_subject(ref, row.digest)], signer)
        self.backend.deprecate(ref, index, signer=signer)
        return Recorded("deprecate", str(ref), index, row.digest, predicate.to_dict())

    # --- inference records -----------------------------------------------------------------

    def record_inference(
        self, ref: VersionRef, input_digest: str, output_digest: str, signer: Signer
    ) -> Recorded:
        """Sign that ``ref`` turned the input into the output."""
        row = self.model(ref)
        predicate = InferencePredicate(
            input_digest=input_digest,
            model_digest=row.digest,
            output_digest=output_digest,
            time=utc_now(),
        )
        subjects = [
            named_subject(ref, row.digest),
            named_subject("input", input_digest),
            named_subject("output", output_digest),
        ]
        index = self._append(predicate, subjects, signer)
        return Recorded("inference", str(ref), index, row.digest, predicate.to_dict())

    def record_inference_batch(
        self, ref: VersionRef, records: Sequence[tuple[str, str]], signer: Signer
    ) -> Recorded:
        """Sign many (input, output) records under one Merkle root; keep the records."""
        row = self.model(ref)
        root = _batch.write(self.batch_dir, records)
        predicate = InferencePredicate(
            model_digest=row.digest, batch_root=root, batch_size=len(records), time=utc_now()
        )
        index = self._append(predicate, [named_subject(ref, row.digest)], signer)
        extra = {"records": len(records), "batch_file": str(self.batch_dir / f"{root}.jsonl")}
        return Recorded("inference", str(ref), index, row.digest, predicate.to_dict(), extra=extra)


@dataclass(frozen=True)
class _Approval:
    index: int
    decision: str
    comment: str | None
    predicate: dict[str, Any]
