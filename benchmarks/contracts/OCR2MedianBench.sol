// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OCR2Base} from "@chainlink/contracts/src/v0.8/shared/ocr2/OCR2Base.sol";

/// Benchmark-only peer for benchmarks/bench_peers_gas.py: never deployed or shipped.
///
/// The smallest concrete contract over Chainlink's OCR2Base (npm chainlink contracts) that
/// accepts a median report: OCR2Base.transmit does OCR2's config-digest, calldata-length,
/// transmitter and f+1 signature checks; this contract adds what OCR2Aggregator does with the
/// report at minimum: reject stale (epoch, round), decode the OCR2 median report
/// (observationsTimestamp, rawObservers, int192[] observations, juelsPerFeeCoin), check the
/// observations are sorted, and store the median with its timestamps in one fresh slot per
/// round (OCR2Aggregator's Transmission layout). No billing, no events beyond OCR2Base's.
contract OCR2MedianBench is OCR2Base {
    struct Transmission {
        int192 answer;
        uint32 observationsTimestamp;
        uint32 transmissionTimestamp;
    }

    struct HotVars {
        uint40 latestEpochAndRound;
        uint32 latestAggregatorRoundId;
    }

    HotVars internal s_hotVars;
    mapping(uint32 => Transmission) internal s_transmissions;

    constructor() OCR2Base(false) {}

    function typeAndVersion() external pure override returns (string memory) {
        return "OCR2MedianBench 1.0.0";
    }

    function latestRoundData()
        external
        view
        returns (uint32 roundId, int192 answer, uint32 observationsTimestamp, uint40 epochAndRound)
    {
        HotVars memory hv = s_hotVars;
        Transmission memory t = s_transmissions[hv.latestAggregatorRoundId];
        return (hv.latestAggregatorRoundId, t.answer, t.observationsTimestamp, hv.latestEpochAndRound);
    }

    function _beforeSetConfig(uint8, bytes memory) internal override {}

    function _afterSetConfig(uint8, bytes memory) internal override {}

    function _validateReport(bytes32, uint40 epochAndRound, bytes memory)
        internal
        override
        returns (bool)
    {
        if (epochAndRound <= s_hotVars.latestEpochAndRound) return false;
        s_hotVars.latestEpochAndRound = epochAndRound;
        return true;
    }

    function _report(uint256, address, uint8, address[MAX_NUM_ORACLES] memory, bytes calldata report)
        internal
        override
    {
        (uint32 observationsTimestamp,, int192[] memory observations,) =
            abi.decode(report, (uint32, bytes32, int192[], int192));
        require(observations.length > 0, "no observations");
        for (uint256 i = 1; i < observations.length; ++i) {
            require(observations[i - 1] <= observations[i], "observations not sorted");
        }
        uint32 roundId = s_hotVars.latestAggregatorRoundId + 1;
        s_hotVars.latestAggregatorRoundId = roundId;
        s_transmissions[roundId] = Transmission({
            answer: observations[observations.length / 2],
            observationsTimestamp: observationsTimestamp,
            transmissionTimestamp: uint32(block.timestamp)
        });
    }
}
