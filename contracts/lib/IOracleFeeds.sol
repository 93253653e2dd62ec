// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The read side of OracleFeeds that settlement needs.
interface IOracleFeeds {
    struct Config {
        bytes32 configDigest;
        uint8 n;
        uint8 f;
        uint32 maxAge;
        uint64 activatesAt;
        int256 minAnswer;
        int256 maxAnswer;
    }

    /// @dev configVersion is 0 only for an epoch with no accepted round.
    struct Round {
        int192 answer;
        uint32 observationsTimestamp;
        uint32 configVersion;
    }

    function creatorOf(bytes32 feedId) external view returns (address);

    function configByDigest(bytes32 feedId, bytes32 configDigest)
        external
        view
        returns (uint32 version, Config memory config);

    function configDigestAt(bytes32 feedId, uint32 version) external view returns (bytes32);

    function getRound(bytes32 feedId, uint64 epoch) external view returns (Round memory);

    function roundAt(bytes32 feedId, uint64 epoch) external view returns (Round memory);
}
