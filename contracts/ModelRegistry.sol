// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Membership} from "./Membership.sol";

/// @title ModelRegistry
/// @notice Model versions owned by organisations, approvals by role, and deploy / rollback /
///         deprecate per environment behind an on-chain gate: a version is deployed only if it
///         is not deprecated, the deployer names the subject digest it ships and that digest is
///         the registered and approved one, and the approvals that still hold meet the
///         environment's requirement (per role a minimum number of distinct approvers, plus a
///         minimum number of distinct organisations among them).
/// @dev Names are namespaced by organisation: versionId = keccak256(abi.encode(orgId, name,
///      version)), and only a member holding TRAINER_ROLE in its organisation registers a
///      version there. An approval is one (version, approver): it names the role, the
///      environment (or ANY_ENV) and the subject digest, and records the approver's
///      organisation and `Membership.roleTicket` (the current grant of that role). It counts
///      at the gate only while the approver still holds that very grant (so it is still a
///      member of the same organisation, without a break), never for the version's registrant
///      unless the environment's requirement allows self-approval, and once per approver (one
///      approval per approver and version: one person never fills two roles). Approvals come
///      from the approver's own transaction (`approve`) or as EIP-712 typed data relayed by
///      anyone (`approveBySig`, `approveBatch`), in the domain ("ailedger ModelRegistry", "1",
///      chainId, this contract):
///        Approval(bytes32 versionId,bytes32 subjectDigest,bytes32 env,bytes32 role,
///                 bytes32 orgId,address approver,uint256 nonce,uint256 deadline)
///      Nonces are unordered per approver. `cancelNonce` burns an unused nonce, and withdraws
///      the approval that used it if it already landed (a relayer racing the cancellation wins
///      nothing); `revokeApproval` withdraws the caller's approval of a version.
///      Administration: the registry admin is OpenZeppelin's AccessControlDefaultAdminRules
///      default admin (two-step handover after a delay). It deploys anywhere and grants
///      `deployerRole(env)` per environment. A requirement change that weakens an
///      environment's rule waits `requirementDelay` seconds (`applyRequirement`), a stricter
///      one applies at once. Deployments per environment form a history: `deploy` appends a
///      version, `rollbackTo` appends a version the environment ran before; every move passes
///      the gate again. Which earlier version a rollback returns to is the product's rule
///      (the version that served before the current one became current, read from the
///      signed log: `ailedger rollback`), so the caller names the target: there is no
///      argument-less `rollback()` that would pick one from this history by another rule.
contract ModelRegistry is AccessControlDefaultAdminRules, EIP712 {
    bytes32 public constant APPROVAL_TYPEHASH = keccak256(
        "Approval(bytes32 versionId,bytes32 subjectDigest,bytes32 env,bytes32 role,"
        "bytes32 orgId,address approver,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant DEPLOYER_ROLE = keccak256("deployer");
    bytes32 public constant TRAINER_ROLE = keccak256("trainer");
    bytes32 public constant ANY_ENV = bytes32(0);
    uint256 public constant MAX_DATASETS = 16;
    uint256 public constant MAX_REQUIREMENTS = 8;
    uint256 public constant MAX_BATCH = 16;
    uint256 public constant MAX_APPROVALS = 32;

    struct Version {
        bytes32 orgId;
        bytes32 subjectDigest;
        bytes32 metadataDigest;
        address registrant;
        uint64 registeredAt;
        bool deprecated;
    }

    /// @dev Four slots and the nonce. The approved subject digest is not stored: an approval
    ///      is recorded only for the version's registered digest, which never changes.
    struct Approval {
        address approver;
        uint24 ticket;
        uint64 blockNumber;
        bool signed;
        bytes32 role;
        bytes32 orgId;
        bytes32 env;
        uint256 nonce;
    }

    struct Requirement {
        bytes32[] roles;
        uint16[] counts;
        uint16 minOrgs;
        bool selfApproval;
        bool exists;
    }

    struct PendingRequirement {
        Requirement requirement;
        uint64 eta;
    }

    struct SignedApproval {
        bytes32 versionId;
        bytes32 subjectDigest;
        bytes32 env;
        bytes32 role;
        bytes32 orgId;
        address approver;
        uint256 nonce;
        uint256 deadline;
        bytes signature;
    }

    Membership public immutable membership;
    uint64 public immutable requirementDelay;

    mapping(bytes32 versionId => Version) private _versions;
    mapping(bytes32 versionId => bytes32[]) private _datasetRoots;
    mapping(bytes32 versionId => Approval[]) private _approvals;
    mapping(bytes32 versionId => mapping(address approver => uint256 indexPlusOne)) private
        _approvalIndex;
    mapping(address approver => mapping(uint256 nonce => bool)) private _nonceUsed;
    mapping(address approver => mapping(uint256 nonce => bytes32 versionId)) private _nonceVersion;
    mapping(bytes32 env => Requirement) private _requirements;
    mapping(bytes32 env => PendingRequirement) private _pending;
    mapping(bytes32 env => bytes32[]) private _deployments;
    mapping(bytes32 env => mapping(bytes32 versionId => bool)) private _everDeployed;

    error NotDeployer(bytes32 env, address caller);
    error NotRegistrantOrAdmin(address caller);
    error ZeroAddress();
    error ZeroDigest();
    error VersionExists(bytes32 versionId);
    error UnknownVersion(bytes32 versionId);
    error TooManyDatasets(uint256 count, uint256 max);
    error NotAMember(address account);
    error RoleNotHeld(address account, bytes32 role);
    error WrongOrganisation(address approver, bytes32 signedOrgId, bytes32 orgId);
    error DigestMismatch(bytes32 versionId, bytes32 subjectDigest, bytes32 registered);
    error AlreadyApproved(bytes32 versionId, address approver);
    error NotApproved(bytes32 versionId, address approver);
    error NonceUsed(address approver, uint256 nonce);
    error SignatureExpired(uint256 deadline);
    error WrongSigner(address recovered, address approver);
    error TooManyApprovals(uint256 count, uint256 max);
    error TooManyRequirements(uint256 count, uint256 max);
    error LengthMismatch(uint256 roles, uint256 counts);
    error DuplicateRole(bytes32 role);
    error NoPendingRequirement(bytes32 env);
    error RequirementNotDue(bytes32 env, uint256 eta);
    error UnknownEnvironment(bytes32 env);
    error VersionDeprecated(bytes32 versionId);
    error ApprovalsMissing(bytes32 versionId, bytes32 role, uint256 have, uint256 need);
    error TooFewOrganisations(bytes32 versionId, uint256 have, uint256 need);
    error AlreadyCurrent(bytes32 env, bytes32 versionId);
    error NeverDeployed(bytes32 env, bytes32 versionId);

    event VersionRegistered(
        bytes32 indexed versionId,
        bytes32 indexed orgId,
        string name,
        string version,
        bytes32 subjectDigest,
        bytes32 metadataDigest,
        bytes32[] datasetRoots,
        address indexed registrant
    );
    event Approved(
        bytes32 indexed versionId,
        address indexed approver,
        bytes32 indexed role,
        bytes32 orgId,
        bytes32 env,
        bytes32 subjectDigest,
        address relayer,
        uint256 blockNumber
    );
    event ApprovalRevoked(bytes32 indexed versionId, address indexed approver, bytes32 role);
    event ApprovalSkipped(address indexed approver, uint256 nonce);
    event NonceCancelled(address indexed approver, uint256 nonce);
    event RequirementSet(
        bytes32 indexed env, bytes32[] roles, uint16[] counts, uint16 minOrgs, bool selfApproval
    );
    event RequirementScheduled(
        bytes32 indexed env,
        bytes32[] roles,
        uint16[] counts,
        uint16 minOrgs,
        bool selfApproval,
        uint256 eta
    );
    event RequirementCancelled(bytes32 indexed env);
    event Deployed(
        bytes32 indexed env,
        bytes32 indexed versionId,
        bytes32 previousVersionId,
        bytes32 subjectDigest,
        address sender,
        uint256 blockNumber
    );
    event RolledBack(
        bytes32 indexed env,
        bytes32 indexed versionId,
        bytes32 fromVersionId,
        address sender,
        uint256 blockNumber
    );
    event Deprecated(bytes32 indexed versionId, address sender, uint256 blockNumber);

    /// @param delay seconds before a weakening requirement change takes effect, and the
    ///        initial delay of a default-admin handover.
    constructor(Membership membership_, address admin_, uint48 delay)
        AccessControlDefaultAdminRules(delay, admin_)
        EIP712("ailedger ModelRegistry", "1")
    {
        if (address(membership_) == address(0)) revert ZeroAddress();
        membership = membership_;
        requirementDelay = delay;
    }

    modifier onlyDeployer(bytes32 env) {
        if (msg.sender != defaultAdmin() && !hasRole(deployerRole(env), msg.sender)) {
            revert NotDeployer(env, msg.sender);
        }
        _;
    }

    /// @notice The AccessControl role that may deploy and roll back in `env`.
    function deployerRole(bytes32 env) public pure returns (bytes32) {
        return keccak256(abi.encode(DEPLOYER_ROLE, env));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // --- versions -------------------------------------------------------------------------

    /// @notice versionId = keccak256(abi.encode(orgId, name, version)).
    function versionIdOf(bytes32 orgId, string calldata name, string calldata version)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(orgId, name, version));
    }

    /// @notice Register a model version in the caller's organisation; the caller must hold
    ///         TRAINER_ROLE there.
    function registerVersion(
        string calldata name,
        string calldata version,
        bytes32 subjectDigest,
        bytes32 metadataDigest,
        bytes32[] calldata datasetRoots
    ) external returns (bytes32 versionId) {
        bytes32 orgId = membership.orgOf(msg.sender);
        if (orgId == bytes32(0)) revert NotAMember(msg.sender);
        if (!membership.hasRoleIn(orgId, msg.sender, TRAINER_ROLE)) {
            revert RoleNotHeld(msg.sender, TRAINER_ROLE);
        }
        if (subjectDigest == bytes32(0)) revert ZeroDigest();
        uint256 n = datasetRoots.length;
        if (n > MAX_DATASETS) revert TooManyDatasets(n, MAX_DATASETS);
        versionId = versionIdOf(orgId, name, version);
        if (_versions[versionId].registrant != address(0)) revert VersionExists(versionId);
        _versions[versionId] = Version(
            orgId, subjectDigest, metadataDigest, msg.sender, uint64(block.number), false
        );
        _datasetRoots[versionId] = datasetRoots;
        emit VersionRegistered(
            versionId, orgId, name, version, subjectDigest, metadataDigest, datasetRoots, msg.sender
        );
    }

    /// @notice Mark a version deprecated: the registry admin, or its registrant while it still
    ///         holds TRAINER_ROLE in the owning organisation. It can no longer be deployed or
    ///         rolled back to; environments running it keep it until they move.
    function deprecate(bytes32 versionId) external {
        Version storage v = _existing(versionId);
        bool registrant = msg.sender == v.registrant
            && membership.hasRoleIn(v.orgId, msg.sender, TRAINER_ROLE);
        if (!registrant && msg.sender != defaultAdmin()) revert NotRegistrantOrAdmin(msg.sender);
        if (v.deprecated) revert VersionDeprecated(versionId);
        v.deprecated = true;
        emit Deprecated(versionId, msg.sender, block.number);
    }

    function getVersion(bytes32 versionId) external view returns (Version memory) {
        return _versions[versionId];
    }

    function datasetRootsOf(bytes32 versionId) external view returns (bytes32[] memory) {
        return _datasetRoots[versionId];
    }

    // --- approvals ------------------------------------------------------------------------

    /// @notice Approve `versionId` (whose subject digest must be `subjectDigest`) for `env`
    ///         (ANY_ENV: every environment) in `role`, which the caller must hold now.
    function approve(bytes32 versionId, bytes32 subjectDigest, bytes32 env, bytes32 role)
        external
    {
        _approve(versionId, subjectDigest, _draft(msg.sender, role, env, 0, false), bytes32(0));
    }

    /// @notice Record an approval signed by its approver (EIP-712), relayed by anyone.
    function approveBySig(SignedApproval calldata a) external {
        if (_nonceUsed[a.approver][a.nonce]) revert NonceUsed(a.approver, a.nonce);
        _approveSigned(a);
    }

    /// @notice Record up to MAX_BATCH signed approvals in one transaction. An approval whose
    ///         nonce is already used (relayed before, or cancelled) is skipped, not fatal.
    function approveBatch(SignedApproval[] calldata approvals) external {
        uint256 n = approvals.length;
        if (n > MAX_BATCH) revert TooManyApprovals(n, MAX_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            SignedApproval calldata a = approvals[i];
            if (_nonceUsed[a.approver][a.nonce]) {
                emit ApprovalSkipped(a.approver, a.nonce);
                continue;
            }
            _approveSigned(a);
        }
    }

    /// @notice Withdraw the caller's approval of `versionId`.
    function revokeApproval(bytes32 versionId) external {
        if (_approvalIndex[versionId][msg.sender] == 0) revert NotApproved(versionId, msg.sender);
        _remove(versionId, msg.sender);
    }

    /// @notice Burn one of the caller's approval nonces: a signature using it never counts. If
    ///         an approval signed with it was already recorded, it is withdrawn.
    function cancelNonce(uint256 nonce) external {
        if (_nonceUsed[msg.sender][nonce]) {
            bytes32 versionId = _nonceVersion[msg.sender][nonce];
            uint256 index = _approvalIndex[versionId][msg.sender];
            if (versionId == bytes32(0) || index == 0) revert NonceUsed(msg.sender, nonce);
            Approval storage a = _approvals[versionId][index - 1];
            if (!a.signed || a.nonce != nonce) revert NonceUsed(msg.sender, nonce);
            delete _nonceVersion[msg.sender][nonce];
            _remove(versionId, msg.sender);
        } else {
            _nonceUsed[msg.sender][nonce] = true;
        }
        emit NonceCancelled(msg.sender, nonce);
    }

    function approvalDigest(
        bytes32 versionId,
        bytes32 subjectDigest,
        bytes32 env,
        bytes32 role,
        bytes32 orgId,
        address approver,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    APPROVAL_TYPEHASH,
                    versionId,
                    subjectDigest,
                    env,
                    role,
                    orgId,
                    approver,
                    nonce,
                    deadline
                )
            )
        );
    }

    function nonceUsed(address approver, uint256 nonce) external view returns (bool) {
        return _nonceUsed[approver][nonce];
    }

    function hasApproved(bytes32 versionId, address approver) external view returns (bool) {
        return _approvalIndex[versionId][approver] != 0;
    }

    /// @notice Every approval of `versionId` on record (valid or not at the gate).
    function approvalsOf(bytes32 versionId) external view returns (Approval[] memory) {
        return _approvals[versionId];
    }

    /// @notice Approvals of `versionId` in `role` that count for `env` now.
    function approvalCount(bytes32 versionId, bytes32 env, bytes32 role)
        external
        view
        returns (uint256 count)
    {
        Version storage v = _versions[versionId];
        bool selfApproval = _requirements[env].selfApproval;
        Approval[] storage list = _approvals[versionId];
        for (uint256 i = 0; i < list.length; ++i) {
            Approval storage a = list[i];
            if (a.role == role && _counts(a, v, env, selfApproval)) ++count;
        }
    }

    // --- requirements and the gate --------------------------------------------------------

    /// @notice Set the approvals `env` requires: per role a number of distinct approvers, a
    ///         minimum number of distinct organisations among them, and whether a version's
    ///         registrant may approve it. A change that weakens the current rule is scheduled
    ///         `requirementDelay` seconds ahead (`applyRequirement`); a stricter or equal one
    ///         applies now and drops any scheduled change.
    function setRequirement(
        bytes32 env,
        bytes32[] calldata roles,
        uint16[] calldata counts,
        uint16 minOrgs,
        bool selfApproval
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 n = roles.length;
        if (n != counts.length) revert LengthMismatch(n, counts.length);
        if (n > MAX_REQUIREMENTS) revert TooManyRequirements(n, MAX_REQUIREMENTS);
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 j = 0; j < i; ++j) {
                if (roles[i] == roles[j]) revert DuplicateRole(roles[i]);
            }
        }
        Requirement memory next = Requirement(roles, counts, minOrgs, selfApproval, true);
        if (_weakens(_requirements[env], next)) {
            uint64 eta = uint64(block.timestamp) + requirementDelay;
            _pending[env] = PendingRequirement(next, eta);
            emit RequirementScheduled(env, roles, counts, minOrgs, selfApproval, eta);
        } else {
            if (_pending[env].eta != 0) {
                delete _pending[env];
                emit RequirementCancelled(env);
            }
            _requirements[env] = next;
            emit RequirementSet(env, roles, counts, minOrgs, selfApproval);
        }
    }

    /// @notice Put a scheduled requirement change into effect once its delay has passed
    ///         (anyone may call).
    function applyRequirement(bytes32 env) external {
        PendingRequirement storage p = _pending[env];
        uint64 eta = p.eta;
        if (eta == 0) revert NoPendingRequirement(env);
        if (block.timestamp < eta) revert RequirementNotDue(env, eta);
        Requirement memory next = p.requirement;
        delete _pending[env];
        _requirements[env] = next;
        emit RequirementSet(env, next.roles, next.counts, next.minOrgs, next.selfApproval);
    }

    /// @notice Drop a scheduled requirement change.
    function cancelRequirement(bytes32 env) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (_pending[env].eta == 0) revert NoPendingRequirement(env);
        delete _pending[env];
        emit RequirementCancelled(env);
    }

    function getRequirement(bytes32 env)
        external
        view
        returns (
            bytes32[] memory roles,
            uint16[] memory counts,
            uint16 minOrgs,
            bool selfApproval,
            bool exists
        )
    {
        Requirement storage r = _requirements[env];
        return (r.roles, r.counts, r.minOrgs, r.selfApproval, r.exists);
    }

    function pendingRequirement(bytes32 env)
        external
        view
        returns (
            bytes32[] memory roles,
            uint16[] memory counts,
            uint16 minOrgs,
            bool selfApproval,
            uint64 eta
        )
    {
        PendingRequirement storage p = _pending[env];
        Requirement storage r = p.requirement;
        return (r.roles, r.counts, r.minOrgs, r.selfApproval, p.eta);
    }

    /// @notice Whether `versionId` may be deployed to `env` now.
    function gatePasses(bytes32 env, bytes32 versionId) external view returns (bool) {
        return _gate(env, versionId, false);
    }

    // --- deployments ----------------------------------------------------------------------

    /// @notice Deploy `versionId`, whose subject digest must be `subjectDigest`, to `env`;
    ///         reverts unless the gate passes.
    function deploy(bytes32 env, bytes32 versionId, bytes32 subjectDigest)
        external
        onlyDeployer(env)
    {
        Version storage v = _existing(versionId);
        if (v.subjectDigest != subjectDigest) {
            revert DigestMismatch(versionId, subjectDigest, v.subjectDigest);
        }
        _gate(env, versionId, true);
        bytes32[] storage stack = _deployments[env];
        uint256 n = stack.length;
        bytes32 previous = n == 0 ? bytes32(0) : stack[n - 1];
        if (previous == versionId) revert AlreadyCurrent(env, versionId);
        stack.push(versionId);
        _everDeployed[env][versionId] = true;
        emit Deployed(env, versionId, previous, subjectDigest, msg.sender, block.number);
    }

    /// @notice Roll `env` back to `versionId`, a version it ran before (it must pass the
    ///         gate again).
    function rollbackTo(bytes32 env, bytes32 versionId) external onlyDeployer(env) {
        if (!_everDeployed[env][versionId]) revert NeverDeployed(env, versionId);
        _gate(env, versionId, true);
        bytes32[] storage stack = _deployments[env];
        bytes32 from = stack[stack.length - 1];
        if (from == versionId) revert AlreadyCurrent(env, versionId);
        stack.push(versionId);
        emit RolledBack(env, versionId, from, msg.sender, block.number);
    }

    /// @notice The version running in `env` (zero if none).
    function currentVersion(bytes32 env) external view returns (bytes32) {
        bytes32[] storage stack = _deployments[env];
        uint256 n = stack.length;
        return n == 0 ? bytes32(0) : stack[n - 1];
    }

    function deploymentDepth(bytes32 env) external view returns (uint256) {
        return _deployments[env].length;
    }

    // --- internals ------------------------------------------------------------------------

    function _existing(bytes32 versionId) private view returns (Version storage v) {
        v = _versions[versionId];
        if (v.registrant == address(0)) revert UnknownVersion(versionId);
    }

    function _approveSigned(SignedApproval calldata a) private {
        if (block.timestamp > a.deadline) revert SignatureExpired(a.deadline);
        bytes32 digest = approvalDigest(
            a.versionId, a.subjectDigest, a.env, a.role, a.orgId, a.approver, a.nonce, a.deadline
        );
        address recovered = ECDSA.recoverCalldata(digest, a.signature);
        if (recovered != a.approver) revert WrongSigner(recovered, a.approver);
        _nonceUsed[a.approver][a.nonce] = true;
        _nonceVersion[a.approver][a.nonce] = a.versionId;
        _approve(
            a.versionId, a.subjectDigest, _draft(a.approver, a.role, a.env, a.nonce, true), a.orgId
        );
    }

    /// @dev Record approval `a` (approver, role, env, digest, nonce, signed filled in). A
    ///      signed approval names the approver's organisation (`signedOrgId`); it must be the
    ///      one the approver belongs to now.
    function _approve(
        bytes32 versionId,
        bytes32 subjectDigest,
        Approval memory a,
        bytes32 signedOrgId
    ) private {
        Version storage v = _existing(versionId);
        if (v.deprecated) revert VersionDeprecated(versionId);
        if (subjectDigest != v.subjectDigest) {
            revert DigestMismatch(versionId, subjectDigest, v.subjectDigest);
        }
        a.orgId = membership.orgOf(a.approver);
        if (a.orgId == bytes32(0)) revert NotAMember(a.approver);
        if (a.signed && signedOrgId != a.orgId) {
            revert WrongOrganisation(a.approver, signedOrgId, a.orgId);
        }
        a.ticket = SafeCast.toUint24(membership.roleTicket(a.orgId, a.approver, a.role));
        if (a.ticket == 0) revert RoleNotHeld(a.approver, a.role);
        if (_approvalIndex[versionId][a.approver] != 0) {
            revert AlreadyApproved(versionId, a.approver);
        }
        Approval[] storage list = _approvals[versionId];
        if (list.length >= MAX_APPROVALS) revert TooManyApprovals(list.length + 1, MAX_APPROVALS);
        a.blockNumber = uint64(block.number);
        list.push(a);
        _approvalIndex[versionId][a.approver] = list.length;
        emit Approved(
            versionId, a.approver, a.role, a.orgId, a.env, subjectDigest, msg.sender, block.number
        );
    }

    function _draft(address approver, bytes32 role, bytes32 env, uint256 nonce, bool signed)
        private
        pure
        returns (Approval memory)
    {
        return Approval(approver, 0, 0, signed, role, bytes32(0), env, nonce);
    }

    function _remove(bytes32 versionId, address approver) private {
        Approval[] storage list = _approvals[versionId];
        uint256 index = _approvalIndex[versionId][approver] - 1;
        bytes32 role = list[index].role;
        uint256 last = list.length - 1;
        if (index != last) {
            list[index] = list[last];
            _approvalIndex[versionId][list[index].approver] = index + 1;
        }
        list.pop();
        delete _approvalIndex[versionId][approver];
        emit ApprovalRevoked(versionId, approver, role);
    }

    /// @dev Whether approval `a` of version `v` counts for `env` now: made for `env` or every
    ///      environment, not by the registrant (unless allowed), and its approver still holds
    ///      the very grant of the role it approved in. (It was made for the registered digest.)
    function _counts(Approval storage a, Version storage v, bytes32 env, bool selfApproval)
        private
        view
        returns (bool)
    {
        if (a.env != env && a.env != ANY_ENV) return false;
        if (a.approver == v.registrant && !selfApproval) return false;
        return membership.roleTicket(a.orgId, a.approver, a.role) == a.ticket;
    }

    /// @dev Whether `next` is weaker than `current` in any respect: a role's count lowered or
    ///      dropped, fewer organisations, or self-approval newly allowed. A first requirement
    ///      (nothing deployable before) is never weaker.
    function _weakens(Requirement storage current, Requirement memory next)
        private
        view
        returns (bool)
    {
        if (!current.exists) return false;
        if (next.minOrgs < current.minOrgs) return true;
        if (next.selfApproval && !current.selfApproval) return true;
        uint256 n = current.roles.length;
        for (uint256 i = 0; i < n; ++i) {
            uint256 need = current.counts[i];
            if (need == 0) continue;
            uint256 have = 0;
            for (uint256 j = 0; j < next.roles.length; ++j) {
                if (next.roles[j] == current.roles[i]) have = next.counts[j];
            }
            if (have < need) return true;
        }
        return false;
    }

    function _gate(bytes32 env, bytes32 versionId, bool strict) private view returns (bool) {
        Version storage v = _versions[versionId];
        if (v.registrant == address(0)) {
            if (strict) revert UnknownVersion(versionId);
            return false;
        }
        if (v.deprecated) {
            if (strict) revert VersionDeprecated(versionId);
            return false;
        }
        Requirement storage r = _requirements[env];
        if (!r.exists) {
            if (strict) revert UnknownEnvironment(env);
            return false;
        }
        (uint256[] memory have, uint256 norgs) = _tally(env, versionId, r);
        uint256 nroles = have.length;
        for (uint256 j = 0; j < nroles; ++j) {
            if (have[j] < r.counts[j]) {
                if (strict) revert ApprovalsMissing(versionId, r.roles[j], have[j], r.counts[j]);
                return false;
            }
        }
        if (norgs < r.minOrgs) {
            if (strict) revert TooFewOrganisations(versionId, norgs, r.minOrgs);
            return false;
        }
        return true;
    }

    /// @dev Per required role the approvals of `versionId` that count for `env`, and the
    ///      number of distinct organisations among them.
    function _tally(bytes32 env, bytes32 versionId, Requirement storage r)
        private
        view
        returns (uint256[] memory have, uint256 norgs)
    {
        Version storage v = _versions[versionId];
        have = new uint256[](r.roles.length);
        Approval[] storage list = _approvals[versionId];
        bytes32[] memory orgs = new bytes32[](list.length);
        for (uint256 i = 0; i < list.length; ++i) {
            Approval storage a = list[i];
            uint256 j = _roleIndex(r.roles, a.role);
            if (j == have.length || !_counts(a, v, env, r.selfApproval)) continue;
            have[j] += 1;
            norgs = _addOrg(orgs, norgs, a.orgId);
        }
    }

    function _roleIndex(bytes32[] storage roles, bytes32 role) private view returns (uint256) {
        uint256 n = roles.length;
        for (uint256 j = 0; j < n; ++j) {
            if (roles[j] == role) return j;
        }
        return n;
    }

    function _addOrg(bytes32[] memory orgs, uint256 n, bytes32 orgId)
        private
        pure
        returns (uint256)
    {
        for (uint256 k = 0; k < n; ++k) {
            if (orgs[k] == orgId) return n;
        }
        orgs[n] = orgId;
        return n + 1;
    }
}
