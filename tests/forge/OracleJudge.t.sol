// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OracleFeeds} from "../../contracts/OracleFeeds.sol";
import {OracleJudge} from "../../contracts/OracleJudge.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one OracleJudge (registered with its StakeManager) over one OracleFeeds feed
///         of four staked oracles (f = 1; the handler creates the feed, declares its terms and
///         transmits): rounds of three observations where one observer may lie by up to three
///         times the tolerance, challenges of any observation of any round by anyone (the
///         oracles themselves included; repeated faults, closed windows, honest values),
///         withdrawal requests, restakes and time. Every challenge's outcome is predicted; the
///         handler counts the slashes it saw per fault id.
contract JudgeHandler is Cheats {
    struct Ghost {
        int256 base;
        int256 lie;
        uint8 liar;
        uint64 timestamp;
    }

    OracleFeeds public immutable feeds;
    OracleJudge public immutable judge;
    StakeManager public immutable sm;
    bytes32 public immutable feedId;
    address public constant TREASURY = address(0x7EA5);
    uint64 public constant DELAY = 1 days;
    uint32 public constant WINDOW = 1 hours;
    uint256 public constant MIN_STAKE = 1e18;
    uint256 public constant SLASH = 4e17;
    uint256 public constant TOLERANCE = 100;

    uint256[4] internal _keys = [uint256(11), 12, 13, 14];
    address[4] public oracles;
    address[2] internal _outsiders = [address(0xC0FFEE), address(0xD00D)];
    Ghost[] internal _rounds;
    bytes32[] public faults; // every fault id a challenge succeeded on, in order
    mapping(bytes32 faultId => uint256) public slashesOf;
    uint256 public slashedTotal;
    uint256 public sentIn;
    uint256 public disagreements;

    constructor() {
        for (uint256 i = 1; i < 4; ++i) {
            uint256 key = _keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(_keys[j - 1]) > vm.addr(key)) {
                _keys[j] = _keys[j - 1];
                --j;
            }
            _keys[j] = key;
        }
        address[] memory signers = new address[](4);
        for (uint256 i = 0; i < 4; ++i) {
            oracles[i] = vm.addr(_keys[i]);
            signers[i] = oracles[i];
        }
        feeds = new OracleFeeds(1 hours);
        sm = new StakeManager(address(this), TREASURY, DELAY, DELAY);
        judge = new OracleJudge(sm, feeds);
        sm.proposeJudge(address(judge), 5_000);
        vm.warp(block.timestamp + DELAY);
        address[] memory transmitters = new address[](1);
        transmitters[0] = address(this);
        feedId = feeds.createFeed("drought", signers, transmitters, 1, 0, 1000, 1 days);
        judge.declareTerms(feedId, address(0), MIN_STAKE, SLASH, TOLERANCE, WINDOW);
        for (uint256 i = 0; i < 4; ++i) {
            vm.deal(oracles[i], 100 ether);
            vm.prank(oracles[i]);
            sm.deposit{value: 2 * MIN_STAKE}(address(0), 2 * MIN_STAKE);
            sentIn += 2 * MIN_STAKE;
        }
    }

    function roundCount() external view returns (uint256) {
        return _rounds.length;
    }

    function faultCount() external view returns (uint256) {
        return faults.length;
    }

    /// @dev Round `epoch` (1-based): observers are the three oracles other than
    ///      (liar + 1) % 4, the liar's value last (the largest).
    function _report(uint64 epoch) internal view returns (OracleFeeds.Report memory r) {
        Ghost memory g = _rounds[epoch - 1];
        int256[] memory obs = new int256[](3);
        obs[0] = g.base;
        obs[1] = g.base;
        obs[2] = g.base + g.lie;
        bytes memory observers = new bytes(3);
        uint256 n;
        for (uint256 i = 0; i < 4; ++i) {
            if (i == (g.liar + 1) % 4 || i == g.liar) continue;
            observers[n++] = bytes1(uint8(i));
        }
        observers[2] = bytes1(g.liar);
        r = OracleFeeds.Report(
            feedId,
            feeds.configDigestAt(feedId, 1),
            epoch,
            obs,
            observers,
            keccak256(abi.encode("inputs", epoch)),
            keccak256("model"),
            g.timestamp
        );
    }

    function transmit(uint256 baseSeed, uint256 lieSeed, uint8 liar) external {
        _rounds.push(
            Ghost(
                int256(bound(baseSeed, 0, 600)),
                int256(bound(lieSeed, 0, 3 * TOLERANCE)),
                liar % 4,
                uint64(block.timestamp)
            )
        );
        OracleFeeds.Report memory r = _report(uint64(_rounds.length));
        bytes32 digest = feeds.reportDigest(r);
        bytes memory sigs = bytes.concat(signature(_keys[0], digest), signature(_keys[1], digest));
        bytes memory observed;
        for (uint256 i = 0; i < 3; ++i) {
            bytes32 od = feeds.observationDigest(r, r.observations[i]);
            observed = bytes.concat(observed, signature(_keys[uint8(r.observers[i])], od));
        }
        address[] memory signers = feeds.signersOf(feedId);
        feeds.transmit(r, signers, OracleFeeds.ConfigParams(1, 0, 1000, 1 days), sigs, observed);
    }

    function challenge(uint256 epochSeed, uint256 position, uint256 challengerSeed) external {
        if (_rounds.length == 0) return;
        uint64 epoch = uint64(1 + epochSeed % _rounds.length);
        OracleFeeds.Report memory r = _report(epoch);
        position = position % 3;
        address oracle = oracles[uint8(r.observers[position])];
        bytes memory sig = signature(
            _keys[uint8(r.observers[position])],
            feeds.observationDigest(r, r.observations[position])
        );
        uint256 c = challengerSeed % 6;
        address challenger = c < 4 ? oracles[c] : _outsiders[c - 4];
        bytes32 fault = judge.faultIdOf(feedId, epoch, oracle);
        (, uint64 acceptedAt) = feeds.acceptedReport(feedId, epoch);
        StakeManager.Stake memory s = sm.stakeOf(oracle, address(0));
        uint256 deviation = uint256(r.observations[position] - r.observations[1]);
        bool expected = block.timestamp <= uint256(acceptedAt) + WINDOW && deviation > TOLERANCE
            && challenger != oracle && slashesOf[fault] == 0 && s.free + s.locked + s.unbonding > 0;
        vm.prank(challenger);
        try judge.challenge(r, position, sig) returns (uint256 slashed) {
            if (!expected) disagreements++;
            if (slashesOf[fault] == 0) faults.push(fault);
            slashesOf[fault]++;
            slashedTotal += slashed;
        } catch {
            if (expected) disagreements++;
        }
    }

    function requestWithdrawal(uint256 who, uint256 amount) external {
        address oracle = oracles[who % 4];
        uint256 free = sm.stakeOf(oracle, address(0)).free;
        if (free == 0) return;
        vm.prank(oracle);
        sm.requestWithdrawal(address(0), bound(amount, 1, free));
    }

    function restake(uint256 who) external {
        address oracle = oracles[who % 4];
        vm.deal(oracle, oracle.balance + MIN_STAKE);
        vm.prank(oracle);
        sm.deposit{value: MIN_STAKE}(address(0), MIN_STAKE);
        sentIn += MIN_STAKE;
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, WINDOW));
    }
}

