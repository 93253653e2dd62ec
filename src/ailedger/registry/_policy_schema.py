"""The policy file's schema: frozen dataclasses and a loader that names file and line.

A :class:`Section` holds one set of requirements; ``[all]`` applies to every environment and
``[env.NAME]`` adds to it (an entry of the same name, or a scalar, replaces the ``[all]``
one). Every key is checked: an unknown key is an error, so a typo cannot weaken a policy.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from ailedger.errors import InvalidInput, PolicyError
from ailedger.registry._thresholds import (
    Threshold,
    format_duration,
    parse_duration,
    parse_threshold,
)
from ailedger.registry._toml_lines import KeyPath, line_of

__all__ = [
    "MAX_CHAIN_ROLES",
    "UNSAFE_NO_REQUIREMENTS",
    "ApprovalRule",
    "AuditRule",
    "EvaluationRule",
    "Section",
    "load_document",
    "normalize_keyid",
]

#: The top-level policy key that lets a gate pass with no requirement at all. Without it a
#: policy that requires nothing of an environment (an empty or truncated file, or one whose
#: sections are all for other environments) fails the gate with ``policy-requires-nothing``.
UNSAFE_NO_REQUIREMENTS = "unsafe_allow_no_requirements"

#: ModelRegistry.MAX_REQUIREMENTS: roles per environment the contract accepts.
MAX_CHAIN_ROLES = 8
_UINT16 = 65535
_ROLE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_P256_KEYID = re.compile(r"[0-9a-f]{64}")

T = TypeVar("T")


def normalize_keyid(keyid: str) -> str:
    """Ethereum addresses compare case-insensitively: lower-case them."""
    return keyid.lower() if _ADDRESS.fullmatch(keyid) else keyid


@dataclass(frozen=True)
class EvaluationRule:
    """An evaluation that must exist, be fresh, and meet every threshold."""

    name: str
    thresholds: tuple[Threshold, ...]
    max_age: timedelta | None = None
    signers: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threshold": [str(t) for t in self.thresholds]}
        return out | _common_dict(self.max_age, self.signers, self.roles)


@dataclass(frozen=True)
class AuditRule:
    """A named audit (``bias-audit``) that must exist, be fresh and have passed."""

    name: str
    max_age: timedelta | None = None
    signers: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _common_dict(self.max_age, self.signers, self.roles)


@dataclass(frozen=True)
class ApprovalRule:
    """``count`` distinct approvers holding ``role`` (optionally only the listed signers)."""

    role: str
    count: int = 1
    max_age: timedelta | None = None
    signers: frozenset[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count} | _common_dict(self.max_age, self.signers, None)


@dataclass(frozen=True)
class Section:
    """The requirements of ``[all]`` or one ``[env.NAME]`` (or both merged)."""

    max_age: timedelta | None = None
    artifact_must_match: bool | None = None
    allowed_signers: frozenset[str] | None = None
    min_organisations: int | None = None
    #: The largest differential-privacy epsilon a model's training may have spent.
    max_epsilon: float | None = None
    evaluations: Mapping[str, EvaluationRule] = field(default_factory=dict)
    audits: Mapping[str, AuditRule] = field(default_factory=dict)
    approvals: Mapping[str, ApprovalRule] = field(default_factory=dict)

    def merged(self, override: Section) -> Section:
        """This section with ``override``'s scalars and same-named entries replacing ours."""
        return replace(
            self,
            max_age=_pick(override.max_age, self.max_age),
            artifact_must_match=_pick(override.artifact_must_match, self.artifact_must_match),
            allowed_signers=_pick(override.allowed_signers, self.allowed_signers),
            min_organisations=_pick(override.min_organisations, self.min_organisations),
            max_epsilon=_pick(override.max_epsilon, self.max_epsilon),
            evaluations={**self.evaluations, **override.evaluations},
            audits={**self.audits, **override.audits},
            approvals={**self.approvals, **override.approvals},
        )

    def role_names(self) -> frozenset[str]:
        """Every role this section names: approval roles and the roles evaluations and
        audits must be signed by."""
        named: set[str] = set(self.approvals)
        for evaluation in self.evaluations.values():
            named |= evaluation.roles or frozenset()
        for audit in self.audits.values():
            named |= audit.roles or frozenset()
        return frozenset(named)

    def requires_anything(self) -> bool:
        """Whether this section asks anything of a version (an evaluation, an audit, an
        approval, organisations, or the artifact's fingerprint). Age limits and signer allow
        lists only narrow evidence; on their own they require nothing."""
        return bool(
            self.evaluations
            or self.audits
            or self.approvals
            or self.min_organisations
            or self.max_epsilon is not None
            or self.artifact_must_match
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.max_age is not None:
            out["max_age"] = format_duration(self.max_age)
        if self.artifact_must_match is not None:
            out["artifact_must_match"] = self.artifact_must_match
        if self.allowed_signers is not None:
            out["allowed_signers"] = sorted(self.allowed_signers)
        if self.min_organisations is not None:
            out["min_organisations"] = self.min_organisations
        if self.max_epsilon is not None:
            out["max_epsilon"] = self.max_epsilon
        for key, rules in (
            ("evaluations", self.evaluations),
            ("audits", self.audits),
            ("approvals", self.approvals),
        ):
            if rules:
                out[key] = {name: rule.to_dict() for name, rule in rules.items()}
        return out


def _pick(first: T | None, second: T | None) -> T | None:
    return first if first is not None else second


def _common_dict(
    max_age: timedelta | None, signers: frozenset[str] | None, roles: frozenset[str] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if max_age is not None:
        out["max_age"] = format_duration(max_age)
    if signers is not None:
        out["signers"] = sorted(signers)
    if roles is not None:
        out["roles"] = sorted(roles)
    return out


class _Reader:
    """Typed access to the parsed document, raising :class:`PolicyError` with file:line."""

    def __init__(self, filename: str, lines: dict[KeyPath, int]) -> None:
        self.filename = filename
        self.lines = lines

    def fail(self, path: KeyPath, message: str, hint: str | None = None) -> PolicyError:
        line = line_of(self.lines, path)
        where = f"{self.filename}:{line}" if line is not None else self.filename
        return PolicyError(f"{where}: {message}", hint=hint)

    def table(self, path: KeyPath, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{_show(path)} must be a table")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(allowed)
                raise self.fail(
                    (*path, key),
                    f"unknown key '{key}' in {_show(path)}{hint}",
                    hint=f"known keys there: {known}",
                )
        return value

    def mapping(self, path: KeyPath, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{_show(path)} must be a table")
        return value

    def convert(self, path: KeyPath, value: Any, parse: Callable[[Any], T]) -> T:
        try:
            return parse(value)
        except InvalidInput as exc:
            raise self.fail(path, f"{_show(path)}: {exc.message}", hint=exc.hint) from None

    def integer(self, path: KeyPath, value: Any, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"{_show(path)} must be an integer, not {value!r}")
        if not minimum <= value <= _UINT16:
            raise self.fail(path, f"{_show(path)} must be between {minimum} and {_UINT16}")
        return value

    def names(self, path: KeyPath, value: Any, pattern: re.Pattern[str], what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"{_show(path)} must be a list of strings")
        for item in value:
            if not pattern.fullmatch(item):
                raise self.fail(path, f"{_show(path)}: {item!r} is not {what}")
        return list(value)

    def keyids(self, path: KeyPath, value: Any) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"{_show(path)} must be a list of addresses or key ids")
        for item in value:
            if not (_ADDRESS.fullmatch(item) or _P256_KEYID.fullmatch(item)):
                raise self.fail(
                    path,
                    f"{_show(path)}: {item!r} is neither an address (0x + 40 hex) "
                    "nor a key id (64 lower-case hex)",
                )
        if not value:
            raise self.fail(path, f"{_show(path)} is empty: nobody could sign; remove the key")
        return frozenset(normalize_keyid(v) for v in value)

    def common(
        self, path: KeyPath, table: dict[str, Any]
    ) -> tuple[timedelta | None, frozenset[str] | None, frozenset[str] | None]:
        max_age = table.get("max_age")
        signers = table.get("signers")
        roles = table.get("roles")
        return (
            None if max_age is None else self.convert((*path, "max_age"), max_age, parse_duration),
            None if signers is None else self.keyids((*path, "signers"), signers),
            None
            if roles is None
            else frozenset(self.names((*path, "roles"), roles, _ROLE, "a lower-case role name")),
        )


def _show(path: KeyPath) -> str:
    return ".".join(path) if path else "the policy"


def _section(reader: _Reader, path: KeyPath, value: Any) -> Section:
    table = reader.table(
        path,
        value,
        (
            "max_age",
            "artifact_must_match",
            "allowed_signers",
            "min_organisations",
            "max_epsilon",
            "evaluations",
            "audits",
            "approvals",
        ),
    )
    max_age = table.get("max_age")
    artifact = table.get("artifact_must_match")
    if artifact is not None and not isinstance(artifact, bool):
        raise reader.fail((*path, "artifact_must_match"), "artifact_must_match must be true/false")
    signers = table.get("allowed_signers")
    orgs = table.get("min_organisations")
    epsilon = table.get("max_epsilon")
    if epsilon is not None and (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, int | float)
        or not 0 < epsilon < float("inf")
    ):
        raise reader.fail((*path, "max_epsilon"), "max_epsilon must be a positive number")
    return Section(
        max_age=None
        if max_age is None
        else reader.convert((*path, "max_age"), max_age, parse_duration),
        artifact_must_match=artifact,
        allowed_signers=None
        if signers is None
        else reader.keyids((*path, "allowed_signers"), signers),
        min_organisations=None
        if orgs is None
        else reader.integer((*path, "min_organisations"), orgs),
        max_epsilon=None if epsilon is None else float(epsilon),
        evaluations=_evaluations(reader, (*path, "evaluations"), table.get("evaluations", {})),
        audits=_audits(reader, (*path, "audits"), table.get("audits", {})),
        approvals=_approvals(reader, (*path, "approvals"), table.get("approvals", {})),
    )


def _entry_name(reader: _Reader, path: KeyPath, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(path[-1]):
        raise reader.fail(path, f"{path[-1]!r} is not {what}")
    return path[-1]


def _evaluations(reader: _Reader, path: KeyPath, value: Any) -> dict[str, EvaluationRule]:
    out: dict[str, EvaluationRule] = {}
    for name, entry in reader.mapping(path, value).items():
        where = (*path, name)
        _entry_name(reader, where, _NAME, "an evaluation name")
        if isinstance(entry, str | list):
            entry = {"threshold": entry}
        table = reader.table(where, entry, ("threshold", "max_age", "signers", "roles"))
        if "threshold" not in table:
            raise reader.fail(where, f"{_show(where)} needs a threshold, e.g. 'accuracy >= 0.9'")
        raw = table["threshold"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            raise reader.fail((*where, "threshold"), "threshold must be a string or a list of them")
        thresholds = tuple(
            reader.convert((*where, "threshold"), item, parse_threshold) for item in items
        )
        out[name] = EvaluationRule(name, thresholds, *reader.common(where, table))
    return out


def _audits(reader: _Reader, path: KeyPath, value: Any) -> dict[str, AuditRule]:
    if isinstance(value, list):
        names = reader.names(path, value, _NAME, "an audit name")
        return {name: AuditRule(name) for name in names}
    out: dict[str, AuditRule] = {}
    for name, entry in reader.mapping(path, value).items():
        where = (*path, name)
        _entry_name(reader, where, _NAME, "an audit name")
        table = reader.table(where, entry, ("max_age", "signers", "roles"))
        out[name] = AuditRule(name, *reader.common(where, table))
    return out


def _approvals(reader: _Reader, path: KeyPath, value: Any) -> dict[str, ApprovalRule]:
    out: dict[str, ApprovalRule] = {}
    for role, entry in reader.mapping(path, value).items():
        where = (*path, role)
        _entry_name(reader, where, _ROLE, "a lower-case role name (the chain hashes it)")
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = {"count": entry}
        table = reader.table(where, entry, ("count", "max_age", "signers"))
        count = reader.integer((*where, "count"), table.get("count", 1))
        max_age, signers, _ = reader.common(where, table)
        out[role] = ApprovalRule(role, count, max_age, signers)
    if len(out) > MAX_CHAIN_ROLES:
        raise reader.fail(
            path, f"{_show(path)} names {len(out)} roles; the chain accepts {MAX_CHAIN_ROLES}"
        )
    return out


def load_document(
    document: dict[str, Any], filename: str, lines: dict[KeyPath, int]
) -> tuple[Section, dict[str, Section]]:
    """``[all]`` and the ``[env.NAME]`` sections of a parsed policy document."""
    reader = _Reader(filename, lines)
    reader.table((), document, ("version", UNSAFE_NO_REQUIREMENTS, "all", "env"))
    if not isinstance(document.get(UNSAFE_NO_REQUIREMENTS, False), bool):
        raise reader.fail(
            (UNSAFE_NO_REQUIREMENTS,), f"{UNSAFE_NO_REQUIREMENTS} must be true or false"
        )
    version = document.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise reader.fail(("version",), f"unsupported policy version {version!r} (expected 1)")
    base = _section(reader, ("all",), document.get("all", {}))
    envs_raw = document.get("env", {})
    envs_table = reader.mapping(("env",), envs_raw)
    envs: dict[str, Section] = {}
    for name, value in envs_table.items():
        _entry_name(reader, ("env", name), _NAME, "an environment name")
        envs[name] = _section(reader, ("env", name), value)
        merged = base.merged(envs[name])
        if len(merged.approvals) > MAX_CHAIN_ROLES:
            raise reader.fail(
                ("env", name, "approvals"),
                f"env.{name} requires {len(merged.approvals)} roles with [all]; "
                f"the chain accepts {MAX_CHAIN_ROLES}",
            )
    return base, envs
