"""Release policies: what a model version needs before it may be deployed, and the gate.

A policy is a TOML file (see ``examples/policy.toml``)::

    version = 1
    [all]                                   # every environment
    max_age = "30d"                         # evaluations and approvals older than this expire
    artifact_must_match = true              # re-hash the model and compare with the registry
    allowed_signers = ["0x...", "<p256 keyid>"]
    [all.evaluations]
    accuracy = "accuracy >= 0.9"            # or a table: threshold, max_age, signers, roles
    [all.audits.bias-audit]                 # must exist and have passed
    roles = ["auditor"]
    [env.prod]                              # adds to / replaces entries of [all]
    min_organisations = 2                   # distinct organisations among all approvers
    max_epsilon = 8.0                       # differential privacy: at most this epsilon spent
    [env.prod.approvals]
    qa = 2                                  # or a table: count, max_age, signers
    security = { count = 1, signers = ["0x..."] }

Errors are :class:`PolicyError` naming the file and line; unknown keys are errors. When the
policy has ``[env.X]`` sections, a gate for another environment fails (``unknown-environment``);
a policy with only ``[all]`` applies to every environment.

:func:`evaluate_policy` checks verified statements (:class:`Evidence`) and returns every
unmet requirement with a code (``evaluation-missing``, ``evaluation-expired``,
``evaluation-failed``, ``evaluation-metric-missing``, ``audit-missing``, ``audit-expired``,
``audit-failed``, ``approvals-missing``, ``approval-rejected``, ``too-few-organisations``,
``artifact-mismatch``, ``artifact-unchecked``, ``privacy-accounting-missing``,
``privacy-budget-exceeded``, ``unknown-environment``; all listed with the
screening reasons in :data:`ailedger._codes.GATE_CODES`) and, for every met
one, the statements that satisfied it. The latest usable result of an evaluation counts, and
the latest decision of each approver per role. Ages run from the log time.
:func:`policy_requirements_for_chain` gives the ModelRegistry requirement for the same rules
(``max_epsilon`` is checked by the gate only: the contract reads no privacy accounting).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ailedger import _toml
from ailedger.errors import GateFailed, InvalidInput, NotFound, PolicyError
from ailedger.registry._gate import (
    ArtifactCheck,
    Evidence,
    Excluded,
    Met,
    ModelRef,
    RoleOf,
    Unmet,
    run_gate,
)
from ailedger.registry._policy_schema import (
    UNSAFE_NO_REQUIREMENTS,
    ApprovalRule,
    AuditRule,
    EvaluationRule,
    Section,
    load_document,
)
from ailedger.registry._thresholds import (
    Threshold,
    format_duration,
    parse_duration,
    parse_threshold,
)
from ailedger.registry._toml_lines import key_lines

__all__ = [
    "ApprovalRule",
    "ArtifactCheck",
    "AuditRule",
    "ChainRequirement",
    "EvaluationRule",
    "Evidence",
    "Excluded",
    "GateResult",
    "Met",
    "ModelRef",
    "Policy",
    "RoleOf",
    "Section",
    "Threshold",
    "Unmet",
    "dumps_policy",
    "evaluate_policy",
    "format_duration",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "parse_threshold",
    "policy_requirements_for_chain",
]

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$|\s*\(at end of document\)$")


@dataclass(frozen=True)
class Policy:
    """A parsed policy: ``[all]`` and the ``[env.NAME]`` sections."""

    all: Section
    envs: dict[str, Section]
    source: str = field(default="<policy>", compare=False)
    #: ``unsafe_allow_no_requirements = true``: an environment may require nothing.
    allow_no_requirements: bool = False

    def section_for(self, env: str) -> Section:
        """The requirements for ``env``: ``[all]`` merged with ``[env.NAME]``."""
        return self.all.merged(self.envs[env]) if env in self.envs else self.all

    def knows(self, env: str) -> bool:
        return not self.envs or env in self.envs

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": 1}
        if self.allow_no_requirements:
            out[UNSAFE_NO_REQUIREMENTS] = True
        if base := self.all.to_dict():
            out["all"] = base
        if self.envs:
            out["env"] = {name: s.to_dict() for name, s in self.envs.items()}
        return out


def parse_policy(text: str, filename: str = "<policy>") -> Policy:
    """Parse policy TOML; :class:`PolicyError` names ``filename`` and the line."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = match.group(1) if match and match.group(1) else None
        where = f"{filename}:{line}" if line else filename
        reason = message[: match.start()] if match else message
        raise PolicyError(f"{where}: not valid TOML: {reason}") from None
    base, envs = load_document(document, filename, key_lines(text))
    return Policy(base, envs, filename, document.get(UNSAFE_NO_REQUIREMENTS, False) is True)


