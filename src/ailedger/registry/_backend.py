"""Where the registry's rules live: the :class:`RegistryBackend` interface and the local one.

Every registry command first signs its statement and appends it to the log (the record),
then tells the backend. The local backend keeps nothing of its own: versions, approvals,
deployments and deprecations are answered from the log's index, and roles from the
workspace's ``[members]`` table in ``config.toml``::

    [members."0x5b38da6a701c568545dcfcb03fcb875f56beddc4"]
    org = "acme"
    roles = ["qa", "trainer"]

A key with no members entry belongs to the organisation in its key metadata (``keys new
--org``), with no roles. Deploys and rollbacks need the ``deployer`` role
(:data:`DEPLOYER_ROLE`, every environment): the registry refuses others before signing, and
the index does not take a deploy or rollback statement by another key as an event
(:meth:`RegistryBackend.may_deploy`). The local roles have little history: the index judges
every event by the roles the workspace grants now, except that a deployer grant records the
log size when it was made (``deployer_since``; absent: since the first entry) and counts for
statements logged from there on only, so a grant never turns an earlier statement of that
key, rejected when it was logged, into an event.

An on-chain backend (ModelRegistry and Membership contracts) sends one transaction per method
and answers ``role_of`` from the Membership contract. Its writes must be idempotent (a retry
after a failure between the log and the chain completes the chain side), which the
contract's ``VersionExists`` / ``AlreadyApproved`` / ``AlreadyCurrent`` errors make checkable.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ailedger.errors import InvalidInput
from ailedger.identity.keys import KeyInfo, Signer
from ailedger.log import LOG_DB_NAME, open_workspace_log
from ailedger.registry._index import EventRow
from ailedger.registry._refs import VersionRef
from ailedger.workspace import Workspace

__all__ = [
    "DEPLOYER_ROLE",
    "LocalBackend",
    "Membership",
    "RegistryBackend",
    "VersionRegistration",
]

#: The local role that may deploy to and roll back every environment.
DEPLOYER_ROLE = "deployer"

_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class VersionRegistration:
    """A model version as a backend registers it (mirrors ``ModelRegistry.registerVersion``)."""

    ref: VersionRef
    digest: str  # "sha256:HEX"
    dataset_roots: tuple[str, ...]
    log_index: int


Membership = tuple[Collection[str], str | None]


class RegistryBackend(Protocol):
    """What the registry asks of the place where release rules are enforced.

    Each write is called after the statement is in the log, with its ``log_index`` and the
    ``signer`` that signed it (the account that sends the transaction or signs the EIP-712
    approval). Writes must accept being called again for the same action (retries)."""

    name: str

    def register_version(self, version: VersionRegistration, *, signer: Signer) -> None: ...

    def approve(
        self, ref: VersionRef, role: str, approve: bool, log_index: int, *, signer: Signer
    ) -> None: ...

    def deploy(self, env: str, ref: VersionRef, log_index: int, *, signer: Signer) -> None: ...

    def rollback(self, env: str, to: VersionRef, log_index: int, *, signer: Signer) -> None: ...

    def deprecate(self, ref: VersionRef, log_index: int, *, signer: Signer) -> None: ...

    def role_of(self, keyid: str) -> Membership | None:
        """The roles and organisation of ``keyid``; None when it belongs to none."""
        ...

    def may_deploy(self, event: EventRow) -> bool:
        """Whether one of ``event.signers`` was allowed to log ``event`` (a deploy or
        rollback of ``event.env``): the index takes only such statements as events."""
        ...

    def may_deprecate(self, ref: VersionRef, signers: tuple[str, ...]) -> bool:
        """Whether one of ``signers`` was allowed to deprecate ``ref``: the index counts
        only such deprecations (one blocks deploys of the version and steers rollbacks)."""
        ...


def normalize_role(role: str) -> str:
    value = role.strip().lower()
    if not _ROLE.fullmatch(value):
        raise InvalidInput(f"not a role name: {role!r} (lower-case letters, digits, _ -)")
    return value


class LocalBackend:
    """Rules answered from the workspace: the log is the record, so writes are no-ops."""

    name = "local"

    def __init__(self, workspace: Workspace, keys: Sequence[KeyInfo] = ()) -> None:
        self._members = workspace.config.section("members")
        self._orgs = {k.keyid.lower(): k.org for k in keys}

    def register_version(self, version: VersionRegistration, *, signer: Signer) -> None:
        return None

    def approve(
        self, ref: VersionRef, role: str, approve: bool, log_index: int, *, signer: Signer
    ) -> None:
        return None

    def deploy(self, env: str, ref: VersionRef, log_index: int, *, signer: Signer) -> None:
        return None

    def rollback(self, env: str, to: VersionRef, log_index: int, *, signer: Signer) -> None:
        return None

    def deprecate(self, ref: VersionRef, log_index: int, *, signer: Signer) -> None:
        return None

    def role_of(self, keyid: str) -> Membership | None:
        entry = self._members.get(keyid.lower())
        if isinstance(entry, dict):
            roles = entry.get("roles", [])
            org = entry.get("org") or self._orgs.get(keyid.lower())
            return {str(r) for r in roles if isinstance(r, str)}, None if org is None else str(org)
        org = self._orgs.get(keyid.lower())
        return None if org is None else (set(), org)

    def may_deploy(self, event: EventRow) -> bool:
        for keyid in event.signers:
            member = self.role_of(keyid)
            if member is None or DEPLOYER_ROLE not in {r.lower() for r in member[0]}:
                continue
            if event.log_index >= _deployer_since(self._members.get(keyid.lower())):
                return True
        return False

    def may_deprecate(self, ref: VersionRef, signers: tuple[str, ...]) -> bool:
        """Any key may deprecate in the local registry (``Registry.deprecate`` checks no
        role), so every deprecation counts."""
        return True

    @staticmethod
    def grant(workspace: Workspace, keyid: str, role: str, org: str | None) -> Workspace:
        """Give ``keyid`` the ``role`` (and set its organisation) in ``config.toml``."""
        data = dict(workspace.config.data)
        members = dict(workspace.config.section("members"))
        entry = dict(members.get(keyid.lower(), {}))
        role = normalize_role(role)
        if role == DEPLOYER_ROLE and role not in entry.get("roles", []):
            entry["deployer_since"] = _log_size(workspace)
        roles = sorted({*entry.get("roles", []), role})
        entry["roles"] = roles
        if org is not None:
            entry["org"] = org
        members[keyid.lower()] = entry
        data["members"] = members
        config = type(workspace.config).from_dict(data, source=workspace.config_path)
        return workspace.save_config(config)

    @staticmethod
    def members(workspace: Workspace) -> dict[str, dict[str, object]]:
        return {
            k: dict(v)
            for k, v in workspace.config.section("members").items()
            if isinstance(v, dict)
        }


def _deployer_since(entry: object) -> int:
    """The log size when a member's deployer role was granted (0 when not recorded)."""
    since = entry.get("deployer_since", 0) if isinstance(entry, dict) else 0
    return since if isinstance(since, int) and not isinstance(since, bool) else 0


def _log_size(workspace: Workspace) -> int:
    """How many entries the workspace's log holds now (0 before it exists)."""
    if not (workspace.path / LOG_DB_NAME).is_file():
        return 0
    log = open_workspace_log(workspace, read_only=True)
    try:
        return log.size()
    finally:
        log.close()
