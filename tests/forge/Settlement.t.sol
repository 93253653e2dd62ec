// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IOracleFeeds} from "../../contracts/lib/IOracleFeeds.sol";
import {OracleFeeds} from "../../contracts/OracleFeeds.sol";
import {ParametricEscrow} from "../../contracts/ParametricEscrow.sol";
import {PerformanceBonus} from "../../contracts/PerformanceBonus.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one OracleFeeds feed and the two contracts that pay on it. The feed's
///         creator is hostile: it proposes configurations whose oracles are all its own keys.
///         Reports are sent honestly or forged (signed by outsiders, too few signers, stale,
///         repeated epochs, or with a signer list or values not the configuration's);
///         insurers write policies pinned to a configuration, payers fund weekly bonuses, and
///         anyone settles, expires, refunds, withdraws, forces ether in and the owner sweeps it.
///         The handler's own model (ghost) of the accepted rounds says what may pay; every
///         disagreement is counted.
contract SettlementHandler is Cheats {
    uint256 internal constant HONEST = 11; // oracle keys 11..14
    uint256 internal constant ROGUE = 21; // the creator's own keys 21..24
    uint256 internal constant ACTORS = 4; // keys 31..34
    uint256 internal constant OUTSIDER = 41; // in no configuration
    uint32 internal constant CONFIG_DELAY = 1 hours;
    uint32 internal constant MAX_AGE = 1 days;

    OracleFeeds public immutable feeds;
    ParametricEscrow public immutable escrow;
    PerformanceBonus public immutable bonus;
    address public immutable creator;
    bytes32 public immutable feedId;

    struct GhostRound {
        bool exists;
        int192 answer;
        uint64 observed;
        uint32 version;
    }

    struct GhostPolicy {
        uint256 poolId;
        address holder;
        bytes32 configDigest;
        bool above;
        int256 threshold;
        uint256 payout;
        uint64 start;
        uint64 expiry;
    }

    struct GhostAgreement {
        address payer;
        address contractor;
        bytes32 configDigest;
        uint64 firstWeek;
        uint64 lastWeek;
        uint64 refundAfter;
        uint256 amountPerWeek;
    }

    // Ghost model of the feed.
    mapping(uint32 version => bool) public rogueVersion;
    mapping(uint32 version => bytes32) public digestOf;
    uint32 public versions = 1;
    uint32 public activeVersion = 1;
    uint32 public pendingVersion;
    uint256 public pendingAt;
    uint64 public latestEpoch;
    uint64[] public epochs;
    mapping(uint64 epoch => GhostRound) internal _rounds;

    // Ghost model of the money.
    uint256[] public pools;
    GhostPolicy[] internal _policies;
    GhostAgreement[] internal _agreements;
    mapping(address => uint256) public escrowOwed;
    mapping(address => uint256) public bonusOwed;
    uint256 public escrowForced;
    uint256 public bonusForced;

    uint256 public violations;
    string public lastViolation;
    uint256 public roundsAccepted;
    uint256 public tampered;
    uint256 public policiesPaid;
    uint256 public weeksPaid;
    uint256 public weeksRefunded;

    constructor() {
        feeds = new OracleFeeds(CONFIG_DELAY);
        escrow = new ParametricEscrow(IOracleFeeds(address(feeds)));
        bonus = new PerformanceBonus(IOracleFeeds(address(feeds)));
        creator = vm.addr(0xC0FFEE);
        address[] memory transmitters = new address[](1);
        transmitters[0] = address(this);
        vm.prank(creator);
        feedId =
            feeds.createFeed("model-score", _sortedAddrs(HONEST), transmitters, 1, 0, 100, MAX_AGE);
        digestOf[1] = feeds.configDigestAt(feedId, 1);
    }

    receive() external payable {}

    // --- helpers --------------------------------------------------------------------------

    function _violation(string memory what) internal {
        violations += 1;
        lastViolation = what;
    }

    function _sortedKeys(uint256 first) internal pure returns (uint256[] memory keys) {
        keys = new uint256[](4);
        for (uint256 i = 0; i < 4; ++i) {
            keys[i] = first + i;
        }
        _sortByAddress(keys);
    }

    /// @dev Sort private keys in place, ascending by their addresses.
    function _sortByAddress(uint256[] memory keys) internal pure {
        for (uint256 i = 1; i < keys.length; ++i) {
            uint256 key = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(key)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = key;
        }
    }

    function _addrs(uint256[] memory keys) internal pure returns (address[] memory addrs) {
        addrs = new address[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            addrs[i] = vm.addr(keys[i]);
        }
    }

    function _sortedAddrs(uint256 first) internal pure returns (address[] memory) {
        return _addrs(_sortedKeys(first));
    }

    function _actor(uint256 seed) internal pure returns (address) {
        return vm.addr(31 + seed % ACTORS);
    }

    /// @dev The version in force now, by the model (a due proposal counts).
    function _inForce() internal view returns (uint32) {
        if (pendingVersion != 0 && block.timestamp >= pendingAt) return pendingVersion;
        return activeVersion;
    }

    function _promote() internal {
        if (pendingVersion != 0 && block.timestamp >= pendingAt) {
            activeVersion = pendingVersion;
            pendingVersion = 0;
        }
    }

    /// @dev A configuration digest: the honest first one, or any later one.
    function _digest(uint256 seed) internal view returns (bytes32) {
        return seed % 2 == 0 ? digestOf[1] : digestOf[uint32(1 + (seed / 2) % versions)];
    }

    /// @dev An epoch the feed knows (mostly), or any small one.
    function _epoch(uint256 seed) internal view returns (uint64) {
        if (epochs.length != 0 && seed % 4 != 0) return epochs[(seed / 4) % epochs.length];
        return uint64(bound(seed, 0, uint256(latestEpoch) + 3));
    }

    function round(uint64 epoch) external view returns (GhostRound memory) {
        return _rounds[epoch];
    }

    function epochCount() external view returns (uint256) {
        return epochs.length;
    }

    function poolCount() external view returns (uint256) {
        return pools.length;
    }

    function policyCount() external view returns (uint256) {
        return _policies.length;
    }

    function policy(uint256 index) external view returns (GhostPolicy memory) {
        return _policies[index];
    }

    function agreementCount() external view returns (uint256) {
        return _agreements.length;
    }

    function agreement(uint256 index) external view returns (GhostAgreement memory) {
        return _agreements[index];
    }

    /// @notice Whether the model's round `epoch` pays policy `p`: accepted under the pinned
    ///         configuration, observed inside the window, trigger met.
    function roundPays(GhostPolicy memory p, uint64 epoch) public view returns (bool) {
        GhostRound storage r = _rounds[epoch];
        if (!r.exists || digestOf[r.version] != p.configDigest) return false;
        if (r.observed < p.start || r.observed > p.expiry) return false;
        return p.above ? r.answer > p.threshold : r.answer < p.threshold;
    }

    // --- the feed -------------------------------------------------------------------------

    /// @dev The values of every configuration the creator writes (f = 1, bounds [0, 100]).
    function _params() internal pure returns (OracleFeeds.ConfigParams memory) {
        return OracleFeeds.ConfigParams(1, 0, 100, MAX_AGE);
    }

    /// @dev A report of the configuration in force (by the model) at `epoch`, observed `age`
    ///      seconds ago, with three sorted observations: a third say 0 (no incident: a bonus
    ///      week pays), a third 0-2, the rest anything in the feed's bounds [0, 100].
    function _report(uint256 valueSeed, uint32 version, uint64 epoch, uint64 age)
        internal
        view
        returns (OracleFeeds.Report memory)
    {
        uint256 range = valueSeed % 3 == 0 ? 1 : valueSeed % 3 == 1 ? 3 : 101;
        int256[] memory obs = new int256[](3);
        for (uint256 i = 0; i < 3; ++i) {
            obs[i] = int256(uint256(keccak256(abi.encode(valueSeed, i))) % range);
        }
        // Sort three values.
        if (obs[0] > obs[1]) (obs[0], obs[1]) = (obs[1], obs[0]);
        if (obs[1] > obs[2]) (obs[1], obs[2]) = (obs[2], obs[1]);
        if (obs[0] > obs[1]) (obs[0], obs[1]) = (obs[1], obs[0]);
        return OracleFeeds.Report(
            feedId,
            digestOf[version],
            epoch,
            obs,
            hex"000102",
            keccak256(abi.encode("inputs", epoch)),
            keccak256("model"),
            uint64(block.timestamp) - age
        );
    }

    /// @dev Signatures of `report` by the first `count` of `keys` (ascending by address).
    function _sign(OracleFeeds.Report memory report, uint256[] memory keys, uint256 count)
        internal
        view
        returns (bytes memory signatures)
    {
        bytes32 digest = feeds.reportDigest(report);
        for (uint256 i = 0; i < count; ++i) {
            signatures = bytes.concat(signatures, signature(keys[i], digest));
        }
    }

    /// @dev Each observation of `report` signed by its observer (`keys` ascending by address:
    ///      observer index i is keys[i]), as `transmit` takes them.
    function _observed(OracleFeeds.Report memory report, uint256[] memory keys)
        internal
        view
        returns (bytes memory signatures)
    {
        for (uint256 i = 0; i < report.observations.length; ++i) {
            uint256 key = keys[uint8(report.observers[i])];
            bytes32 digest = feeds.observationDigest(report, report.observations[i]);
            signatures = bytes.concat(signatures, signature(key, digest));
        }
    }

    /// @dev attack % 8: 0-4 honest; 5 signed by keys outside the configuration in force
    ///      (the creator's own while the honest set is in force, or vice versa); 6 one
    ///      signature only (f = 1 needs 2); 7 a stale report (older than maxAge). Every report
    ///      goes with the signer list and values of the configuration in force (by the model,
    ///      which `transmitConfig` must agree with); `transmitTampered` sends wrong ones.
    function transmit(uint256 valueSeed, uint256 stepSeed, uint256 ageSeed, uint8 attack) external {
        uint256 mode = attack % 8;
        uint32 version = _inForce();
        uint64 epoch = uint64(latestEpoch + bound(stepSeed, 0, 3)); // 0: not increasing
        uint64 age =
            mode == 7 ? uint64(MAX_AGE) + 1 + uint64(ageSeed % 1 hours) : uint64(ageSeed % 2 hours);
        if (age > block.timestamp) return;
        OracleFeeds.Report memory report = _report(valueSeed, version, epoch, age);
        address[] memory signers = _sortedAddrs(rogueVersion[version] ? ROGUE : HONEST);
        (address[] memory listed, OracleFeeds.ConfigParams memory values) =
            feeds.transmitConfig(feedId);
        if (keccak256(abi.encode(listed, values)) != keccak256(abi.encode(signers, _params()))) {
            _violation("transmitConfig disagrees with the model");
        }
        bool rogue = rogueVersion[version];
        if (mode == 5) rogue = !rogue;
        bytes memory signatures =
            _sign(report, _sortedKeys(rogue ? ROGUE : HONEST), mode == 6 ? 1 : 2);
        bool expected = mode < 5 && epoch > latestEpoch;
        bytes memory observed =
            _observed(report, _sortedKeys(rogueVersion[version] ? ROGUE : HONEST));
        try feeds.transmit(report, signers, _params(), signatures, observed) returns (
            int192 answer
        ) {
            if (!expected) _violation("report accepted against the model");
            if (answer != report.observations[1]) _violation("answer is not the median");
            _promote();
            latestEpoch = epoch;
            epochs.push(epoch);
            _rounds[epoch] = GhostRound(
                true, int192(report.observations[1]), report.observationsTimestamp, version
            );
            roundsAccepted += 1;
        } catch {
            if (expected) _violation("honest report refused");
        }
    }

    /// @dev A report that would be accepted under the signer list and values it is sent with,
    ///      but they are not those of the configuration in force (tamper % 8): 0 the other key
    ///      set's list, signed by those keys (the creator's own while the honest set is in
    ///      force, or vice versa); 1 one signer swapped for an outsider, who signs; 2 two
    ///      signers out of order; 3 a signer dropped; 4 an outsider appended; 5 f = 0 and one
    ///      signature; 6 bounds widened, one observation outside the configured ones; 7 maxAge
    ///      raised, the report older than the configured one. The configuration commitment
    ///      must refuse every one with ConfigMismatch(feedId, version in force).
    function transmitTampered(uint256 valueSeed, uint256 stepSeed, uint8 tamper) external {
        uint256 mode = tamper % 8;
        uint32 version = _inForce();
        uint64 epoch = uint64(latestEpoch + bound(stepSeed, 1, 3));
        uint64 age = mode == 7 ? uint64(MAX_AGE) + 1 + uint64(stepSeed % 1 hours) : 0;
        OracleFeeds.Report memory report = _report(valueSeed, version, epoch, age);
        // The list of the key set in force, or (0) of the other one.
        bool honestList = rogueVersion[version] == (mode == 0);
        uint256[] memory listed = _sortedKeys(honestList ? HONEST : ROGUE);
        uint256[] memory signing = new uint256[](mode == 5 ? 1 : 2);
        // The first two keys of the list sign (the first and the outsider for 1; one for 5).
        signing[0] = listed[0];
        if (mode == 1) signing[1] = OUTSIDER;
        else if (mode != 5) signing[1] = listed[1];
        _sortByAddress(signing);
        OracleFeeds.ConfigParams memory params = _params();
        if (mode == 1) {
            listed[3] = OUTSIDER;
            _sortByAddress(listed);
        } else if (mode == 3) {
            assembly ("memory-safe") {
                mstore(listed, 3)
            }
        } else if (mode == 4) {
            uint256[] memory longer = new uint256[](5);
            for (uint256 i = 0; i < 4; ++i) {
                longer[i] = listed[i];
            }
            longer[4] = OUTSIDER;
            listed = longer;
        } else if (mode == 5) {
            params.f = 0;
        } else if (mode == 6) {
            params.maxAnswer = 1000;
            report.observations[2] = 101 + int256(valueSeed % 900);
        } else if (mode == 7) {
            params.maxAge = MAX_AGE + 2 hours;
        }
        address[] memory signers = _addrs(listed);
        if (mode == 2) (signers[2], signers[3]) = (signers[3], signers[2]);
        bytes memory signatures = _sign(report, signing, signing.length);
        bytes memory observed = _observed(report, _sortedKeys(honestList ? HONEST : ROGUE));
        try feeds.transmit(report, signers, params, signatures, observed) {
            _violation("report accepted with a tampered configuration");
        } catch (bytes memory reason) {
            bytes memory mismatch =
                abi.encodeWithSelector(OracleFeeds.ConfigMismatch.selector, feedId, version);
            if (keccak256(reason) != keccak256(mismatch)) {
                _violation("tampered configuration not refused with ConfigMismatch");
            }
        }
        tampered += 1;
    }

    /// @dev The creator proposes a new configuration: its own four keys (rogue) or honest.
    function proposeConfig(bool rogue) external {
        address[] memory transmitters = new address[](1);
        transmitters[0] = address(this);
        _promote();
        vm.prank(creator);
        uint32 version = feeds.setConfig(
            feedId, _sortedAddrs(rogue ? ROGUE : HONEST), transmitters, 1, 0, 100, MAX_AGE
        );
        versions += 1;
        if (version != versions) _violation("config version numbering");
        rogueVersion[version] = rogue;
        digestOf[version] = feeds.configDigestAt(feedId, version);
        pendingVersion = version;
        pendingAt = block.timestamp + CONFIG_DELAY;
    }

    // --- ParametricEscrow -----------------------------------------------------------------

    function createPool(uint256 actorSeed, uint256 amountSeed) external {
        address insurer = _actor(actorSeed);
        uint256 amount = bound(amountSeed, 0, 10 ether);
        vm.deal(insurer, insurer.balance + amount);
        vm.prank(insurer);
        pools.push(escrow.createPool{value: amount}());
    }

    function createPolicy(
        uint256 poolSeed,
        uint256 holderSeed,
        uint256 digestSeed,
        bool above,
        uint256 thresholdSeed,
        uint256 payoutSeed,
        uint256 windowSeed
    ) external {
        if (pools.length == 0) return;
        GhostPolicy memory p;
        p.poolId = pools[poolSeed % pools.length];
        p.holder = holderSeed % 16 == 0 ? creator : _actor(holderSeed);
        p.configDigest = _digest(digestSeed);
        p.above = above;
        p.threshold = int256(thresholdSeed % 101);
        uint256 free = escrow.getPool(p.poolId).free;
        p.payout = bound(payoutSeed, 1, free + 1);
        p.start = uint64(block.timestamp - (block.timestamp > 1 days ? windowSeed % 1 days : 0));
        p.expiry = uint64(block.timestamp + 1 + (windowSeed >> 64) % 3 days);
        _writePolicy(p, p.payout <= free && p.holder != creator);
    }

    function _writePolicy(GhostPolicy memory p, bool expected) internal {
        vm.prank(escrow.getPool(p.poolId).insurer);
        try escrow.createPolicy(
            p.poolId,
            p.holder,
            feedId,
            p.configDigest,
            p.above ? ParametricEscrow.Trigger.Above : ParametricEscrow.Trigger.Below,
            p.threshold,
            p.payout,
            p.start,
            p.expiry
        ) returns (
            uint256 policyId
        ) {
            if (!expected) _violation("policy written against the model");
            _policies.push(p);
            if (policyId != _policies.length) _violation("policy numbering");
        } catch {
            if (expected) _violation("policy refused");
        }
    }

    function settle(uint256 policySeed, uint256 epochSeed) external {
        if (_policies.length == 0) return;
        uint256 policyId = 1 + policySeed % _policies.length;
        GhostPolicy memory p = _policies[policyId - 1];
        uint64 epoch = _epoch(epochSeed);
        bool active = escrow.getPolicy(policyId).status == ParametricEscrow.Status.Active;
        bool expected = active && block.timestamp <= uint256(p.expiry) + escrow.SETTLEMENT_GRACE()
            && roundPays(p, epoch);
        try escrow.settle(policyId, epoch) returns (uint256 paid) {
            if (!expected) _violation("policy paid without a qualifying report");
            if (paid != p.payout) _violation("wrong payout");
            escrowOwed[p.holder] += paid;
            policiesPaid += 1;
        } catch {
            if (expected) _violation("qualifying settlement refused");
        }
    }

    function expire(uint256 policySeed) external {
        if (_policies.length == 0) return;
        uint256 policyId = 1 + policySeed % _policies.length;
        GhostPolicy memory p = _policies[policyId - 1];
        bool active = escrow.getPolicy(policyId).status == ParametricEscrow.Status.Active;
        bool expected = active && block.timestamp > uint256(p.expiry) + escrow.SETTLEMENT_GRACE();
        try escrow.expire(policyId) {
            if (!expected) _violation("expired against the model");
        } catch {
            if (expected) _violation("expiry refused");
        }
    }

    function reclaim(uint256 poolSeed, uint256 amountSeed) external {
        if (pools.length == 0) return;
        uint256 poolId = pools[poolSeed % pools.length];
        ParametricEscrow.Pool memory pool = escrow.getPool(poolId);
        uint256 amount = bound(amountSeed, 1, pool.free + 1);
        vm.prank(pool.insurer);
        try escrow.reclaim(poolId, amount) {
            if (amount > pool.free) _violation("reclaimed reserved money");
            escrowOwed[pool.insurer] += amount;
        } catch {
            if (amount <= pool.free) _violation("reclaim refused");
        }
    }

    // --- PerformanceBonus -----------------------------------------------------------------

    function createAgreement(
        uint256 payerSeed,
        uint256 digestSeed,
        uint256 weekSeed,
        uint256 amountSeed,
        uint256 refundSeed
    ) external {
        address payer = _actor(payerSeed);
        address contractor = _actor(payerSeed / ACTORS + 1);
        uint64 firstWeek = uint64(1 + bound(weekSeed, 0, uint256(latestEpoch) + 4));
        uint64 lastWeek = firstWeek + uint64((weekSeed >> 128) % 4);
        uint256 amount = bound(amountSeed, 1, 1 ether);
        uint256 total = (lastWeek - firstWeek + 1) * amount;
        uint64 refundAfter = uint64(block.timestamp + 1 + refundSeed % 3 days);
        GhostAgreement memory a = GhostAgreement(
            payer, contractor, _digest(digestSeed), firstWeek, lastWeek, refundAfter, amount
        );
        vm.deal(payer, payer.balance + total);
        vm.prank(payer);
        uint256 id = bonus.createAgreement{value: total}(
            contractor, feedId, a.configDigest, firstWeek, lastWeek, refundAfter, amount
        );
        _agreements.push(a);
        if (id != _agreements.length) _violation("agreement numbering");
    }

    function _week(uint256 agreementId, uint256 weekSeed) internal view returns (uint64) {
        GhostAgreement storage a = _agreements[agreementId - 1];
        // One past the end too (refused).
        return a.firstWeek + uint64(weekSeed % (a.lastWeek - a.firstWeek + 2));
    }

    function settleWeek(uint256 agreementSeed, uint256 weekSeed) external {
        if (_agreements.length == 0) return;
        uint256 id = 1 + agreementSeed % _agreements.length;
        GhostAgreement memory a = _agreements[id - 1];
        uint64 week = _week(id, weekSeed);
        GhostRound memory r = _rounds[week];
        bool open = week <= a.lastWeek && !bonus.weekSettled(id, week);
        bool expected = open && r.exists && digestOf[r.version] == a.configDigest;
        try bonus.settleWeek(id, week) returns (address beneficiary) {
            if (!expected) _violation("week settled without a round under the pinned config");
            address due = r.answer == 0 ? a.contractor : a.payer;
            if (beneficiary != due) _violation("week paid to the wrong party");
            bonusOwed[due] += a.amountPerWeek;
            weeksPaid += 1;
        } catch {
            if (expected) _violation("week settlement refused");
        }
    }

    function refundWeek(uint256 agreementSeed, uint256 weekSeed) external {
        if (_agreements.length == 0) return;
        uint256 id = 1 + agreementSeed % _agreements.length;
        GhostAgreement memory a = _agreements[id - 1];
        uint64 week = _week(id, weekSeed);
        GhostRound memory r = _rounds[week];
        bool open = week <= a.lastWeek && !bonus.weekSettled(id, week);
        bool reported = r.exists && digestOf[r.version] == a.configDigest;
        bool expected = open && block.timestamp > a.refundAfter && !reported;
        try bonus.refundWeek(id, week) {
            if (!expected) _violation("week refunded against the model");
            bonusOwed[a.payer] += a.amountPerWeek;
            weeksRefunded += 1;
        } catch {
            if (expected) _violation("week refund refused");
        }
    }

    // --- money out, money forced in -------------------------------------------------------

    function withdraw(uint256 actorSeed, bool fromBonus) external {
        address who = actorSeed % 8 == 0 ? address(this) : _actor(actorSeed);
        uint256 owed = fromBonus ? bonusOwed[who] : escrowOwed[who];
        uint256 before = who.balance;
        if (who != address(this)) vm.prank(who);
        try (fromBonus ? bonus.withdraw : escrow.withdraw)() returns (uint256 paid) {
            if (paid != owed || who.balance != before + owed) _violation("withdrawal amount");
            if (fromBonus) bonusOwed[who] = 0;
            else escrowOwed[who] = 0;
        } catch {
            if (owed != 0) _violation("withdrawal refused");
        }
    }

    /// @dev Ether that arrives without a deposit (selfdestruct, coinbase).
    function forceEther(uint256 amountSeed, bool intoBonus) external {
        uint256 amount = bound(amountSeed, 1, 1 ether);
        address target = intoBonus ? address(bonus) : address(escrow);
        vm.deal(target, target.balance + amount);
        if (intoBonus) bonusForced += amount;
        else escrowForced += amount;
    }

    function sweep(bool fromBonus) external {
        uint256 forced = fromBonus ? bonusForced : escrowForced;
        try (fromBonus ? bonus.sweepSurplus : escrow.sweepSurplus)() returns (uint256 amount) {
            if (amount != forced) _violation("swept more than the surplus");
            if (fromBonus) {
                bonusOwed[address(this)] += amount;
                bonusForced = 0;
            } else {
                escrowOwed[address(this)] += amount;
                escrowForced = 0;
            }
        } catch {
            if (forced != 0) _violation("sweep refused");
        }
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 2 days));
        vm.roll(block.number + 1);
    }
}

