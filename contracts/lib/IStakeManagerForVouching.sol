// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The part of StakeManager a market and judge calls.
interface IStakeManagerForVouching {
    function lock(address participant, address asset, uint256 amount) external;
    function unlock(address participant, address asset, uint256 amount) external;
    function lockedBy(address participant, address asset, address market)
        external
        view
        returns (uint256);
    function slash(
        address participant,
        address asset,
        uint256 amount,
        bytes32 faultId,
        uint32 reasonCode,
        bytes32 evidenceHash,
        address prover
    ) external returns (uint256);
}
