"""A typed client for ``contracts/ModelRegistry.sol``: versions, approvals, gated deploys.

Names map to ids as on-chain: versions are namespaced by the organisation that registered
them, ``version_key(org, name, version) = keccak256(abi.encode(org_id(org), name,
version))``; ``env_id(name) = keccak256(name)``, roles and organisations as in
:mod:`ailedger.chain.membership`. Versions are addressed by their id (``bytes``) here.
An approval names the subject digest it approves and the environment it is for (``None``:
every environment); signed approvals are EIP-712 ``Approval`` messages bound to this
contract (:meth:`ModelRegistry.sign_approval`), relayed by anyone. The registry admin is
OpenZeppelin's default admin (two-step handover after a delay); it grants the per-environment
deployer role (:meth:`ModelRegistry.grant_deployer`); a requirement change that weakens an
environment's rule is scheduled (:meth:`ModelRegistry.pending_requirement`) and put into
effect by :meth:`ModelRegistry.apply_requirement` after the contract's delay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import keccak, to_checksum_address
from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import (
    Domain,
    SigningKey,
    approval_digest,
    role_id,
    sign_digest,
    version_id,
)
from ailedger.chain.membership import org_id
from ailedger.errors import InvalidInput

__all__ = [
    "ANY_ENV",
    "ModelRegistry",
    "PendingRequirement",
    "SignedApproval",
    "VersionInfo",
    "env_id",
    "version_key",
]

_NO_DEADLINE = 2**64
#: The environment id an approval for every environment names.
ANY_ENV = b"\0" * 32


def env_id(name: str | None) -> bytes:
    """The id of a deployment environment (``prod``, ``staging`` ...): keccak256 of its name;
    None is :data:`ANY_ENV` (an approval valid in every environment)."""
    if name is None:
        return ANY_ENV
    if not name:
        raise InvalidInput("an environment name must not be empty")
    return keccak(text=name)


def version_key(org: str, name: str, version: str) -> bytes:
    """The id of version ``name`` ``version`` registered by organisation ``org``."""
    return version_id(org_id(org), name, version)


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version."""

    version_id: bytes
    org_id: bytes
    subject_digest: bytes
    metadata_digest: bytes
    registrant: str
    registered_at: int
    deprecated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": "0x" + self.version_id.hex(),
            "org_id": "0x" + self.org_id.hex(),
            "subject_digest": self.subject_digest.hex(),
            "metadata_digest": self.metadata_digest.hex(),
            "registrant": self.registrant,
            "registered_at_block": self.registered_at,
            "deprecated": self.deprecated,
        }


@dataclass(frozen=True)
class SignedApproval:
    """An approval signed off-chain, as ``approveBySig`` takes it."""

    version_id: bytes
    subject_digest: bytes
    env: bytes
    role: bytes
    org_id: bytes
    approver: str
    nonce: int
    deadline: int
    signature: bytes

    def as_tuple(self) -> tuple[bytes, bytes, bytes, bytes, bytes, str, int, int, bytes]:
        return (
            self.version_id,
            self.subject_digest,
            self.env,
            self.role,
            self.org_id,
            self.approver,
            self.nonce,
            self.deadline,
            self.signature,
        )


@dataclass(frozen=True)
class PendingRequirement:
    """A weakening requirement change waiting for its delay (``eta``, a unix time)."""

    roles: tuple[tuple[bytes, int], ...]
    min_orgs: int
    self_approval: bool
    eta: int