contract SettlementInvariantTest is InvariantBase {
    SettlementHandler internal handler;
    OracleFeeds internal feeds;
    ParametricEscrow internal escrow;
    PerformanceBonus internal bonus;

    function setUp() public {
        vm.warp(1_700_000_000);
        handler = new SettlementHandler();
        feeds = handler.feeds();
        escrow = handler.escrow();
        bonus = handler.bonus();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](21);
        s[0] = SettlementHandler.transmit.selector;
        s[1] = SettlementHandler.proposeConfig.selector;
        s[2] = SettlementHandler.createPool.selector;
        s[3] = SettlementHandler.createPolicy.selector;
        s[4] = SettlementHandler.settle.selector;
        s[5] = SettlementHandler.expire.selector;
        s[6] = SettlementHandler.reclaim.selector;
        s[7] = SettlementHandler.createAgreement.selector;
        s[8] = SettlementHandler.settleWeek.selector;
        s[9] = SettlementHandler.refundWeek.selector;
        s[10] = SettlementHandler.withdraw.selector;
        s[11] = SettlementHandler.forceEther.selector;
        s[12] = SettlementHandler.sweep.selector;
        s[13] = SettlementHandler.warp.selector;
        s[14] = SettlementHandler.transmit.selector;
        s[15] = SettlementHandler.transmit.selector;
        s[16] = SettlementHandler.settle.selector;
        s[17] = SettlementHandler.settleWeek.selector;
        s[18] = SettlementHandler.createPolicy.selector;
        s[19] = SettlementHandler.withdraw.selector;
        s[20] = SettlementHandler.transmitTampered.selector;
        targetSelector(address(handler), s);
    }

    /// @notice Nothing was accepted, paid or refunded that the model refuses, and nothing
    ///         refused that it accepts.
    function invariant_modelAgrees() public view {
        if (handler.violations() != 0) revert AssertionFailed(handler.lastViolation());
    }

    /// @notice No policy pays unless a report under its pinned configuration met its trigger
    ///         inside its window: every triggered policy names such a round (checked on the
    ///         model's record of what the honest or rogue oracles signed).
    function invariant_noPolicyPaysWithoutItsReport() public view {
        uint256 n = handler.policyCount();
        for (uint256 id = 1; id <= n; ++id) {
            ParametricEscrow.Policy memory p = escrow.getPolicy(id);
            if (p.status != ParametricEscrow.Status.Triggered) continue;
            check(handler.roundPays(handler.policy(id - 1), p.settledEpoch), "policy paid");
        }
    }

    /// @notice Every accepted round is the one its signers signed, under the configuration
    ///         in force when it was sent.
    function invariant_roundsAreTheSignedOnes() public view {
        uint256 n = handler.epochCount();
        for (uint256 i = 0; i < n; ++i) {
            uint64 epoch = handler.epochs(i);
            SettlementHandler.GhostRound memory g = handler.round(epoch);
            OracleFeeds.Round memory r = feeds.getRound(handler.feedId(), epoch);
            check(r.answer == g.answer && r.configVersion == g.version, "round");
        }
        checkEq(feeds.latestEpoch(handler.feedId()), handler.latestEpoch(), "latest epoch");
    }

    /// @notice The escrow's books balance: deposited == paid + claimable + remaining; the
    ///         balance is claimable + remaining + forced-in ether not yet swept; remaining is
    ///         the sum of the pools; reserved is the sum of the active policies' payouts; and
    ///         claimable is what the model owes each account.
    function invariant_escrowBooksBalance() public view {
        (uint256 deposited, uint256 paid, uint256 claimable, uint256 remaining) = escrow.totals();
        checkEq(deposited, paid + claimable + remaining, "escrow deposited");
        checkEq(
            address(escrow).balance,
            claimable + remaining + handler.escrowForced(),
            "escrow balance"
        );
        uint256 pooled = 0;
        uint256 reserved = 0;
        for (uint256 i = 0; i < handler.poolCount(); ++i) {
            ParametricEscrow.Pool memory pool = escrow.getPool(handler.pools(i));
            pooled += pool.free + pool.reserved;
            reserved += pool.reserved;
        }
        checkEq(pooled, remaining, "escrow pools");
        uint256 active = 0;
        for (uint256 id = 1; id <= handler.policyCount(); ++id) {
            ParametricEscrow.Policy memory p = escrow.getPolicy(id);
            if (p.status == ParametricEscrow.Status.Active) active += p.payout;
        }
        checkEq(reserved, active, "escrow reserved");
        uint256 owed = handler.escrowOwed(address(handler));
        for (uint256 k = 0; k < 4; ++k) {
            address who = vm.addr(31 + k);
            checkEq(escrow.claimable(who), handler.escrowOwed(who), "escrow claimable");
            owed += handler.escrowOwed(who);
        }
        checkEq(claimable, owed, "escrow total claimable");
    }

    /// @notice The bonus's books balance the same way; remaining is the sum of the
    ///         agreements' unsettled weeks.
    function invariant_bonusBooksBalance() public view {
        (uint256 deposited, uint256 paid, uint256 claimable, uint256 remaining) = bonus.totals();
        checkEq(deposited, paid + claimable + remaining, "bonus deposited");
        checkEq(
            address(bonus).balance, claimable + remaining + handler.bonusForced(), "bonus balance"
        );
        uint256 sum = 0;
        for (uint256 id = 1; id <= handler.agreementCount(); ++id) {
            sum += bonus.getAgreement(id).remaining;
        }
        checkEq(sum, remaining, "bonus remaining");
        uint256 owed = handler.bonusOwed(address(handler));
        for (uint256 k = 0; k < 4; ++k) {
            address who = vm.addr(31 + k);
            checkEq(bonus.claimable(who), handler.bonusOwed(who), "bonus claimable");
            owed += handler.bonusOwed(who);
        }
        checkEq(claimable, owed, "bonus total claimable");
    }
}

