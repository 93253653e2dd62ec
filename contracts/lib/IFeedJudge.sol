// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What a settlement asks the judge of a feed's oracles (OracleJudge implements it):
///         whether every oracle of the feed's configuration in force holds the feed's minimum
///         stake, free, with a judge that is registered with its StakeManager.
interface IFeedJudge {
    function feedAccountable(bytes32 feedId) external view returns (bool);
}
