"""A typed client for ``contracts/ModelRegistry.sol``: versions, approvals, gated deploys.

Names map to ids as on-chain: ``version_id(name, version) = keccak256(abi.encode(name,
version))``, ``env_id(name) = keccak256(name)``, roles and organisations as in
:mod:`ailedger.chain.membership`. Signed approvals are EIP-712 ``Approval`` messages bound
to this contract (:meth:`ModelRegistry.sign_approval`), relayed by anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import keccak
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

__all__ = ["ModelRegistry", "SignedApproval", "VersionInfo", "env_id"]

_NO_DEADLINE = 2**64


def env_id(name: str) -> bytes:
    """The id of a deployment environment (``prod``, ``staging`` ...): keccak256 of its name."""
    if not name:
        raise InvalidInput("an environment name must not be empty")
    return keccak(text=name)


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version."""

    version_id: bytes
    subject_digest: bytes
    metadata_digest: bytes
    registrant: str
    registered_at: int
    deprecated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": "0x" + self.version_id.hex(),
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
    role: bytes
    org_id: bytes
    approver: str
    nonce: int
    deadline: int
    signature: bytes

    def as_tuple(self) -> tuple[bytes, bytes, bytes, str, int, int, bytes]:
        return (
            self.version_id,
            self.role,
            self.org_id,
            self.approver,
            self.nonce,
            self.deadline,
            self.signature,
        )


class ModelRegistry(ContractWrapper):
    """The ModelRegistry contract at ``contract`` on ``chain``."""

    def domain(self) -> Domain:
        return Domain.model_registry(self.chain.chain_id, self.address)

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer)

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
        """Register ``name`` ``version`` (the sender must belong to an organisation)."""
        roots = list(dataset_roots)
        return self._send(
            "registerVersion", name, version, subject_digest, metadata_digest, roots, signer=signer
        )

    def version(self, name: str, version: str) -> VersionInfo | None:
        vid = version_id(name, version)
        subject, metadata, registrant, at, deprecated = self.chain.call(
            self.contract, "getVersion", vid
        )
        if int(registrant, 16) == 0:
            return None
        return VersionInfo(vid, bytes(subject), bytes(metadata), registrant, at, deprecated)

    def deprecate(self, name: str, version: str, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("deprecate", version_id(name, version), signer=signer)

    # -- approvals ---------------------------------------------------------------------

    def approve(
        self, name: str, version: str, role: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("approve", version_id(name, version), role_id(role), signer=signer)

    def sign_approval(
        self,
        name: str,
        version: str,
        role: str,
        org: str,
        key: SigningKey,
        approver: str,
        nonce: int,
        deadline: int = _NO_DEADLINE,
    ) -> SignedApproval:
        """An EIP-712 approval by ``approver`` (whose key is ``key``), for anyone to relay."""
        vid, rid, oid = version_id(name, version), role_id(role), org_id(org)
        digest = approval_digest(self.domain(), vid, rid, oid, approver, nonce, deadline)
        return SignedApproval(vid, rid, oid, approver, nonce, deadline, sign_digest(digest, key))

    def relay_approval(
        self, approval: SignedApproval, *, signer: Signer | AccountSource
    ) -> Receipt:
        return self._send("approveBySig", approval.as_tuple(), signer=signer)

    def approval_count(self, name: str, version: str, role: str) -> int:
        vid = version_id(name, version)
        return int(self.chain.call(self.contract, "approvalCount", vid, role_id(role)))

    # -- environments ------------------------------------------------------------------

    def set_requirement(
        self,
        env: str,
        roles: dict[str, int],
        min_orgs: int,
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Require, in ``env``, ``roles[r]`` approvals per role from ``min_orgs`` orgs."""
        ids = [role_id(r) for r in roles]
        return self._send(
            "setRequirement", env_id(env), ids, list(roles.values()), min_orgs, signer=signer
        )

    def gate_passes(self, env: str, name: str, version: str) -> bool:
        vid = version_id(name, version)
        return bool(self.chain.call(self.contract, "gatePasses", env_id(env), vid))

    def deploy(
        self, env: str, name: str, version: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Deploy the version to ``env``; reverts unless the gate passes."""
        return self._send("deploy", env_id(env), version_id(name, version), signer=signer)

    def rollback(self, env: str, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("rollback", env_id(env), signer=signer)

    def current(self, env: str) -> bytes | None:
        """The version id deployed in ``env`` now, or None."""
        vid = bytes(self.chain.call(self.contract, "currentVersion", env_id(env)))
        return None if vid == b"\0" * 32 else vid