class ModelRegistry(ContractWrapper):
    """The ModelRegistry contract at ``contract`` on ``chain``."""

    def domain(self) -> Domain:
        return Domain.model_registry(self.chain.chain_id, self.address)

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer)

    def admin(self) -> str:
        """The registry admin (OpenZeppelin's default admin)."""
        return str(self.chain.call(self.contract, "defaultAdmin"))

    # -- versions ----------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        version: str,
        subject_digest: bytes,
        metadata_digest: bytes,
        dataset_roots: Sequence[bytes] = (),
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Register ``name`` ``version`` in the sender's organisation (the sender must hold
        the trainer role there)."""
        roots = list(dataset_roots)
        return self._send(
            "registerVersion", name, version, subject_digest, metadata_digest, roots, signer=signer
        )

    def version(self, vid: bytes) -> VersionInfo | None:
        org, subject, metadata, registrant, at, deprecated = self.chain.call(
            self.contract, "getVersion", vid
        )
        if int(registrant, 16) == 0:
            return None
        return VersionInfo(
            vid, bytes(org), bytes(subject), bytes(metadata), registrant, at, deprecated
        )

    def deprecate(self, vid: bytes, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("deprecate", vid, signer=signer)

    # -- approvals ---------------------------------------------------------------------

    def approve(
        self,
        vid: bytes,
        subject_digest: bytes,
        role: str,
        *,
        env: str | None = None,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Approve version ``vid`` with subject ``subject_digest`` in ``role`` for ``env``
        (None: every environment), in the sender's own transaction."""
        return self._send("approve", vid, subject_digest, env_id(env), role_id(role), signer=signer)

    def sign_approval(
        self,
        vid: bytes,
        subject_digest: bytes,
        role: str,
        org: str,
        key: SigningKey,
        approver: str,
        nonce: int,
        deadline: int = _NO_DEADLINE,
        *,
        env: str | None = None,
    ) -> SignedApproval:
        """An EIP-712 approval by ``approver`` (whose key is ``key``, a member of ``org``),
        for anyone to relay."""
        rid, oid, eid = role_id(role), org_id(org), env_id(env)
        approver = to_checksum_address(approver)
        digest = approval_digest(
            self.domain(), vid, subject_digest, eid, rid, oid, approver, nonce, deadline
        )
        sig = sign_digest(digest, key)
        return SignedApproval(vid, subject_digest, eid, rid, oid, approver, nonce, deadline, sig)

    def relay_approval(
        self, approval: SignedApproval, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("approveBySig", approval.as_tuple(), signer=signer)

    def relay_batch(
        self, approvals: Sequence[SignedApproval], *, signer: Signer | AccountSource
    ) -> Receipt:
        """Relay up to 16 signed approvals; those whose nonce is used already are skipped."""
        return self._send("approveBatch", [a.as_tuple() for a in approvals], signer=signer)

    def revoke_approval(self, vid: bytes, *, signer: Signer | AccountSource) -> Receipt:
        """Withdraw the sender's approval of ``vid``."""
        return self._send("revokeApproval", vid, signer=signer)

    def cancel_nonce(self, nonce: int, *, signer: Signer | AccountSource) -> Receipt:
        """Burn an approval nonce (withdrawing the approval that used it, if any)."""
        return self._send("cancelNonce", nonce, signer=signer)

    def has_approved(self, vid: bytes, approver: str) -> bool:
        approver = to_checksum_address(approver)
        return bool(self.chain.call(self.contract, "hasApproved", vid, approver))

    def approval_count(self, vid: bytes, role: str, env: str | None = None) -> int:
        """Approvals of ``vid`` in ``role`` that count for ``env`` now."""
        return int(self.chain.call(self.contract, "approvalCount", vid, env_id(env), role_id(role)))

    # -- environments ------------------------------------------------------------------

    def set_requirement(
        self,
        env: str,
        roles: Mapping[str, int],
        min_orgs: int,
        *,
        self_approval: bool = False,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Require, in ``env``, ``roles[r]`` distinct approvers per role from ``min_orgs``
        organisations. A weaker rule than the current one is only scheduled."""
        ids = [role_id(r) for r in roles]
        counts = list(roles.values())
        return self._send(
            "setRequirement", env_id(env), ids, counts, min_orgs, self_approval, signer=signer
        )

    def pending_requirement(self, env: str) -> PendingRequirement | None:
        ids, counts, min_orgs, self_approval, eta = self.chain.call(
            self.contract, "pendingRequirement", env_id(env)
        )
        if int(eta) == 0:
            return None
        pairs = tuple((bytes(r), int(c)) for r, c in zip(ids, counts, strict=True))
        return PendingRequirement(pairs, int(min_orgs), bool(self_approval), int(eta))

    def apply_requirement(self, env: str, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("applyRequirement", env_id(env), signer=signer)

    def deployer_role(self, env: str) -> bytes:
        return bytes(self.chain.call(self.contract, "deployerRole", env_id(env)))

    def grant_deployer(self, env: str, account: str, *, signer: Signer | AccountSource) -> Receipt:
        """Let ``account`` deploy and roll back in ``env`` (registry admin only)."""
        account = to_checksum_address(account)
        return self._send("grantRole", self.deployer_role(env), account, signer=signer)

    def revoke_deployer(self, env: str, account: str, *, signer: Signer | AccountSource) -> Receipt:
        account = to_checksum_address(account)
        return self._send("revokeRole", self.deployer_role(env), account, signer=signer)

    def is_deployer(self, env: str, account: str) -> bool:
        account = to_checksum_address(account)
        return bool(self.chain.call(self.contract, "hasRole", self.deployer_role(env), account))

    def gate_passes(self, env: str, vid: bytes) -> bool:
        return bool(self.chain.call(self.contract, "gatePasses", env_id(env), vid))

    def deploy(
        self, env: str, vid: bytes, subject_digest: bytes, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Deploy version ``vid``, whose subject must be ``subject_digest``, to ``env``;
        reverts unless the gate passes."""
        return self._send("deploy", env_id(env), vid, subject_digest, signer=signer)

    def rollback_to(self, env: str, vid: bytes, *, signer: Signer | AccountSource) -> Receipt:
        """Roll ``env`` back to ``vid``, a version it ran before (the gate applies again).
        The target is the caller's: :meth:`ailedger.registry.Registry.rollback` picks it from
        the signed log (the version that served before the current one became current)."""
        return self._send("rollbackTo", env_id(env), vid, signer=signer)

    def current(self, env: str) -> bytes | None:
        """The version id deployed in ``env`` now, or None."""
        vid = bytes(self.chain.call(self.contract, "currentVersion", env_id(env)))
        return None if vid == b"\0" * 32 else vid
