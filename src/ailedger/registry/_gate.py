"""The gate's evaluation of one merged policy section against verified statements.

Each statement is first screened (about this model? logged no later than ``now``?), then
matched to requirements. Per requirement, a statement or signer that does not count is kept
as an :class:`Excluded` with a reason code, so a failed gate says why each candidate missed:

    signer-not-allowed  no signer of the statement is on the allow lists
    not-a-member        the signer belongs to no organisation
    wrong-role          the signer lacks the role (approvals) or any listed role (evaluations)
    expired             logged longer than ``max_age`` before ``now``
    invalid-predicate   the predicate does not validate
    other-subject       the statement is about another artifact
    logged-after-gate   the statement was logged after ``now``
    unknown-predicate-type  the predicate type is not registered: the gate cannot read it
    not-gate-evidence   a registered type the gate does not read (e.g. a deployment)

The gate reads the predicate types registered as gate evidence
(:func:`ailedger.attest.predicates.predicate_types`): an ``evaluation`` through its
:class:`~ailedger.attest.predicates.Outcome`, an ``approval`` through its
:class:`~ailedger.attest.predicates.Decision`, whatever its class.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ailedger.attest.predicates import Decision, Predicate, registered_predicate
from ailedger.attest.privacy import PRIVACY_ACCOUNTING_TYPE, PRIVACY_EVALUATION
from ailedger.attest.statements import Statement, VerifiedStatement, parse_digest
from ailedger.errors import AiledgerError, InvalidInput
from ailedger.registry._policy_schema import Section, normalize_keyid

__all__ = [
    "ArtifactCheck",
    "Evidence",
    "Excluded",
    "Met",
    "ModelRef",
    "RoleOf",
    "Unmet",
    "run_gate",
]

#: keyid -> (roles held, organisation id), or None if the key belongs to no organisation.
RoleOf = Callable[[str], "tuple[Collection[str], str | None] | None"]
ArtifactCheck = Callable[[], bool] | bool | None


@dataclass(frozen=True)
class ModelRef:
    """The model version the gate is about: ``name@version`` and its subject digest."""

    name: str
    version: str
    digest: str  # "sha256:HEX"

    def __post_init__(self) -> None:
        alg, hexdigest = parse_digest(self.digest)
        object.__setattr__(self, "digest", f"{alg}:{hexdigest}")

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    def matches(self, statement: Statement) -> bool:
        alg, _, hexdigest = self.digest.partition(":")
        return any(s.digest.get(alg) == hexdigest for s in statement.subject)


@dataclass(frozen=True)
class Evidence:
    """A verified statement as the gate sees it: who signed it and when the log took it.

    ``ref`` names it in reports (a log index, an envelope digest). ``predicate`` may be
    passed when already parsed; otherwise it is parsed from ``statement``.
    """

    ref: str
    statement: Statement
    signers: tuple[str, ...]
    logged_at: datetime
    predicate: Predicate | None = None

    def __post_init__(self) -> None:
        if self.logged_at.tzinfo is None:
            raise InvalidInput(f"evidence {self.ref}: logged_at needs a time zone")

    @classmethod
    def from_verified(
        cls, verified: VerifiedStatement, *, ref: str, logged_at: datetime
    ) -> Evidence:
        return cls(
            ref,
            verified.statement,
            tuple(k.keyid for k in verified.signers),
            logged_at,
            verified.predicate,
        )


@dataclass(frozen=True)
class Excluded:
    """A statement (or one of its signers) that did not count, and why."""

    ref: str
    reason: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "reason": self.reason, "message": self.message}


@dataclass(frozen=True)
class Met:
    requirement: str
    message: str
    satisfied_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "message": self.message,
            "satisfied_by": list(self.satisfied_by),
        }


@dataclass(frozen=True)
class Unmet:
    code: str
    requirement: str
    message: str
    excluded: tuple[Excluded, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "requirement": self.requirement,
            "message": self.message,
            "excluded": [e.to_dict() for e in self.excluded],
        }


@dataclass(frozen=True)
class _Evaluation:
    ev: Evidence
    name: str
    metrics: dict[str, float]
    passed: bool
    exit_code: int | None


def _evaluation_view(ev: Evidence, pred: Predicate) -> _Evaluation:
    outcome = pred.as_outcome()
    metrics = {str(k): float(v) for k, v in outcome.metrics.items()}
    return _Evaluation(ev, outcome.name, metrics, outcome.passed, outcome.exit_code)


def _when(ev: Evidence) -> str:
    return ev.logged_at.isoformat(timespec="seconds")


@dataclass
class _Gate:
    section: Section
    role_of: RoleOf
    now: datetime
    evaluations: dict[str, list[_Evaluation]] = field(default_factory=dict)
    approvals: list[tuple[Evidence, Decision]] = field(default_factory=list)
    ignored: list[Excluded] = field(default_factory=list)
    met: list[Met] = field(default_factory=list)
    unmet: list[Unmet] = field(default_factory=list)
    _roles: dict[str, tuple[frozenset[str], str | None] | None] = field(default_factory=dict)

    def screen(self, model: ModelRef, evidence: Iterable[Evidence]) -> None:
        for ev in evidence:
            if ev.logged_at > self.now:
                msg = f"{ev.ref} was logged at {_when(ev)}, after the gate time"
                self.ignored.append(Excluded(ev.ref, "logged-after-gate", msg))
                continue
            if not model.matches(ev.statement):
                msg = f"{ev.ref} is not about {model} ({model.digest})"
                self.ignored.append(Excluded(ev.ref, "other-subject", msg))
                continue
            try:
                pred = ev.predicate
                if pred is None:
                    pred = ev.statement.typed_predicate()
            except InvalidInput as exc:
                self.ignored.append(Excluded(ev.ref, "invalid-predicate", exc.message))
                continue
            kind = ev.statement.predicate_type
            if pred is None or registered_predicate(pred.PREDICATE_TYPE) is not type(pred):
                msg = f"{ev.ref}: predicate type {kind} is not registered; the gate cannot read it"
                self.ignored.append(Excluded(ev.ref, "unknown-predicate-type", msg))
            elif not pred.GATE_EVIDENCE:
                msg = f"{ev.ref}: a {pred.NAME} statement is not gate evidence"
                self.ignored.append(Excluded(ev.ref, "not-gate-evidence", msg))
            elif pred.KIND == "evaluation":
                view = _evaluation_view(ev, pred)
                self.evaluations.setdefault(view.name, []).append(view)
            elif pred.KIND == "approval":
                self.approvals.append((ev, pred.as_decision()))

    def membership(self, keyid: str) -> tuple[frozenset[str], str | None] | None:
        if keyid not in self._roles:
            found = self.role_of(keyid)
            self._roles[keyid] = (
                None if found is None else (frozenset(r.lower() for r in found[0]), found[1])
            )
        return self._roles[keyid]

    def signer_problem(
        self,
        ev: Evidence,
        keyid: str,
        allow: frozenset[str] | None,
        roles: frozenset[str] | None,
    ) -> Excluded | None:
        """Why ``keyid`` cannot act for this requirement, or None if it can."""
        norm = normalize_keyid(keyid)
        for allowed in (self.section.allowed_signers, allow):
            if allowed is not None and norm not in allowed:
                msg = f"{ev.ref}: signer {keyid} is not an allowed signer"
                return Excluded(ev.ref, "signer-not-allowed", msg)
        if roles is None:
            return None
        member = self.membership(keyid)
        if member is None or member[1] is None:
            msg = f"{ev.ref}: signer {keyid} is not a member of any organisation"
            return Excluded(ev.ref, "not-a-member", msg)
        if not member[0] & roles:
            want = " or ".join(sorted(roles))
            held = ", ".join(sorted(member[0])) or "none"
            msg = f"{ev.ref}: signer {keyid} does not hold the role {want} (holds: {held})"
            return Excluded(ev.ref, "wrong-role", msg)
        return None

    def age_problem(self, ev: Evidence, max_age: timedelta | None) -> Excluded | None:
        limit = max_age if max_age is not None else self.section.max_age
        if limit is not None and ev.logged_at < self.now - limit:
            msg = f"{ev.ref} was logged at {_when(ev)}, more than {limit} before the gate"
            return Excluded(ev.ref, "expired", msg)
        return None

    def usable_evaluations(
        self,
        name: str,
        max_age: timedelta | None,
        signers: frozenset[str] | None,
        roles: frozenset[str] | None,
    ) -> tuple[list[_Evaluation], list[Excluded]]:
        usable: list[_Evaluation] = []
        excluded: list[Excluded] = []
        for view in self.evaluations.get(name, []):
            problems = [self.signer_problem(view.ev, k, signers, roles) for k in view.ev.signers]
            if all(p is not None for p in problems):
                first = next((p for p in problems if p is not None), None)
                unsigned = Excluded(
                    view.ev.ref, "signer-not-allowed", f"{view.ev.ref} has no signer"
                )
                excluded.append(first or unsigned)
                continue
            expired = self.age_problem(view.ev, max_age)
            if expired is not None:
                excluded.append(expired)
                continue
            usable.append(view)
        usable.sort(key=lambda v: v.ev.logged_at)
        return usable, excluded


def _missing_code(kind: str, excluded: Sequence[Excluded]) -> str:
    return f"{kind}-expired" if any(e.reason == "expired" for e in excluded) else f"{kind}-missing"


def _check_evaluations(gate: _Gate) -> None:
    for rule in gate.section.evaluations.values():
        req = f"evaluation:{rule.name}"
        usable, excluded = gate.usable_evaluations(
            rule.name, rule.max_age, rule.signers, rule.roles
        )
        if not usable:
            why = f" ({len(excluded)} did not count)" if excluded else ""
            msg = f"evaluation '{rule.name}': no usable result{why}"
            gate.unmet.append(
                Unmet(_missing_code("evaluation", excluded), req, msg, tuple(excluded))
            )
            continue
        latest = usable[-1]
        ref = latest.ev.ref
        missing = [t.metric for t in rule.thresholds if t.metric not in latest.metrics]
        failed = [
            f"{t.metric} = {latest.metrics[t.metric]!r} does not meet {t}"
            for t in rule.thresholds
            if t.metric in latest.metrics and not t.holds(latest.metrics[t.metric])
        ]
        if latest.exit_code not in (None, 0):
            failed.append(f"the command exited with status {latest.exit_code}")
        if missing:
            msg = f"evaluation '{rule.name}' ({ref}) reports no {', '.join(missing)}"
            gate.unmet.append(Unmet("evaluation-metric-missing", req, msg, tuple(excluded)))
        if failed:
            msg = f"evaluation '{rule.name}' ({ref}): " + "; ".join(failed)
            gate.unmet.append(Unmet("evaluation-failed", req, msg, tuple(excluded)))
        if not missing and not failed:
            shown = ", ".join(f"{t.metric} = {latest.metrics[t.metric]!r}" for t in rule.thresholds)
            msg = f"evaluation '{rule.name}': {shown} meets {', '.join(map(str, rule.thresholds))}"
            gate.met.append(Met(req, msg, (ref,)))


def _check_audits(gate: _Gate) -> None:
    for rule in gate.section.audits.values():
        req = f"audit:{rule.name}"
        usable, excluded = gate.usable_evaluations(
            rule.name, rule.max_age, rule.signers, rule.roles
        )
        if not usable:
            why = f" ({len(excluded)} did not count)" if excluded else ""
            msg = f"audit '{rule.name}': no usable result{why}"
            gate.unmet.append(Unmet(_missing_code("audit", excluded), req, msg, tuple(excluded)))
            continue
        latest = usable[-1]
        if latest.passed and latest.exit_code in (None, 0):
            msg = f"audit '{rule.name}' passed ({latest.ev.ref}, {_when(latest.ev)})"
            gate.met.append(Met(req, msg, (latest.ev.ref,)))
        else:
            msg = f"audit '{rule.name}' did not pass ({latest.ev.ref}, {_when(latest.ev)})"
            gate.unmet.append(Unmet("audit-failed", req, msg, tuple(excluded)))


@dataclass(frozen=True)
class _Decision:
    keyid: str
    org: str
    approve: bool
    ev: Evidence


def _decisions(
    gate: _Gate, role: str, max_age: timedelta | None, signers: frozenset[str] | None
) -> tuple[dict[str, _Decision], list[Excluded]]:
    """The latest counting decision of each approver for ``role``, and what did not count."""
    latest: dict[str, _Decision] = {}
    excluded: list[Excluded] = []
    candidates = sorted(
        ((ev, p) for ev, p in gate.approvals if p.role.lower() == role),
        key=lambda item: (item[0].logged_at, item[1].decision == "reject"),
    )
    for ev, pred in candidates:
        expired = gate.age_problem(ev, max_age)
        for keyid in ev.signers:
            problem = gate.signer_problem(ev, keyid, signers, frozenset({role}))
            if problem is None and expired is not None:
                problem = expired
            if problem is not None:
                excluded.append(problem)
                continue
            member = gate.membership(keyid)
            if member is None or member[1] is None:  # signer_problem has excluded these
                continue
            norm = normalize_keyid(keyid)
            latest[norm] = _Decision(norm, member[1], pred.decision == "approve", ev)
    return latest, excluded


def _check_approvals(gate: _Gate) -> None:
    orgs: dict[str, list[str]] = {}
    required = gate.section.approvals
    roles = {p.role.lower() for _, p in gate.approvals} | set(required)
    for role in sorted(roles):
        rule = required.get(role)
        decisions, excluded = _decisions(
            gate, role, rule.max_age if rule else None, rule.signers if rule else None
        )
        approvers = [d for d in decisions.values() if d.approve]
        for d in approvers:
            orgs.setdefault(d.org, []).append(d.ev.ref)
        if rule is None:
            continue
        req = f"approvals:{role}"
        rejected = [d for d in decisions.values() if not d.approve]
        if rejected:
            who = ", ".join(f"{d.keyid} ({d.ev.ref})" for d in rejected)
            msg = f"role {role}: rejected by {who}"
            gate.unmet.append(Unmet("approval-rejected", req, msg))
        if len(approvers) < rule.count:
            why = f"; {len(excluded)} did not count" if excluded else ""
            msg = f"role {role}: {len(approvers)} of {rule.count} approvals{why}"
            gate.unmet.append(Unmet("approvals-missing", req, msg, tuple(excluded)))
        elif not rejected:
            msg = f"role {role}: {len(approvers)} of {rule.count} approvals"
            refs = tuple(dict.fromkeys(d.ev.ref for d in approvers))
            gate.met.append(Met(req, msg, refs))
    need = gate.section.min_organisations
    if need is not None:
        if len(orgs) < need:
            msg = f"approvals come from {len(orgs)} organisation(s); {need} distinct required"
            gate.unmet.append(Unmet("too-few-organisations", "organisations", msg))
        else:
            msg = f"approvals from {len(orgs)} distinct organisations ({need} required)"
            refs = tuple(dict.fromkeys(r for rs in orgs.values() for r in rs))
            gate.met.append(Met("organisations", msg, refs))


def _check_artifact(gate: _Gate, model: ModelRef, artifact_check: ArtifactCheck) -> None:
    if not gate.section.artifact_must_match:
        return
    if artifact_check is None:
        msg = f"the policy requires re-hashing {model}, but no artifact was checked"
        gate.unmet.append(Unmet("artifact-unchecked", "artifact", msg))
        return
    try:
        ok = artifact_check if isinstance(artifact_check, bool) else bool(artifact_check())
        detail = ""
    except AiledgerError as exc:
        ok, detail = False, f": {exc.message}"
    if ok:
        gate.met.append(Met("artifact", f"the artifact on disk matches {model.digest}", ()))
    else:
        msg = f"the artifact on disk no longer matches {model} ({model.digest}){detail}"
        gate.unmet.append(Unmet("artifact-mismatch", "artifact", msg))


def _check_privacy(gate: _Gate) -> None:
    """``max_epsilon``: the latest usable
    :class:`~ailedger.attest.privacy.PrivacyAccountingPredicate` (an evaluation named
    ``differential-privacy``; another predicate under that name does not count; allow-listed
    signers only, when the policy has ``allowed_signers``) must exist, have passed (every
    contributor trained with DP), report ``epsilon`` and stay within the limit. No
    accounting, or one without an epsilon, fails closed."""
    limit = gate.section.max_epsilon
    if limit is None:
        return
    req = "max_epsilon"
    candidates, excluded = gate.usable_evaluations(PRIVACY_EVALUATION, None, None, None)
    # Only an accounting counts: an ordinary evaluation under its name (any `eval` run can
    # report an "epsilon") lists no contributor and hides who trained without DP.
    usable = []
    for view in candidates:
        if view.ev.statement.predicate_type == PRIVACY_ACCOUNTING_TYPE:
            usable.append(view)
        else:
            msg = f"{view.ev.ref} is not a privacy-accounting statement"
            excluded.append(Excluded(view.ev.ref, "invalid-predicate", msg))
    if not usable:
        why = f" ({len(excluded)} did not count)" if excluded else ""
        msg = f"max_epsilon {limit:g}: no usable differential-privacy accounting{why}"
        gate.unmet.append(Unmet("privacy-accounting-missing", req, msg, tuple(excluded)))
        return
    latest = usable[-1]
    epsilon = latest.metrics.get("epsilon", float("inf"))
    if not latest.passed:
        msg = f"{latest.ev.ref}: a contributor trained without differential privacy"
        gate.unmet.append(Unmet("privacy-budget-exceeded", req, msg))
    elif not epsilon <= limit:
        msg = f"{latest.ev.ref}: epsilon {epsilon:g} is over max_epsilon {limit:g}"
        gate.unmet.append(Unmet("privacy-budget-exceeded", req, msg))
    else:
        msg = f"epsilon {epsilon:g} <= max_epsilon {limit:g}"
        gate.met.append(Met(req, msg, (latest.ev.ref,)))


def run_gate(
    section: Section,
    model: ModelRef,
    evidence: Iterable[Evidence],
    role_of: RoleOf,
    now: datetime,
    artifact_check: ArtifactCheck,
) -> tuple[list[Met], list[Unmet], list[Excluded]]:
    """Met and unmet requirements of ``section``, and the statements screened out."""
    gate = _Gate(section, role_of, now)
    gate.screen(model, evidence)
    _check_evaluations(gate)
    _check_audits(gate)
    _check_approvals(gate)
    _check_privacy(gate)
    _check_artifact(gate, model, artifact_check)
    return gate.met, gate.unmet, gate.ignored