def load_policy(path: Path) -> Policy:
    """Read and parse the policy file at ``path``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such policy file: {path}") from None
    except IsADirectoryError:
        raise PolicyError(f"{path} is a directory, not a policy file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_policy(text, str(path))


def dumps_policy(policy: Policy) -> str:
    """The policy as TOML that :func:`parse_policy` reads back to an equal policy."""
    return _toml.dumps(policy.to_dict())


@dataclass(frozen=True)
class GateResult:
    """The outcome of a gate: ``passed`` and every met and unmet requirement."""

    env: str
    model: str
    now: datetime
    met: tuple[Met, ...]
    unmet: tuple[Unmet, ...]
    ignored: tuple[Excluded, ...]

    @property
    def passed(self) -> bool:
        return not self.unmet

    def lines(self, *, max_ignored: int = 10) -> list[str]:
        """One human line per requirement, unmet first; under each unmet one, the evidence
        that did not count for it and why; then the statements the gate ignored and why (the
        first ``max_ignored``; ``--json`` lists all)."""
        out: list[str] = []
        for u in self.unmet:
            out.append(f"FAIL [{u.code}] {u.message}")
            out.extend(f"       did not count: {_excluded(e)}" for e in u.excluded)
        out.extend(f"ok   {m.message}" for m in self.met)
        if self.ignored:
            out.append(f"ignored {len(self.ignored)} statement(s):")
            out.extend(f"       {_excluded(e)}" for e in self.ignored[:max_ignored])
            if len(self.ignored) > max_ignored:
                out.append(
                    f"       ... and {len(self.ignored) - max_ignored} more (--json lists all)"
                )
        return out

    def raise_for_unmet(self) -> None:
        """Raise :class:`GateFailed` listing every unmet requirement, if any."""
        if self.unmet:
            listed = "; ".join(f"[{u.code}] {u.message}" for u in self.unmet)
            raise GateFailed(
                f"{self.model} may not go to {self.env}: {len(self.unmet)} unmet: {listed}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "model": self.model,
            "time": self.now.isoformat(),
            "passed": self.passed,
            "unmet": [u.to_dict() for u in self.unmet],
            "met": [m.to_dict() for m in self.met],
            "ignored": [e.to_dict() for e in self.ignored],
        }


def _excluded(e: Excluded) -> str:
    """``REF: why [reason]`` (the message names the reference already when it starts with it)."""
    text = e.message if e.message.startswith(e.ref) else f"{e.ref}: {e.message}"
    return f"{text} [{e.reason}]"


def evaluate_policy(
    policy: Policy,
    env: str,
    *,
    model_ref: ModelRef,
    statements: Sequence[Evidence],
    role_of: RoleOf,
    now: datetime,
    artifact_check: ArtifactCheck = None,
) -> GateResult:
    """Check ``statements`` (verified, about ``model_ref``) against the policy for ``env``.

    ``role_of(keyid)`` gives the roles and organisation of a signer (None: no organisation);
    ``artifact_check`` is a bool or a callable re-hashing the artifact (called only when the
    policy requires it; an :class:`AiledgerError` it raises counts as a mismatch).
    """
    if now.tzinfo is None:
        raise InvalidInput("the gate time needs a time zone")
    met, unmet, ignored = run_gate(
        policy.section_for(env), model_ref, statements, role_of, now, artifact_check
    )
    if not policy.knows(env):
        known = ", ".join(sorted(policy.envs))
        msg = f"the policy names no environment {env!r} (it names: {known})"
        unmet.insert(0, Unmet("unknown-environment", "environment", msg))
    elif not policy.section_for(env).requires_anything() and not policy.allow_no_requirements:
        msg = (
            f"{policy.source} requires nothing for {env!r}: a policy without requirements "
            f"passes nothing (set {UNSAFE_NO_REQUIREMENTS} = true to allow it)"
        )
        unmet.insert(0, Unmet("policy-requires-nothing", "policy", msg))
    return GateResult(env, str(model_ref), now, tuple(met), tuple(unmet), tuple(ignored))


@dataclass(frozen=True)
class ChainRequirement:
    """``ModelRegistry.setRequirement(env, roles, counts, minOrgs)`` for one environment."""

    env: str
    roles: tuple[tuple[str, int], ...]
    min_organisations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "roles": [{"role": r, "count": c} for r, c in self.roles],
            "min_organisations": self.min_organisations,
        }


def policy_requirements_for_chain(policy: Policy, env: str) -> ChainRequirement:
    """The approvals part of the policy for ``env``, as the contract enforces it at deploy.

    Roles are sorted by name; ``min_organisations`` is 0 when the policy sets none. Signer
    allow lists and ages are off-chain checks the contract does not repeat.
    """
    if not policy.knows(env):
        raise PolicyError(f"{policy.source}: the policy names no environment {env!r}")
    section = policy.section_for(env)
    roles = tuple(sorted((r.role, r.count) for r in section.approvals.values()))
    return ChainRequirement(env, roles, section.min_organisations or 0)
