"""A typed client for ``contracts/Membership.sol``: organisations, members and roles.

Organisations and roles are named by strings here and by ids on-chain:
``org_id(name) = keccak256(name)`` and ``role_id(name) = keccak256(name)`` (lower case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import keccak, to_checksum_address
from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import role_id
from ailedger.errors import InvalidInput

__all__ = ["ROLES", "MemberRole", "Membership", "org_id"]

#: Roles the workflows use (any lower-case name is accepted).
ROLES = ("admin", "auditor", "deployer", "oracle", "qa", "trainer", "witness")


def org_id(name: str) -> bytes:
    """The id of organisation ``name``: keccak256 of its UTF-8 bytes."""
    if not name:
        raise InvalidInput("an organisation name must not be empty")
    return keccak(text=name)


def _role(name: str) -> bytes:
    if not name or name != name.lower():
        raise InvalidInput(f"role {name!r} must be a non-empty lower-case name")
    return role_id(name)


@dataclass(frozen=True)
class MemberRole:
    """``account`` holds ``role`` in the organisation since block ``since``."""

    account: str
    role: str
    since: int

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "role": self.role, "since_block": self.since}


class Membership(ContractWrapper):
    """The Membership contract at ``contract`` on ``chain``."""

    def global_admin(self) -> str:
        return str(self.chain.call(self.contract, "globalAdmin"))

    def org_exists(self, org: str) -> bool:
        return bool(self.chain.call(self.contract, "orgExists", org_id(org)))

    def create_org(self, org: str, admin: str, *, signer: Signer | AccountSource) -> Receipt:
        """Create ``org`` with ``admin`` holding its admin role (global admin only)."""
        admin = to_checksum_address(admin)
        return self.chain.transact(self.contract, "createOrg", org_id(org), admin, signer=signer)

    def grant(
        self, org: str, account: str, role: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        account = to_checksum_address(account)
        return self.chain.transact(
            self.contract, "grantRole", org_id(org), account, _role(role), signer=signer
        )

    def revoke(
        self, org: str, account: str, role: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        account = to_checksum_address(account)
        return self.chain.transact(
            self.contract, "revokeRole", org_id(org), account, _role(role), signer=signer
        )

    def has_role(self, org: str, account: str, role: str) -> bool:
        account = to_checksum_address(account)
        return bool(self.chain.call(self.contract, "hasRoleIn", org_id(org), account, _role(role)))

    def had_role_at(self, org: str, account: str, role: str, block: int) -> bool:
        """Whether ``account`` held ``role`` in ``org`` after block ``block``."""
        account = to_checksum_address(account)
        return bool(
            self.chain.call(self.contract, "hadRoleAt", org_id(org), account, _role(role), block)
        )

    def members(self, org: str, roles: tuple[str, ...] = ROLES) -> list[MemberRole]:
        """Who holds which role in ``org`` now, from the grant and revoke events.

        Roles outside ``roles`` are reported by their id (``0x...``)."""
        oid = "0x" + org_id(org).hex()
        names = {"0x" + role_id(r).hex(): r for r in roles}
        held: dict[tuple[str, str], int] = {}
        for e in self.chain.events(self.contract):
            if e.event not in ("RoleGranted", "RoleRevoked") or e.args.get("orgId") != oid:
                continue
            key = (str(e.args["account"]), names.get(str(e.args["role"]), str(e.args["role"])))
            if e.event == "RoleGranted":
                held[key] = e.block_number
            else:
                held.pop(key, None)
        return [MemberRole(a, r, b) for (a, r), b in sorted(held.items())]
