// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Membership
/// @notice Organisations, their members and the roles members hold, with the full history of
///         every role so that "did account A hold role R in organisation O at block B" has an
///         on-chain answer.
/// @dev A role id is keccak256 of its lower-case name (keccak256("qa"), ...). An account belongs
///      to at most one organisation at a time. Whoever holds ADMIN_ROLE in an organisation
///      administers it; the global admin creates organisations and may also act in any of them
///      (recovery). Per (organisation, account, role) the contract keeps the list of half-open
///      block intervals [fromBlock, toBlock) in which the role was held; toBlock is OPEN while it
///      still is. A role granted in block B is held "at B" (the state after block B); a role
///      revoked in block B is not.
contract Membership {
    bytes32 public constant ADMIN_ROLE = keccak256("admin");
    uint64 public constant OPEN = type(uint64).max;

    struct Interval {
        uint64 fromBlock;
        uint64 toBlock;
    }

    address public globalAdmin;

    mapping(bytes32 orgId => address creator) private _orgCreator;
    mapping(address account => bytes32 orgId) private _orgOf;
    mapping(address account => uint256 count) private _activeRoles;
    mapping(bytes32 key => Interval[] intervals) private _history;

    error NotGlobalAdmin(address caller);
    error NotOrgAdmin(bytes32 orgId, address caller);
    error ZeroAddress();
    error ZeroOrgId();
    error OrgExists(bytes32 orgId);
    error UnknownOrg(bytes32 orgId);
    error MemberOfOtherOrg(address account, bytes32 orgId);
    error NotAMember(address account, bytes32 orgId);
    error AlreadyMember(address account, bytes32 orgId);
    error RoleAlreadyHeld(bytes32 orgId, address account, bytes32 role);
    error RoleNotHeld(bytes32 orgId, address account, bytes32 role);
    error RolesStillHeld(address account, uint256 count);
    error ZeroRole();

    event GlobalAdminChanged(address indexed previousAdmin, address indexed newAdmin);
    event OrgCreated(bytes32 indexed orgId, address indexed admin, uint256 blockNumber);
    event MemberAdded(bytes32 indexed orgId, address indexed account, address sender);
    event MemberRemoved(bytes32 indexed orgId, address indexed account, address sender);
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

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        globalAdmin = admin;
        emit GlobalAdminChanged(address(0), admin);
    }

    modifier onlyGlobalAdmin() {
        if (msg.sender != globalAdmin) revert NotGlobalAdmin(msg.sender);
        _;
    }

    modifier onlyOrgAdmin(bytes32 orgId) {
        if (_orgCreator[orgId] == address(0)) revert UnknownOrg(orgId);
        if (msg.sender != globalAdmin && !_holds(orgId, msg.sender, ADMIN_ROLE)) {
            revert NotOrgAdmin(orgId, msg.sender);
        }
        _;
    }

    // --- global administration ------------------------------------------------------------

    function setGlobalAdmin(address newAdmin) external onlyGlobalAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit GlobalAdminChanged(globalAdmin, newAdmin);
        globalAdmin = newAdmin;
    }

    /// @notice Create organisation `orgId` with `admin` as its first member holding ADMIN_ROLE.
    function createOrg(bytes32 orgId, address admin) external onlyGlobalAdmin {
        if (orgId == bytes32(0)) revert ZeroOrgId();
        if (admin == address(0)) revert ZeroAddress();
        if (_orgCreator[orgId] != address(0)) revert OrgExists(orgId);
        _orgCreator[orgId] = msg.sender;
        emit OrgCreated(orgId, admin, block.number);
        _addMember(orgId, admin);
        _grant(orgId, admin, ADMIN_ROLE);
    }

    // --- organisation administration ------------------------------------------------------

    function addMember(bytes32 orgId, address account) external onlyOrgAdmin(orgId) {
        _addMember(orgId, account);
    }

    /// @notice Remove `account` from `orgId`; every role must have been revoked first.
    function removeMember(bytes32 orgId, address account) external onlyOrgAdmin(orgId) {
        if (_orgOf[account] != orgId) revert NotAMember(account, orgId);
        uint256 active = _activeRoles[account];
        if (active != 0) revert RolesStillHeld(account, active);
        delete _orgOf[account];
        emit MemberRemoved(orgId, account, msg.sender);
    }

    /// @notice Grant `role` in `orgId` to `account`, adding it as a member if it is in no
    ///         organisation yet.
    function grantRole(bytes32 orgId, address account, bytes32 role)
        external
        onlyOrgAdmin(orgId)
    {
        bytes32 current = _orgOf[account];
        if (current == bytes32(0)) {
            _addMember(orgId, account);
        } else if (current != orgId) {
            revert MemberOfOtherOrg(account, current);
        }
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
        return _orgCreator[orgId] != address(0);
    }

    /// @notice The organisation `account` belongs to now (zero if none).
    function orgOf(address account) external view returns (bytes32) {
        return _orgOf[account];
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

    function _addMember(bytes32 orgId, address account) private {
        if (account == address(0)) revert ZeroAddress();
        bytes32 current = _orgOf[account];
        if (current == orgId) revert AlreadyMember(account, orgId);
        if (current != bytes32(0)) revert MemberOfOtherOrg(account, current);
        _orgOf[account] = orgId;
        emit MemberAdded(orgId, account, msg.sender);
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
