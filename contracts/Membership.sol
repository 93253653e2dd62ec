// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title Membership
/// @notice Organisations, their members and the roles members hold, with the full history of
///         every role so that "did account A hold role R in organisation O at block B" has an
///         on-chain answer.
/// @dev A role id is keccak256 of its lower-case name (keccak256("qa"), ...). An account belongs
///      to at most one organisation at a time, and joins one only with its own consent: it
///      accepts an invitation in its own transaction (`invite` + `acceptInvitation`), or an
///      admin of the organisation relays its EIP-712 consent (`addMember`), in the domain
///      ("ailedger Membership", "1", chainId, this contract):
///        Join(bytes32 orgId,address account,uint256 nonce,uint256 deadline)
///      with unordered per-account nonces (`cancelJoinNonce` burns one). Whoever holds
///      ADMIN_ROLE in an organisation administers it; the global admin (the owner, handed over
///      in two steps: Ownable2Step) creates organisations and may also act in any of them
///      (recovery). An organisation's first admin is named at creation and joins, with the
///      admin role, when it consents. Per (organisation, account, role) the contract keeps the
///      list of half-open block intervals [fromBlock, toBlock) in which the role was held;
///      toBlock is OPEN while it still is. A role granted in block B is held "at B" (the state
///      after block B); a role revoked in block B is not. `roleTicket` names the current grant
///      interval, so a contract that recorded it can tell later whether the role was held
///      without a break since (a member leaves only after every role is revoked).
contract Membership is Ownable2Step, EIP712 {
    bytes32 public constant ADMIN_ROLE = keccak256("admin");
    bytes32 public constant JOIN_TYPEHASH =
        keccak256("Join(bytes32 orgId,address account,uint256 nonce,uint256 deadline)");
    uint64 public constant OPEN = type(uint64).max;

    struct Interval {
        uint64 fromBlock;
        uint64 toBlock;
    }

    mapping(bytes32 orgId => bool) private _exists;
    mapping(bytes32 orgId => address founder) private _pendingFounder;
    mapping(address account => bytes32 orgId) private _orgOf;
    mapping(address account => mapping(bytes32 orgId => bool)) private _invited;
    mapping(address account => mapping(uint256 nonce => bool)) private _joinNonceUsed;
    mapping(address account => uint256 count) private _activeRoles;
    mapping(bytes32 key => Interval[] intervals) private _history;

    error NotOrgAdmin(bytes32 orgId, address caller);
    error ZeroAddress();
    error ZeroOrgId();
    error OrgExists(bytes32 orgId);
    error UnknownOrg(bytes32 orgId);
    error MemberOfOtherOrg(address account, bytes32 orgId);
    error NotAMember(address account, bytes32 orgId);
    error AlreadyMember(address account, bytes32 orgId);
    error NotInvited(address account, bytes32 orgId);
    error RoleAlreadyHeld(bytes32 orgId, address account, bytes32 role);
    error RoleNotHeld(bytes32 orgId, address account, bytes32 role);
    error RolesStillHeld(address account, uint256 count);
    error ZeroRole();
    error SignatureExpired(uint256 deadline);
    error JoinNonceUsed(address account, uint256 nonce);
    error WrongSigner(address recovered, address account);

    event OrgCreated(bytes32 indexed orgId, address indexed admin, uint256 blockNumber);
    event MemberInvited(bytes32 indexed orgId, address indexed account, address sender);
    event MemberAdded(bytes32 indexed orgId, address indexed account, address sender);
    event MemberRemoved(bytes32 indexed orgId, address indexed account, address sender);
    event JoinNonceCancelled(address indexed account, uint256 nonce);
    event RoleGranted(
        bytes32 indexed orgId,
        address indexed account,
        bytes32 indexed role,
        address sender,
        uint256 blockNumber
    );
    event RoleRevoked(
        bytes32 indexed orgId,
        address indexed account,
        bytes32 indexed role,
        address sender,
        uint256 blockNumber
    );

    constructor(address admin) Ownable(admin) EIP712("ailedger Membership", "1") {}

    modifier onlyOrgAdmin(bytes32 orgId) {
        if (!_exists[orgId]) revert UnknownOrg(orgId);
        if (msg.sender != owner() && !_holds(orgId, msg.sender, ADMIN_ROLE)) {
            revert NotOrgAdmin(orgId, msg.sender);
        }
        _;
    }

    // --- global administration ------------------------------------------------------------

    /// @notice Create organisation `orgId` whose first admin is `admin`. The global admin
    ///         creating an organisation for itself joins at once; anyone else is invited and
    ///         joins, with ADMIN_ROLE, when it consents (`acceptInvitation` or `addMember`).
    function createOrg(bytes32 orgId, address admin) external onlyOwner {
        if (orgId == bytes32(0)) revert ZeroOrgId();
        if (admin == address(0)) revert ZeroAddress();
        if (_exists[orgId]) revert OrgExists(orgId);
        _exists[orgId] = true;
        emit OrgCreated(orgId, admin, block.number);
        _pendingFounder[orgId] = admin;
        if (admin == msg.sender) {
            _join(orgId, admin);
        } else {
            _invite(orgId, admin);
        }
    }

    // --- joining (always with the member's consent) --------------------------------------

    /// @notice Invite `account` to `orgId`; it joins by calling `acceptInvitation`.
    function invite(bytes32 orgId, address account) external onlyOrgAdmin(orgId) {
        _invite(orgId, account);
    }

    /// @notice Join the organisation the caller was invited to.
    function acceptInvitation(bytes32 orgId) external {
        if (!_invited[msg.sender][orgId]) revert NotInvited(msg.sender, orgId);
        _join(orgId, msg.sender);
    }

    /// @notice Add `account` to `orgId` with its EIP-712 `Join` consent (an org admin relays).
    function addMember(
        bytes32 orgId,
        address account,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external onlyOrgAdmin(orgId) {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        if (_joinNonceUsed[account][nonce]) revert JoinNonceUsed(account, nonce);
        address recovered = ECDSA.recover(joinDigest(orgId, account, nonce, deadline), signature);
        if (recovered != account) revert WrongSigner(recovered, account);
        _joinNonceUsed[account][nonce] = true;
        _join(orgId, account);
    }

    /// @notice Burn one of the caller's join nonces, so a consent signed with it never counts.
    function cancelJoinNonce(uint256 nonce) external {
        if (_joinNonceUsed[msg.sender][nonce]) revert JoinNonceUsed(msg.sender, nonce);
        _joinNonceUsed[msg.sender][nonce] = true;
        emit JoinNonceCancelled(msg.sender, nonce);
    }

    function joinDigest(bytes32 orgId, address account, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(JOIN_TYPEHASH, orgId, account, nonce, deadline))
        );
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // --- organisation administration ------------------------------------------------------

    /// @notice Remove `account` from `orgId`; every role must have been revoked first.
    function removeMember(bytes32 orgId, address account) external onlyOrgAdmin(orgId) {
        if (_orgOf[account] != orgId) revert NotAMember(account, orgId);
        uint256 active = _activeRoles[account];
        if (active != 0) revert RolesStillHeld(account, active);
        delete _orgOf[account];
        emit MemberRemoved(orgId, account, msg.sender);
    }

    /// @notice Grant `role` in `orgId` to `account`, which must be a member of `orgId`.
    function grantRole(bytes32 orgId, address account, bytes32 role)
        external
        onlyOrgAdmin(orgId)
    {
        if (_orgOf[account] != orgId) revert NotAMember(account, orgId);
        _grant(orgId, account, role);
    }

    function revokeRole(bytes32 orgId, address account, bytes32 role)
        external
        onlyOrgAdmin(orgId)
    {
        Interval[] storage list = _history[_key(orgId, account, role)];
        uint256 n = list.length;
        if (n == 0 || list[n - 1].toBlock != OPEN) revert RoleNotHeld(orgId, account, role);
        list[n - 1].toBlock = uint64(block.number);
        _activeRoles[account] -= 1;
        emit RoleRevoked(orgId, account, role, msg.sender, block.number);
    }

    // --- queries --------------------------------------------------------------------------

    function orgExists(bytes32 orgId) external view returns (bool) {
        return _exists[orgId];
    }

    /// @notice The organisation `account` belongs to now (zero if none).
    function orgOf(address account) external view returns (bytes32) {
        return _orgOf[account];
    }

    /// @notice Whether `account` holds an invitation to `orgId` (invitations from several
    ///         organisations may be open at once; joining one closes only its own).
    function isInvited(bytes32 orgId, address account) external view returns (bool) {
        return _invited[account][orgId];
    }

    function joinNonceUsed(address account, uint256 nonce) external view returns (bool) {
        return _joinNonceUsed[account][nonce];
    }

    /// @notice Whether `account` holds `role` now, in the organisation it belongs to.
    function hasRole(address account, bytes32 role) external view returns (bool) {
        bytes32 orgId = _orgOf[account];
        return orgId != bytes32(0) && _holds(orgId, account, role);
    }

    /// @notice Whether `account` holds `role` in `orgId` now.
    function hasRoleIn(bytes32 orgId, address account, bytes32 role)
        external
        view
        returns (bool)
    {
        return _holds(orgId, account, role);
    }

    /// @notice The current grant of `role` in `orgId` to `account`: its 1-based interval
    ///         number while the role is held, zero otherwise. Equal tickets at two moments
    ///         mean the role (and so the membership) was held without a break in between.
    function roleTicket(bytes32 orgId, address account, bytes32 role)
        external
        view
        returns (uint256)
    {
        Interval[] storage list = _history[_key(orgId, account, role)];
        uint256 n = list.length;
        return n != 0 && list[n - 1].toBlock == OPEN ? n : 0;
    }

    /// @notice Whether `account` held `role` in `orgId` at block `blockNumber` (after that
    ///         block's transactions). Binary search over the role's intervals.
    function hadRoleAt(bytes32 orgId, address account, bytes32 role, uint256 blockNumber)
        external
        view
        returns (bool)
    {
        Interval[] storage list = _history[_key(orgId, account, role)];
        // Find the last interval with fromBlock <= blockNumber.
        uint256 lo = 0;
        uint256 hi = list.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) >> 1;
            if (list[mid].fromBlock <= blockNumber) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo == 0) return false;
        return blockNumber < list[lo - 1].toBlock;
    }

    /// @notice Number of grant intervals recorded for (orgId, account, role).
    function roleIntervalCount(bytes32 orgId, address account, bytes32 role)
        external
        view
        returns (uint256)
    {
        return _history[_key(orgId, account, role)].length;
    }

    /// @notice Interval `index` of (orgId, account, role); toBlock is OPEN while still held.
    function roleInterval(bytes32 orgId, address account, bytes32 role, uint256 index)
        external
        view
        returns (uint64 fromBlock, uint64 toBlock)
    {
        Interval storage it = _history[_key(orgId, account, role)][index];
        return (it.fromBlock, it.toBlock);
    }

    /// @notice Number of roles `account` holds now.
    function activeRoleCount(address account) external view returns (uint256) {
        return _activeRoles[account];
    }

    // --- internals ------------------------------------------------------------------------

    function _key(bytes32 orgId, address account, bytes32 role) private pure returns (bytes32) {
        return keccak256(abi.encode(orgId, account, role));
    }

    function _holds(bytes32 orgId, address account, bytes32 role) private view returns (bool) {
        Interval[] storage list = _history[_key(orgId, account, role)];
        uint256 n = list.length;
        return n != 0 && list[n - 1].toBlock == OPEN;
    }

    function _invite(bytes32 orgId, address account) private {
        if (account == address(0)) revert ZeroAddress();
        bytes32 current = _orgOf[account];
        if (current == orgId) revert AlreadyMember(account, orgId);
        if (current != bytes32(0)) revert MemberOfOtherOrg(account, current);
        _invited[account][orgId] = true;
        emit MemberInvited(orgId, account, msg.sender);
    }

    /// @dev `account` consented; it joins, and the organisation's named first admin gets
    ///      ADMIN_ROLE with it.
    function _join(bytes32 orgId, address account) private {
        if (account == address(0)) revert ZeroAddress();
        bytes32 current = _orgOf[account];
        if (current == orgId) revert AlreadyMember(account, orgId);
        if (current != bytes32(0)) revert MemberOfOtherOrg(account, current);
        _orgOf[account] = orgId;
        delete _invited[account][orgId];
        emit MemberAdded(orgId, account, msg.sender);
        if (_pendingFounder[orgId] == account) {
            delete _pendingFounder[orgId];
            _grant(orgId, account, ADMIN_ROLE);
        }
    }

    function _grant(bytes32 orgId, address account, bytes32 role) private {
        if (role == bytes32(0)) revert ZeroRole();
        Interval[] storage list = _history[_key(orgId, account, role)];
        uint256 n = list.length;
        if (n != 0 && list[n - 1].toBlock == OPEN) revert RoleAlreadyHeld(orgId, account, role);
        list.push(Interval(uint64(block.number), OPEN));
        _activeRoles[account] += 1;
        emit RoleGranted(orgId, account, role, msg.sender, block.number);
    }
}