/// @notice Fuzz tests of OracleFeeds' report signatures.
contract OracleSignatureFuzzTest is Cheats {
    OracleFeeds internal feeds;
    OracleFeeds internal other;
    bytes32 internal feedId;
    address[] internal oracles;
    uint256[] internal keys;

    function setUp() public {
        vm.warp(1_700_000_000);
        feeds = new OracleFeeds(1 hours);
        other = new OracleFeeds(1 hours);
        keys = [uint256(11), 12, 13, 14];
        for (uint256 i = 1; i < 4; ++i) {
            uint256 key = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(key)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = key;
        }
        for (uint256 i = 0; i < 4; ++i) {
            oracles.push(vm.addr(keys[i]));
        }
        address[] memory transmitters = new address[](1);
        transmitters[0] = address(this);
        feedId = feeds.createFeed("f", oracles, transmitters, 1, 0, 100, 1 days);
        other.createFeed("f", oracles, transmitters, 1, 0, 100, 1 days);
    }

    function _report(int256 value) internal view returns (OracleFeeds.Report memory r) {
        int256[] memory obs = new int256[](3);
        obs[0] = value;
        obs[1] = value;
        obs[2] = value;
        r = OracleFeeds.Report(
            feedId,
            feeds.configDigestAt(feedId, 1),
            1,
            obs,
            hex"000102",
            bytes32(0),
            bytes32(0),
            uint64(block.timestamp)
        );
    }

    /// @dev The values of the feed's configuration.
    function _params() internal pure returns (OracleFeeds.ConfigParams memory) {
        return OracleFeeds.ConfigParams(1, 0, 100, 1 days);
    }

    /// @dev Each observation of `r` signed by its observer (for `feeds`).
    function _obs(OracleFeeds.Report memory r) internal view returns (bytes memory sigs) {
        for (uint256 i = 0; i < r.observations.length; ++i) {
            bytes32 digest = feeds.observationDigest(r, r.observations[i]);
            sigs = bytes.concat(sigs, signature(keys[uint8(r.observers[i])], digest));
        }
    }

    function _key(uint256 seed) internal pure returns (uint256) {
        return bound(seed, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
    }

    /// @notice A report co-signed by any key outside the oracle set is refused.
    function testFuzz_outsiderSignature(uint256 keySeed, int256 value) public {
        uint256 key = _key(keySeed);
        vm.assume(key < 11 || key > 14);
        OracleFeeds.Report memory r = _report(int256(bound(uint256(value), 0, 100)));
        bytes memory observed = _obs(r);
        bytes32 digest = feeds.reportDigest(r);
        (uint256 a, uint256 b) = (keys[0], key);
        if (vm.addr(b) < vm.addr(a)) (a, b) = (b, a);
        bytes memory sigs = bytes.concat(signature(a, digest), signature(b, digest));
        vm.expectRevert(abi.encodeWithSelector(OracleFeeds.NotAnOracle.selector, vm.addr(key)));
        feeds.transmit(r, oracles, _params(), sigs, observed);
    }

    /// @notice The same signature twice, a malleated copy, or signatures made for another
    ///         OracleFeeds contract do not make f+1 signers; the honest pair does.
    function testFuzz_duplicateMalleatedReplayed(uint256 valueSeed) public {
        OracleFeeds.Report memory r = _report(int256(bound(valueSeed, 0, 100)));
        bytes memory observed = _obs(r);
        bytes32 digest = feeds.reportDigest(r);
        bytes memory first = signature(keys[0], digest);
        bytes memory second = signature(keys[1], digest);
        vm.expectRevert();
        feeds.transmit(r, oracles, _params(), bytes.concat(first, first), observed);
        vm.expectRevert();
        feeds.transmit(r, oracles, _params(), bytes.concat(first, malleate(second)), observed);
        r.configDigest = other.configDigestAt(feedId, 1);
        bytes32 elsewhere = other.reportDigest(r);
        bytes memory replayed =
            bytes.concat(signature(keys[0], elsewhere), signature(keys[1], elsewhere));
        r.configDigest = feeds.configDigestAt(feedId, 1);
        vm.expectRevert();
        feeds.transmit(r, oracles, _params(), replayed, observed);
        feeds.transmit(r, oracles, _params(), bytes.concat(first, second), observed);
        check(feeds.latestEpoch(feedId) == 1, "honest report accepted");
    }

    /// @notice An observation signed by any key but its observer's is refused (f+1 report
    ///         signers cannot attribute a value to an oracle that did not sign it).
    function testFuzz_observationSignedByAnother(uint256 keySeed, uint256 valueSeed, uint256 which)
        public
    {
        uint256 key = _key(keySeed);
        OracleFeeds.Report memory r = _report(int256(bound(valueSeed, 0, 100)));
        uint256 at = which % 3;
        uint256 observer = keys[uint8(r.observers[at])];
        vm.assume(key != observer);
        bytes memory observed = _obs(r);
        bytes memory forged = signature(key, feeds.observationDigest(r, r.observations[at]));
        for (uint256 k = 0; k < 65; ++k) {
            observed[65 * at + k] = forged[k];
        }
        bytes32 digest = feeds.reportDigest(r);
        bytes memory sigs = bytes.concat(signature(keys[0], digest), signature(keys[1], digest));
        vm.expectRevert(
            abi.encodeWithSelector(
                OracleFeeds.ObservationNotSigned.selector, at, vm.addr(observer), vm.addr(key)
            )
        );
        feeds.transmit(r, oracles, _params(), sigs, observed);
    }

    /// @notice Only a configured transmitter may send even a well-signed report.
    function testFuzz_onlyTransmitters(address sender, uint256 valueSeed) public {
        vm.assume(sender != address(this));
        OracleFeeds.Report memory r = _report(int256(bound(valueSeed, 0, 100)));
        bytes memory observed = _obs(r);
        bytes32 digest = feeds.reportDigest(r);
        bytes memory sigs = bytes.concat(signature(keys[0], digest), signature(keys[1], digest));
        vm.prank(sender);
        vm.expectRevert(abi.encodeWithSelector(OracleFeeds.NotATransmitter.selector, sender));
        feeds.transmit(r, oracles, _params(), sigs, observed);
    }

    /// @notice A well-signed report sent with a signer list or values other than the
    ///         configuration's (a signer replaced, dropped, added or moved; f, a bound or the
    ///         maximum age changed) is refused with ConfigMismatch; with the configuration's own
    ///         it is accepted.
    function testFuzz_configMustMatchCommitment(
        uint256 which,
        uint256 delta,
        address outsider,
        uint256 valueSeed
    ) public {
        OracleFeeds.Report memory r = _report(int256(bound(valueSeed, 0, 100)));
        bytes memory observed = _obs(r);
        bytes32 digest = feeds.reportDigest(r);
        bytes memory sigs = bytes.concat(signature(keys[0], digest), signature(keys[1], digest));
        address[] memory signers = oracles;
        OracleFeeds.ConfigParams memory p = _params();
        uint256 at = (which / 8) % 4;
        uint256 d = bound(delta, 1, type(uint32).max - 1 days);
        uint256 kind = which % 8;
        if (kind == 0) {
            vm.assume(outsider != signers[at]);
            signers[at] = outsider;
        } else if (kind == 1) {
            address[] memory shorter = new address[](3);
            for (uint256 i = 0; i < 3; ++i) {
                shorter[i] = signers[i < at ? i : i + 1];
            }
            signers = shorter;
        } else if (kind == 2) {
            address[] memory longer = new address[](5);
            for (uint256 i = 0; i < 5; ++i) {
                longer[i] = i < at ? signers[i] : i == at ? outsider : signers[i - 1];
            }
            signers = longer;
        } else if (kind == 3) {
            (signers[at], signers[(at + 1) % 4]) = (signers[(at + 1) % 4], signers[at]);
        } else if (kind == 4) {
            p.f = uint8(bound(delta, 0, 254)); // 0, 2, ..., 255
            if (p.f != 0) p.f += 1;
        } else if (kind == 5) {
            p.minAnswer = -int256(d);
        } else if (kind == 6) {
            p.maxAnswer = 100 + int256(d);
        } else {
            p.maxAge = uint32(d % 2 == 0 ? 1 days + d : d % 1 days);
        }
        vm.expectRevert(
            abi.encodeWithSelector(OracleFeeds.ConfigMismatch.selector, feedId, uint32(1))
        );
        feeds.transmit(r, signers, p, sigs, observed);
        feeds.transmit(r, oracles, _params(), sigs, observed);
        check(feeds.latestEpoch(feedId) == 1, "report accepted with its configuration");
    }
}
