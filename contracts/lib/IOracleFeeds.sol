// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The read side of OracleFeeds that settlement needs.
interface IOracleFeeds {
    struct Round {
        int256 answer;
        uint64 observationsTimestamp;
        uint64 acceptedAt;
        uint32 configVersion;
        uint8 observations;
        uint8 signatures;
        bytes32 inputRoot;
        bytes32 modelDigest;
    }

    function latestRound(bytes32 feedId) external view returns (uint64 epoch, Round memory);

    function getRound(bytes32 feedId, uint64 epoch) external view returns (Round memory);
}
