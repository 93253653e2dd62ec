// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "./lib/EIP712.sol";
import {Signatures} from "./lib/Signatures.sol";
import {Membership} from "./Membership.sol";

/// @title ModelRegistry
/// @notice Model versions, approvals by role, and deploy / rollback / deprecate per environment
///         behind an on-chain gate: a version is deployed only if it is not deprecated and its
///         approvals meet the environment's requirement (per role a minimum count, plus a
///         minimum number of distinct organisations among all its approvers).
/// @dev An approval is one (version, approver, role); the approver must hold the role in its
///      organisation (per Membership) when the approval is recorded, and the organisation is
///      recorded with it. Approvals come from the approver's own transaction (`approve`) or as
///      EIP-712 typed data relayed by anyone (`approveBySig`, `approveBatch`), in the domain
///      ("ailedger ModelRegistry", "1", chainId, this contract):
///        Approval(bytes32 versionId,bytes32 role,bytes32 orgId,address approver,uint256 nonce,
///                 uint256 deadline)
///      The organisation is part of what the approver signs: a signature given as a member of
///      one organisation never counts for another the approver later joins. Nonces are unordered: each (approver, nonce) is usable once, and an approver can burn
///      one with `cancelNonce`. Deployments per environment form a stack: `deploy` pushes,
///      `rollback` pops back to the previous version, `rollbackTo` re-deploys a version the
///      environment ran before; every move passes the gate again.
contract ModelRegistry is EIP712 {
    bytes32 public constant APPROVAL_TYPEHASH = keccak256(
        "Approval(bytes32 versionId,bytes32 role,bytes32 orgId,address approver,uint256 nonce,"
        "uint256 deadline)"
    );
    bytes32 public constant DEPLOYER_ROLE = keccak256("deployer");
    uint256 public constant MAX_DATASETS = 16;
    uint256 public constant MAX_REQUIREMENTS = 8;
    uint256 public constant MAX_BATCH = 16;

    struct Version {
        bytes32 subjectDigest;
        bytes32 metadataDigest;
        address registrant;
        uint64 registeredAt;
        bool deprecated;
    }

    struct Requirement {
        bytes32[] roles;
        uint16[] counts;
        uint16 minOrgs;
        bool exists;
    }

    struct SignedApproval {
        bytes32 versionId;
        bytes32 role;
        bytes32 orgId;
        address approver;
        uint256 nonce;
        uint256 deadline;
        bytes signature;
    }

    Membership public immutable membership;
    address public admin;

    mapping(bytes32 versionId => Version) private _versions;
    mapping(bytes32 versionId => bytes32[]) private _datasetRoots;
    mapping(bytes32 versionId => mapping(address approver => mapping(bytes32 role => bool)))
        private _approved;
    mapping(bytes32 versionId => mapping(bytes32 role => uint256)) private _roleApprovals;
    mapping(bytes32 versionId => mapping(bytes32 orgId => bool)) private _orgApproved;
    mapping(bytes32 versionId => uint256) private _orgCount;
    mapping(address approver => mapping(uint256 nonce => bool)) private _nonceUsed;
    mapping(bytes32 env => Requirement) private _requirements;
    mapping(bytes32 env => bytes32[]) private _deployments;
    mapping(bytes32 env => mapping(bytes32 versionId => bool)) private _everDeployed;

    error NotAdmin(address caller);
    error NotDeployer(address caller);
    error NotRegistrantOrAdmin(address caller);
    error ZeroAddress();
    error ZeroDigest();
    error VersionExists(bytes32 versionId);
    error UnknownVersion(bytes32 versionId);
    error TooManyDatasets(uint256 count, uint256 max);
    error NotAMember(address account);
    error RoleNotHeld(address account, bytes32 role);
    error WrongOrganisation(address approver, bytes32 signedOrgId, bytes32 orgId);
    error AlreadyApproved(bytes32 versionId, address approver, bytes32 role);
    error NonceUsed(address approver, uint256 nonce);
    error SignatureExpired(uint256 deadline);
    error WrongSigner(address recovered, address approver);
    error TooManyApprovals(uint256 count, uint256 max);
    error TooManyRequirements(uint256 count, uint256 max);
    error LengthMismatch(uint256 roles, uint256 counts);
    error UnknownEnvironment(bytes32 env);
    error VersionDeprecated(bytes32 versionId);
    error ApprovalsMissing(bytes32 versionId, bytes32 role, uint256 have, uint256 need);
    error TooFewOrganisations(bytes32 versionId, uint256 have, uint256 need);
    error AlreadyCurrent(bytes32 env, bytes32 versionId);
    error NothingToRollBack(bytes32 env);
    error NeverDeployed(bytes32 env, bytes32 versionId);

    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);
    event VersionRegistered(
        bytes32 indexed versionId,
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
        address relayer,
        uint256 blockNumber
    );
    event NonceCancelled(address indexed approver, uint256 nonce);
    event RequirementSet(bytes32 indexed env, bytes32[] roles, uint16[] counts, uint16 minOrgs);
    event Deployed(
        bytes32 indexed env,
        bytes32 indexed versionId,
        bytes32 previousVersionId,
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

    constructor(Membership membership_, address admin_) EIP712("ailedger ModelRegistry", "1") {
        if (address(membership_) == address(0) || admin_ == address(0)) revert ZeroAddress();
        membership = membership_;
        admin = admin_;
        emit AdminChanged(address(0), admin_);
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlyDeployer() {
        if (msg.sender != admin && !membership.hasRole(msg.sender, DEPLOYER_ROLE)) {
            revert NotDeployer(msg.sender);
        }
        _;
    }

    function setAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit AdminChanged(admin, newAdmin);
        admin = newAdmin;
    }

    // --- versions -------------------------------------------------------------------------

    /// @notice versionId = keccak256(abi.encode(name, version)).
    function versionIdOf(string calldata name, string calldata version)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(name, version));
    }

    /// @notice Register a model version; the caller must be a member of an organisation.
    function registerVersion(
        string calldata name,
        string calldata version,
        bytes32 subjectDigest,
        bytes32 metadataDigest,
        bytes32[] calldata datasetRoots
    ) external returns (bytes32 versionId) {
        if (membership.orgOf(msg.sender) == bytes32(0)) revert NotAMember(msg.sender);
        if (subjectDigest == bytes32(0)) revert ZeroDigest();
        uint256 n = datasetRoots.length;
        if (n > MAX_DATASETS) revert TooManyDatasets(n, MAX_DATASETS);
        versionId = versionIdOf(name, version);
        if (_versions[versionId].registrant != address(0)) revert VersionExists(versionId);
        _versions[versionId] =
            Version(subjectDigest, metadataDigest, msg.sender, uint64(block.number), false);
        _datasetRoots[versionId] = datasetRoots;
        emit VersionRegistered(
            versionId, name, version, subjectDigest, metadataDigest, datasetRoots, msg.sender
        );
    }

    /// @notice Mark a version deprecated (registrant or admin). It can no longer be deployed
    ///         or rolled back to; environments running it keep it until they move.
    function deprecate(bytes32 versionId) external {
        Version storage v = _existing(versionId);
        if (msg.sender != v.registrant && msg.sender != admin) {
            revert NotRegistrantOrAdmin(msg.sender);
        }
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

    /// @notice Approve `versionId` in `role`, which the caller must hold now.
    function approve(bytes32 versionId, bytes32 role) external {
        _approve(versionId, role, msg.sender, false, bytes32(0));
    }

    /// @notice Record an approval signed by its approver (EIP-712), relayed by anyone.
    function approveBySig(SignedApproval calldata a) external {
        _useSignature(a);
        _approve(a.versionId, a.role, a.approver, true, a.orgId);
    }

    /// @notice Record up to MAX_BATCH signed approvals in one transaction.
    function approveBatch(SignedApproval[] calldata approvals) external {
        uint256 n = approvals.length;
        if (n > MAX_BATCH) revert TooManyApprovals(n, MAX_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            SignedApproval calldata a = approvals[i];
            _useSignature(a);
            _approve(a.versionId, a.role, a.approver, true, a.orgId);
        }
    }

    /// @notice Burn one of the caller's approval nonces so a signature using it never counts.
    function cancelNonce(uint256 nonce) external {
        if (_nonceUsed[msg.sender][nonce]) revert NonceUsed(msg.sender, nonce);
        _nonceUsed[msg.sender][nonce] = true;
        emit NonceCancelled(msg.sender, nonce);
    }

    function approvalDigest(
        bytes32 versionId,
        bytes32 role,
        bytes32 orgId,
        address approver,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedData(
            keccak256(
                abi.encode(APPROVAL_TYPEHASH, versionId, role, orgId, approver, nonce, deadline)
            )
        );
    }

    function nonceUsed(address approver, uint256 nonce) external view returns (bool) {
        return _nonceUsed[approver][nonce];
    }

    function hasApproved(bytes32 versionId, address approver, bytes32 role)
        external
        view
        returns (bool)
    {
        return _approved[versionId][approver][role];
    }

    function approvalCount(bytes32 versionId, bytes32 role) external view returns (uint256) {
        return _roleApprovals[versionId][role];
    }

    function organisationCount(bytes32 versionId) external view returns (uint256) {
        return _orgCount[versionId];
    }

    // --- requirements and the gate --------------------------------------------------------

    /// @notice Set the approvals an environment requires: per role a count, and a minimum
    ///         number of distinct organisations among all approvers of the version.
    function setRequirement(
        bytes32 env,
        bytes32[] calldata roles,
        uint16[] calldata counts,
        uint16 minOrgs
    ) external onlyAdmin {
        uint256 n = roles.length;
        if (n != counts.length) revert LengthMismatch(n, counts.length);
        if (n > MAX_REQUIREMENTS) revert TooManyRequirements(n, MAX_REQUIREMENTS);
        _requirements[env] = Requirement(roles, counts, minOrgs, true);
        emit RequirementSet(env, roles, counts, minOrgs);
    }

    function getRequirement(bytes32 env)
        external
        view
        returns (bytes32[] memory roles, uint16[] memory counts, uint16 minOrgs, bool exists)
    {
        Requirement storage r = _requirements[env];
        return (r.roles, r.counts, r.minOrgs, r.exists);
    }

    /// @notice Whether `versionId` may be deployed to `env` now.
    function gatePasses(bytes32 env, bytes32 versionId) external view returns (bool) {
        return _gate(env, versionId, false);
    }

    // --- deployments ----------------------------------------------------------------------

    /// @notice Deploy `versionId` to `env`; reverts unless the gate passes.
    function deploy(bytes32 env, bytes32 versionId) external onlyDeployer {
        _gate(env, versionId, true);
        bytes32[] storage stack = _deployments[env];
        uint256 n = stack.length;
        bytes32 previous = n == 0 ? bytes32(0) : stack[n - 1];
        if (previous == versionId) revert AlreadyCurrent(env, versionId);
        stack.push(versionId);
        _everDeployed[env][versionId] = true;
        emit Deployed(env, versionId, previous, msg.sender, block.number);
    }

    /// @notice Return `env` to the version deployed before the current one.
    function rollback(bytes32 env) external onlyDeployer {
        bytes32[] storage stack = _deployments[env];
        uint256 n = stack.length;
        if (n < 2) revert NothingToRollBack(env);
        bytes32 from = stack[n - 1];
        bytes32 to = stack[n - 2];
        _gate(env, to, true);
        stack.pop();
        emit RolledBack(env, to, from, msg.sender, block.number);
    }

    /// @notice Re-deploy a version `env` ran before (it must pass the gate again).
    function rollbackTo(bytes32 env, bytes32 versionId) external onlyDeployer {
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

    function _useSignature(SignedApproval calldata a) private {
        if (block.timestamp > a.deadline) revert SignatureExpired(a.deadline);
        if (_nonceUsed[a.approver][a.nonce]) revert NonceUsed(a.approver, a.nonce);
        bytes32 digest =
            approvalDigest(a.versionId, a.role, a.orgId, a.approver, a.nonce, a.deadline);
        address recovered = Signatures.recover(digest, a.signature);
        if (recovered != a.approver) revert WrongSigner(recovered, a.approver);
        _nonceUsed[a.approver][a.nonce] = true;
    }

    /// @dev A signed approval names the approver's organisation (`signedOrgId`); it must be
    ///      the one the approver belongs to now.
    function _approve(
        bytes32 versionId,
        bytes32 role,
        address approver,
        bool signed,
        bytes32 signedOrgId
    ) private {
        Version storage v = _existing(versionId);
        if (v.deprecated) revert VersionDeprecated(versionId);
        bytes32 orgId = membership.orgOf(approver);
        if (orgId == bytes32(0)) revert NotAMember(approver);
        if (signed && signedOrgId != orgId) {
            revert WrongOrganisation(approver, signedOrgId, orgId);
        }
        if (!membership.hasRoleIn(orgId, approver, role)) revert RoleNotHeld(approver, role);
        if (_approved[versionId][approver][role]) {
            revert AlreadyApproved(versionId, approver, role);
        }
        _approved[versionId][approver][role] = true;
        _roleApprovals[versionId][role] += 1;
        if (!_orgApproved[versionId][orgId]) {
            _orgApproved[versionId][orgId] = true;
            _orgCount[versionId] += 1;
        }
        emit Approved(versionId, approver, role, orgId, msg.sender, block.number);
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
        uint256 n = r.roles.length;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 role = r.roles[i];
            uint256 have = _roleApprovals[versionId][role];
            if (have < r.counts[i]) {
                if (strict) revert ApprovalsMissing(versionId, role, have, r.counts[i]);
                return false;
            }
        }
        uint256 orgs = _orgCount[versionId];
        if (orgs < r.minOrgs) {
            if (strict) revert TooFewOrganisations(versionId, orgs, r.minOrgs);
            return false;
        }
        return true;
    }
}
