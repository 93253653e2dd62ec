"""The on-chain registry backend: ModelRegistry and Membership contracts.

::

    chain = open_workspace_chain(workspace)
    deployment = DeploymentBook(workspace.path / DEPLOYMENTS_FILE).require(chain.chain_id)
    backend = ChainBackend.from_deployment(chain, deployment, keys=keystore.list_keys())
    with Registry.open(workspace, keys=keystore.list_keys(), backend=backend) as reg:
        reg.deploy(VersionRef("triage", "1.0"), "prod", signer, policy)

Each write is one transaction sent by the key that signed the log statement (so that key
must be a secp256k1 key with ether). On-chain, version names are namespaced by the
registering organisation: a registration goes to the organisation of the signing key (which
must hold the trainer role there), and a later action on ``NAME@VERSION`` resolves to the
version of that name and number registered by ``owner_org`` when given, else by one of the
workspace's organisations (the keys' ``org``); a name that several of them registered is a
:class:`ConflictError`, never a guess. An approval is sent for the subject digest the version
was registered with, valid in every environment. Writes are idempotent: when the contract
reverts with ``VersionExists`` / ``AlreadyApproved`` / ``AlreadyCurrent`` /
``VersionDeprecated`` because the action already happened (a retry after the node went
away between the log and the chain), the backend reads the on-chain state, and if it is
what the action would have made it, the write counts as done; otherwise the revert
(:class:`ContractReverted`) or a :class:`ConflictError` stands.

Before a deploy is signed, :meth:`ChainBackend.prepare_deploy` makes the environment's
on-chain requirement (``ModelRegistry.setRequirement``) equal to the policy's
:func:`~ailedger.registry.policy.policy_requirements_for_chain`, so the contract enforces the
approvals the off-chain gate checked (only the registry's admin may set it), and runs the
deploy as a call, so that a refusal by the contract (its gate, the deployer role) comes
before the log entry; :meth:`ChainBackend.prepare_rollback` does the same for rollbacks.
The log chooses a rollback's target (:meth:`Registry.stack
<ailedger.registry._registry.Registry.stack>`: the version that served before the current
one became current, deprecated ones skipped) and the chain is told it with
``rollbackTo(env, target)``, never with the contract's own ``rollback()`` (a pop of its
stack), so the contract serves what the log says after any sequence of deploys and rollbacks.
Registration is not checked first: a registrant outside every organisation gets the log
entry and a ``NotAMember`` revert, which a retry completes once the key is a member.

On-chain fields: the subject digest is the model's ``sha256`` subject digest, the metadata
digest holds the log index of the model statement (a 32-byte big-endian integer), dataset
roots are the datasets' Merkle roots. A rejection (``approve --reject``) is recorded in the
log only: the contract counts approvals and has no rejections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ailedger.chain._revert import ContractReverted
from ailedger.chain.client import Chain
from ailedger.chain.deployments import Deployment
from ailedger.chain.eip712 import role_id, version_id
from ailedger.chain.membership import ROLES, Membership, org_id
from ailedger.chain.registry import ModelRegistry, VersionInfo, env_id
from ailedger.errors import ConflictError, InvalidInput, KeyAccessError, NotFound
from ailedger.identity.keys import KeyInfo, Secp256k1Signer, Signer, checksum_address
from ailedger.registry._backend import Membership as MemberInfo
from ailedger.registry._backend import VersionRegistration
from ailedger.registry._index import EventRow
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import ChainRequirement, Policy, policy_requirements_for_chain

__all__ = ["ChainBackend", "RequirementNotSynced", "chain_requirement", "digest_bytes"]

_ZERO = b"\0" * 32


class RequirementNotSynced(ConflictError):
    """The environment's on-chain requirement differs from the policy, and the deploying key
    is not the registry admin who could set it."""


def digest_bytes(text: str) -> bytes:
    """``sha256:HEX`` (or bare 64-digit hex) as the 32 bytes a ``bytes32`` field holds."""
    hexpart = text.split(":", 1)[1] if ":" in text else text
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        raise InvalidInput(f"not a hex digest: {text!r}") from None
    if len(raw) != 32:
        raise InvalidInput(f"not a 32-byte digest: {text!r}")
    return raw


def _tx_signer(signer: Signer) -> Secp256k1Signer:
    if not isinstance(signer, Secp256k1Signer):
        raise KeyAccessError(
            f"key {signer.keyid} is {signer.keytype}: the chain backend sends transactions, "
            "which needs a secp256k1 key",
            hint="sign with a secp256k1 key, or use --backend local",
        )
    return signer


def chain_requirement(
    registry: ModelRegistry, env: str, roles: Iterable[str] = ()
) -> ChainRequirement | None:
    """The requirement ``env`` has on-chain now; roles among ``roles`` and the standard
    ones are named, others shown by their id (``0x...``)."""
    ids, counts, min_orgs, _self_approval, exists = registry.chain.call(
        registry.contract, "getRequirement", env_id(env)
    )
    if not exists:
        return None
    names = {role_id(r): r for r in (*ROLES, *roles)}
    pairs = [
        (names.get(bytes(r), "0x" + bytes(r).hex()), int(c))
        for r, c in zip(ids, counts, strict=True)
    ]
    return ChainRequirement(env, tuple(sorted(pairs)), int(min_orgs))


class ChainBackend:
    """Registry rules on a chain: one transaction per write, roles from Membership.

    ``keys`` and ``orgs`` name the organisations ``role_of`` reports (on-chain they are
    hashes); an organisation nobody names is reported by its id (``0x...``). ``roles`` are
    the role names ``role_of`` asks about, besides :data:`ailedger.chain.membership.ROLES`
    and the roles of any policy synced.
    """

    name = "chain"

    def __init__(
        self,
        registry: ModelRegistry,
        membership: Membership,
        *,
        keys: Sequence[KeyInfo] = (),
        orgs: Iterable[str] = (),
        roles: Iterable[str] = (),
        owner_org: str | None = None,
    ) -> None:
        self.registry = registry
        self.membership = membership
        self.roles = {*ROLES, *roles}
        names = {*orgs, *(k.org for k in keys if k.org)}
        if owner_org is not None:
            names.add(owner_org)
        self._org_names = {org_id(n): n for n in names}
        self._owner = None if owner_org is None else org_id(owner_org)
        self._accounts = [a for a in map(_account_of, (k.keyid for k in keys)) if a]

    @classmethod
    def from_deployment(
        cls,
        chain: Chain,
        deployment: Deployment,
        *,
        keys: Sequence[KeyInfo] = (),
        orgs: Iterable[str] = (),
        roles: Iterable[str] = (),
        owner_org: str | None = None,
    ) -> ChainBackend:
        """The backend over the ModelRegistry and Membership of ``deployment``."""
        return cls(
            ModelRegistry(chain, deployment.open(chain, "ModelRegistry")),
            Membership(chain, deployment.open(chain, "Membership")),
            keys=keys,
            orgs=orgs,
            roles=roles,
            owner_org=owner_org,
        )

    @property
    def chain(self) -> Chain:
        return self.registry.chain

    # --- versions on-chain ------------------------------------------------------------------

    def version_id(self, ref: VersionRef) -> bytes:
        """The on-chain id of ``ref``: its version registered by ``owner_org``, or else by one
        of the workspace's organisations (named by the keys, else those the keys' accounts
        belong to on-chain); :class:`NotFound` if none did, :class:`ConflictError` if several
        did."""
        if self._owner is not None:
            return version_id(self._owner, ref.name, ref.version)
        found = sorted(
            {
                bytes.fromhex(str(e.args["orgId"])[2:])
                for e in self.chain.events(self.registry.contract, "VersionRegistered")
                if e.args.get("name") == ref.name and e.args.get("version") == ref.version
            }
        )
        known = [o for o in found if o in self._org_names]
        if not known:  # the organisations the workspace's accounts belong to on-chain
            ours = {self.membership.org_of(a) for a in self._accounts}
            known = [o for o in found if o in ours]
        if not known:
            raise NotFound(
                f"{ref} is not registered on-chain by any of the organisations "
                f"{sorted(self._org_names.values())}",
                hint="register it with a trainer's key of your organisation",
            )
        if len(known) > 1:
            orgs = ", ".join(self._org_names.get(o, "0x" + o.hex()) for o in known)
            raise ConflictError(
                f"{ref} is registered on-chain by several organisations ({orgs})",
                hint="name the owning organisation (owner_org)",
            )
        return version_id(known[0], ref.name, ref.version)

    def _info(self, ref: VersionRef) -> VersionInfo:
        vid = self.version_id(ref)
        info = self.registry.version(vid)
        if info is None:
            raise NotFound(f"{ref} is not registered on-chain")
        return info

    # --- writes ----------------------------------------------------------------------------

    def register_version(self, version: VersionRegistration, *, signer: Signer) -> None:
        subject = digest_bytes(version.digest)
        roots = [digest_bytes(r) for r in version.dataset_roots]
        metadata = version.log_index.to_bytes(32, "big")
        ref = version.ref
        account = _tx_signer(signer)
        try:
            self.registry.register_version(
                ref.name, ref.version, subject, metadata, roots, signer=account
            )
        except ContractReverted as exc:
            if exc.error_name != "VersionExists":
                raise
            self._same_version_exists(version, account, exc)

    def _same_version_exists(
        self, version: VersionRegistration, account: Secp256k1Signer, exc: ContractReverted
    ) -> None:
        """``VersionExists``: fine when it is this artifact (a retry), a conflict otherwise."""
        ref = version.ref
        org = self.membership.org_of(account.address) or _ZERO
        info = self.registry.version(version_id(org, ref.name, ref.version))
        if info is None or info.subject_digest != digest_bytes(version.digest):
            have = "nothing" if info is None else "0x" + info.subject_digest.hex()
            raise ConflictError(
                f"{ref} is registered on-chain with subject {have}, not {version.digest}",
                hint="register the changed artifact under a new version",
            ) from exc

    def approve(
        self, ref: VersionRef, role: str, approve: bool, log_index: int, *, signer: Signer
    ) -> None:
        if not approve:
            return  # the log records the rejection; the contract has none
        account = _tx_signer(signer)
        info = self._info(ref)
        try:
            self.registry.approve(info.version_id, info.subject_digest, role, signer=account)
        except ContractReverted as exc:
            if exc.error_name != "AlreadyApproved" or not self._approved(ref, role, account):
                raise

    def approved(self, ref: VersionRef, role: str, *, signer: Signer) -> bool:
        """Whether the contract holds ``signer``'s approval of ``ref`` in ``role``."""
        return self._approved(ref, role, _tx_signer(signer))

    def _approved(self, ref: VersionRef, role: str, account: Secp256k1Signer) -> bool:
        try:
            vid = self.version_id(ref)
        except NotFound:
            return False
        address = checksum_address(account.address)
        rid = role_id(role)
        approvals = self.chain.call(self.registry.contract, "approvalsOf", vid)
        return any(str(a[0]) == address and bytes(a[4]) == rid for a in approvals)

    def deploy(self, env: str, ref: VersionRef, log_index: int, *, signer: Signer) -> None:
        account = _tx_signer(signer)
        info = self._info(ref)
        try:
            self.registry.deploy(env, info.version_id, info.subject_digest, signer=account)
        except ContractReverted as exc:
            if exc.error_name != "AlreadyCurrent" or not self._serves(env, ref):
                raise

    def rollback(self, env: str, to: VersionRef, log_index: int, *, signer: Signer) -> None:
        """Make ``to`` current in ``env`` again (``rollbackTo``: the log chose the target)."""
        account = _tx_signer(signer)
        if self._serves(env, to):
            return
        try:
            self.registry.rollback_to(env, self.version_id(to), signer=account)
        except ContractReverted as exc:
            if exc.error_name != "AlreadyCurrent" or not self._serves(env, to):
                raise

    def _serves(self, env: str, ref: VersionRef) -> bool:
        current = self.registry.current(env)
        return current is not None and current == self.version_id(ref)

    def serves(self, env: str, ref: VersionRef) -> bool:
        """Whether ``ref`` is what the contract serves in ``env`` now."""
        try:
            return self._serves(env, ref)
        except NotFound:
            return False

    def deprecate(self, ref: VersionRef, log_index: int, *, signer: Signer) -> None:
        account = _tx_signer(signer)
        vid = self.version_id(ref)
        try:
            self.registry.deprecate(vid, signer=account)
        except ContractReverted as exc:
            info = self.registry.version(vid)
            if exc.error_name != "VersionDeprecated" or info is None or not info.deprecated:
                raise

    # --- checks before the log ---------------------------------------------------------------

    def prepare_register(self, version: VersionRegistration, *, signer: Signer) -> None:
        """Run the registration as a call: a key that is not a trainer of an organisation
        (``NotAMember``, ``RoleNotHeld``) is refused before anything is signed. The same
        artifact registered on-chain already is fine (the retry path); another is a conflict."""
        account = _tx_signer(signer)
        ref = version.ref
        subject = digest_bytes(version.digest)
        roots = [digest_bytes(r) for r in version.dataset_roots]
        try:
            self.chain.call(
                self.registry.contract,
                "registerVersion",
                ref.name,
                ref.version,
                subject,
                version.log_index.to_bytes(32, "big"),
                roots,
                sender=account.address,
            )
        except ContractReverted as exc:
            if exc.error_name != "VersionExists":
                raise
            self._same_version_exists(version, account, exc)

    def prepare_approve(self, ref: VersionRef, role: str, *, signer: Signer) -> None:
        """Run the approval as a call (membership, role, organisation rules)."""
        account = _tx_signer(signer)
        info = self._info(ref)
        try:
            self.chain.call(
                self.registry.contract,
                "approve",
                info.version_id,
                info.subject_digest,
                env_id(None),
                role_id(role),
                sender=account.address,
            )
        except ContractReverted as exc:
            if exc.error_name != "AlreadyApproved":
                raise

    def prepare_deprecate(self, ref: VersionRef, *, signer: Signer) -> None:
        """Run the deprecation as a call (only the registrant or an admin may)."""
        account = _tx_signer(signer)
        try:
            self.chain.call(
                self.registry.contract, "deprecate", self.version_id(ref), sender=account.address
            )
        except ContractReverted as exc:
            if exc.error_name != "VersionDeprecated":
                raise

    def prepare_deploy(self, ref: VersionRef, env: str, policy: Policy, *, signer: Signer) -> None:
        """Sync ``env``'s requirement to the policy, then run the deploy as a call: the
        contract's refusal (gate, deployer role) is raised before anything is signed."""
        self.sync_policy(policy, env, signer=signer)
        self._simulate("deploy", env, ref, signer)

    def prepare_rollback(self, env: str, to: VersionRef, *, signer: Signer) -> None:
        """Run the rollback as a call (the contract checks the gate and the deployer)."""
        if not self._serves(env, to):
            self._simulate("rollbackTo", env, to, signer)

    def _simulate(self, fn: str, env: str, ref: VersionRef, signer: Signer) -> None:
        sender = _tx_signer(signer).address
        info = self._info(ref)
        args: tuple[bytes, ...] = (env_id(env), info.version_id)
        if fn == "deploy":
            args = (*args, info.subject_digest)
        try:
            self.chain.call(self.registry.contract, fn, *args, sender=sender)
        except ContractReverted as exc:
            if exc.error_name != "AlreadyCurrent":
                raise

    # --- requirements ----------------------------------------------------------------------

    def sync_policy(self, policy: Policy, env: str, *, signer: Signer) -> bool:
        """Set ``env``'s on-chain requirement to the policy's, when it differs.

        Returns whether a transaction was sent. Only the registry admin may set it: for
        another key a difference is :class:`RequirementNotSynced`. A policy weaker than the
        requirement on-chain is only scheduled by the contract (its delay): that is a
        :class:`RequirementNotSynced` too, until ``applyRequirement`` after the delay."""
        wanted = policy_requirements_for_chain(policy, env)
        self.roles.update(r for r, _ in wanted.roles)
        if chain_requirement(self.registry, env, self.roles) == wanted:
            return False
        account = _tx_signer(signer)
        admin = self.registry.admin()
        if admin.lower() != account.address.lower():
            have = _describe(self.registry, env, self.roles)
            raise RequirementNotSynced(
                f"environment {env!r} on-chain requires {have}; the "
                f"policy requires {wanted.to_dict()}, and only the registry admin {admin} may "
                "change it",
                hint="deploy once with the admin's key (--key), which sets the requirement",
            )
        self.registry.set_requirement(
            env, dict(wanted.roles), wanted.min_organisations, signer=account
        )
        if chain_requirement(self.registry, env, self.roles) != wanted:
            pending = self.registry.pending_requirement(env)
            when = "" if pending is None else f" (effective at unix time {pending.eta})"
            raise RequirementNotSynced(
                f"the policy weakens environment {env!r}'s on-chain requirement: the change "
                f"is scheduled{when}, not in force",
                hint="wait for the delay, then apply it (ModelRegistry.applyRequirement)",
            )
        return True

    # --- who may deploy ---------------------------------------------------------------------

    def may_deploy(self, event: EventRow) -> bool:
        """Whether one of the event's signers may deploy to its environment: the contract
        accepted this very deploy or rollback from that account (a ``Deployed`` /
        ``RolledBack`` event of the environment and version it sent), or the account is the
        registry admin or holds ``deployerRole(env)`` now (an event not on the chain yet,
        which ``status --repair`` completes). So a deployer's events stay events after its
        role is revoked only where the chain took them from it: one contract event per
        statement (``event.accepted_before`` earlier statements alike were taken), so a
        revoked deployer cannot log its old deploy of a version again."""
        accounts = {a.lower() for a in map(_account_of, event.signers) if a is not None}
        if not accounts:
            return False
        admin = self.registry.admin().lower()
        for account in sorted(accounts):
            if account == admin or self.registry.is_deployer(event.env, checksum_address(account)):
                return True
        return self.taken(event)

    def taken(self, event: EventRow) -> bool:
        """Whether the contract took this very statement: a ``Deployed`` / ``RolledBack``
        event of its environment and version sent by one of its signers, one contract event
        per statement (``event.accepted_before`` earlier statements alike were taken)."""
        accounts = {a.lower() for a in map(_account_of, event.signers) if a is not None}
        if not accounts:
            return False
        sent = self._senders(event)
        return sum(sent.count(account) for account in accounts) > event.accepted_before

    def may_deprecate(self, ref: VersionRef, signers: tuple[str, ...]) -> bool:
        """Whether one of ``signers`` may deprecate ``ref``: the contract took this
        deprecation from that account (a ``Deprecated`` event), or it would now (the registry
        admin, or the registrant while it holds the trainer role; run as a call)."""
        accounts = sorted({a.lower() for a in map(_account_of, signers) if a is not None})
        try:
            vid = self.version_id(ref)
        except (NotFound, ConflictError):
            return False
        if not accounts:
            return False
        found = self.chain.events(self.registry.contract, "Deprecated", args={"versionId": vid})
        if any(str(e.args["sender"]).lower() in accounts for e in found):
            return True
        for account in accounts:
            try:
                self.chain.call(
                    self.registry.contract, "deprecate", vid, sender=checksum_address(account)
                )
            except ContractReverted:
                continue
            return True
        return False

    def _senders(self, event: EventRow) -> list[str]:
        """The sender of each contract event of ``event``'s action of its version in its
        environment."""
        try:
            vid = self.version_id(event.ref)
        except (NotFound, ConflictError):
            return []
        name = "Deployed" if event.action == "deploy" else "RolledBack"
        found = self.chain.events(
            self.registry.contract, name, args={"env": env_id(event.env), "versionId": vid}
        )
        return [str(e.args["sender"]).lower() for e in found]

    # --- roles -----------------------------------------------------------------------------

    def learn_roles(self, roles: Iterable[str]) -> None:
        """Role names the registry will ask about (a role's id on-chain is the hash of its
        name, so a role outside :data:`ROLES` is found only once its name is known)."""
        self.roles.update(roles)

    def role_of(self, keyid: str) -> MemberInfo | None:
        try:
            address = checksum_address(keyid)
        except InvalidInput:
            return None  # a P-256 key is no account
        oid = bytes(self.chain.call(self.membership.contract, "orgOf", address))
        if oid == _ZERO:
            return None
        contract = self.membership.contract
        held = {
            r
            for r in sorted(self.roles)
            if self.chain.call(contract, "hasRoleIn", oid, address, role_id(r))
        }
        return held, self._org_names.get(oid, "0x" + oid.hex())


def _describe(registry: ModelRegistry, env: str, roles: Iterable[str]) -> str:
    have = chain_requirement(registry, env, roles)
    return "nothing (no requirement set)" if have is None else str(have.to_dict())


def _account_of(keyid: str) -> str | None:
    """The account of a secp256k1 key id; None for other keys (a P-256 key is no account)."""
    try:
        return checksum_address(keyid)
    except InvalidInput:
        return None
