"""A typed client for ``contracts/Membership.sol``: organisations, members and roles.

Organisations and roles are named by strings here and by ids on-chain:
``org_id(name) = keccak256(name)`` and ``role_id(name) = keccak256(name)`` (lower case).

Nobody is made a member without consenting: an org admin either relays the account's signed
EIP-712 ``Join`` consent (:meth:`Membership.sign_join`, :meth:`Membership.add_member`), or
invites it (:meth:`Membership.invite`) and the account accepts in its own transaction
(:meth:`Membership.accept`). :meth:`Membership.enrol` does whichever fits and grants a role.
The global admin (the contract's owner) hands over in two steps
(:meth:`Membership.transfer_admin`, then :meth:`Membership.accept_admin` by the new admin).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import keccak, to_checksum_address
from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import Domain, SigningKey, join_digest, role_id, sign_digest
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer

__all__ = ["ROLES", "JoinConsent", "MemberRole", "Membership", "org_id"]

_NO_DEADLINE = 2**64

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


@dataclass(frozen=True)
class JoinConsent:
    """``account``'s signed consent to join organisation ``org_id`` (EIP-712 ``Join``)."""

    org_id: bytes
    account: str
    nonce: int
    deadline: int
    signature: bytes


class Membership(ContractWrapper):
    """The Membership contract at ``contract`` on ``chain``."""

    def domain(self) -> Domain:
        return Domain.membership(self.chain.chain_id, self.address)

    def global_admin(self) -> str:
        return str(self.chain.call(self.contract, "owner"))

    def transfer_admin(self, new_admin: str, *, signer: Signer | AccountSource) -> Receipt:
        """Propose ``new_admin`` as global admin; it takes over by :meth:`accept_admin`."""
        new_admin = to_checksum_address(new_admin)
        return self.chain.transact(self.contract, "transferOwnership", new_admin, signer=signer)

    def accept_admin(self, *, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "acceptOwnership", signer=signer)

    def org_exists(self, org: str) -> bool:
        return bool(self.chain.call(self.contract, "orgExists", org_id(org)))

    def org_of(self, account: str) -> bytes | None:
        """The id of the organisation ``account`` belongs to, or None."""
        oid = bytes(self.chain.call(self.contract, "orgOf", to_checksum_address(account)))
        return None if oid == b"\0" * 32 else oid

    def is_invited(self, org: str, account: str) -> bool:
        """Whether ``account`` holds an open invitation to ``org``."""
        account = to_checksum_address(account)
        return bool(self.chain.call(self.contract, "isInvited", org_id(org), account))

    def create_org(self, org: str, admin: str, *, signer: Signer | AccountSource) -> Receipt:
        """Create ``org`` whose first admin is ``admin`` (global admin only). Unless ``admin``
        is the sender, it joins (with the admin role) only when it consents."""
        admin = to_checksum_address(admin)
        return self.chain.transact(self.contract, "createOrg", org_id(org), admin, signer=signer)

    def sign_join(
        self,
        org: str,
        key: SigningKey,
        nonce: int | None = None,
        deadline: int = _NO_DEADLINE,
    ) -> JoinConsent:
        """The consent of ``key``'s account to join ``org``, for an org admin to relay."""
        account = _address_of(key)
        nonce = secrets.randbits(128) if nonce is None else nonce
        oid = org_id(org)
        digest = join_digest(self.domain(), oid, account, nonce, deadline)
        return JoinConsent(oid, account, nonce, deadline, sign_digest(digest, key))

    def add_member(self, consent: JoinConsent, *, signer: Signer | AccountSource) -> Receipt:
        """Add the consenting account to its organisation (an org admin sends it)."""
        c = consent
        return self.chain.transact(
            self.contract,
            "addMember",
            c.org_id,
            c.account,
            c.nonce,
            c.deadline,
            c.signature,
            signer=signer,
        )

    def invite(self, org: str, account: str, *, signer: Signer | AccountSource) -> Receipt:
        """Invite ``account`` to ``org``; it joins by :meth:`accept`."""
        account = to_checksum_address(account)
        return self.chain.transact(self.contract, "invite", org_id(org), account, signer=signer)

    def accept(self, org: str, *, signer: Signer | AccountSource) -> Receipt:
        """Join ``org``, to which the sender was invited."""
        return self.chain.transact(self.contract, "acceptInvitation", org_id(org), signer=signer)

    def enrol(
        self,
        org: str,
        member: SigningKey,
        role: str | None,
        *,
        signer: Signer | AccountSource,
    ) -> list[Receipt]:
        """Make ``member``'s account a member of ``org`` unless it is one already (its key
        signs the consent, ``signer``, an admin of ``org``, relays it; ``org``'s named first
        admin gets the admin role on joining) and grant it ``role`` unless held; the receipts
        of what was sent."""
        account = _address_of(member)
        receipts = []
        if self.org_of(account) != org_id(org):
            consent = self.sign_join(org, member)
            receipts.append(self.add_member(consent, signer=signer))
        if role is not None and not self.has_role(org, account, role):
            receipts.append(self.grant(org, account, role, signer=signer))
        return receipts

    def remove_member(self, org: str, account: str, *, signer: Signer | AccountSource) -> Receipt:
        """Remove ``account`` from ``org`` (an org admin sends it; its roles must have been
        revoked first: ``RolesStillHeld`` otherwise)."""
        account = to_checksum_address(account)
        return self.chain.transact(
            self.contract, "removeMember", org_id(org), account, signer=signer
        )

    def grant(
        self, org: str, account: str, role: str, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Grant ``role`` in ``org`` to ``account``, which must be a member of ``org``."""
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


def _address_of(key: SigningKey) -> str:
    if isinstance(key, bytes | bytearray):
        return Secp256k1Signer(bytes(key)).address
    return to_checksum_address(key.address)