contract OracleJudgeInvariantTest is InvariantBase {
    JudgeHandler internal handler;
    OracleJudge internal judge;
    StakeManager internal sm;

    function setUp() public {
        vm.warp(1_700_000_000);
        handler = new JudgeHandler();
        judge = handler.judge();
        sm = handler.sm();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](8);
        s[0] = JudgeHandler.transmit.selector;
        s[1] = JudgeHandler.challenge.selector;
        s[2] = JudgeHandler.challenge.selector;
        s[3] = JudgeHandler.challenge.selector;
        s[4] = JudgeHandler.requestWithdrawal.selector;
        s[5] = JudgeHandler.restake.selector;
        s[6] = JudgeHandler.warp.selector;
        s[7] = JudgeHandler.transmit.selector;
        targetSelector(address(handler), s);
    }

    /// @notice One slash per fault: no fault id was slashed twice, the StakeManager marks
    ///         exactly those slashed, every challenge went as predicted (a repeated fault, a
    ///         closed window, an honest value or a self-challenge is refused) and what was
    ///         slashed is what the StakeManager booked.
    /// forge-config: ci.invariant.runs = 32
    function invariant_oneSlashPerFault() public view {
        for (uint256 i = 0; i < handler.faultCount(); i++) {
            bytes32 fault = handler.faults(i);
            checkEq(handler.slashesOf(fault), 1, "slashes of one fault");
            check(sm.faultSlashed(address(judge), fault), "the StakeManager marks the fault");
        }
        checkEq(handler.disagreements(), 0, "disagreements");
        StakeManager.Totals memory t = sm.totalsOf(address(0));
        checkEq(t.slashed, handler.slashedTotal(), "slashed in sum");
    }

    /// @notice The StakeManager's ether books balance, per oracle and in sum, and it holds
    ///         staked + owed.
    /// forge-config: ci.invariant.runs = 32
    function invariant_stakeBooks() public view {
        uint256 staked;
        uint256 slashed;
        for (uint256 i = 0; i < 4; i++) {
            StakeManager.Stake memory s = sm.stakeOf(handler.oracles(i), address(0));
            checkEq(s.deposited, s.free + s.locked + s.unbonding + s.slashed + s.withdrawn, "books");
            staked += s.free + s.locked + s.unbonding;
            slashed += s.slashed;
        }
        StakeManager.Totals memory t = sm.totalsOf(address(0));
        checkEq(t.staked, staked, "staked in sum");
        checkEq(t.slashed, slashed, "slashed per oracle in sum");
        checkEq(t.deposited, handler.sentIn(), "deposited");
        checkEq(t.slashed, t.owed + t.claimed, "slashed == owed + claimed");
        checkEq(address(sm).balance, t.staked + t.owed, "manager holds");
    }
}
