// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumToken} from "../../contracts/ConsortiumToken.sol";
import {LabelingMarket} from "../../contracts/LabelingMarket.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one LabelingMarket (registered market and judge of its StakeManager) with
///         three labelers staked in the consortium token: tasks of 4 items with 2 gold items
///         (the handler is the requester), joins with committed labels (each item right,
///         wrong or abstained), reveals (or not: late), gold reveals (or not), scoring,
///         settlements (time moves as each step needs) and claims. At each settlement the
///         handler measures what the pool became: the rise in everything owed must be the pool.
contract LabelingHandler is Cheats {
    LabelingMarket public immutable market;
    StakeManager public immutable sm;
    ConsortiumToken public immutable token;
    address public constant TREASURY = address(0x7EA5);
    uint64 public constant DELAY = 1 days;
    uint256 public constant MIN_STAKE = 1e18;
    uint32 internal constant ITEMS = 4;
    uint32 internal constant GOLD = 2;
    bytes1 internal constant GOLD0 = 0x03; // item 0's gold label
    bytes1 internal constant GOLD1 = 0x05; // item 1's gold label

    address[3] public actors = [address(0xA11CE), address(0xB0B), address(0xCA401)];
    uint256[] public tasks;
    mapping(uint256 taskId => mapping(address => bytes)) internal _labels;
    mapping(uint256 taskId => mapping(address => bytes32)) internal _salts;
    mapping(uint256 taskId => bool) public settledByUs;
    uint256 public pooled; // every pool escrowed
    uint256 public openPools; // pools of unsettled tasks
    uint256 public distributed; // the rise of everything owed, over all settlements
    uint256 public sentOut; // claimed out of the market
    uint256 public stakeSentIn;
    uint256 public disagreements;

    constructor() {
        token = new ConsortiumToken("Consortium", "CON", address(this), 1e30);
        sm = new StakeManager(address(this), TREASURY, DELAY, DELAY);
        market = new LabelingMarket(sm);
        sm.proposeJudge(address(market), 5_000);
        sm.proposeMarket(address(market));
        vm.warp(block.timestamp + DELAY);
        token.approve(address(market), type(uint256).max);
        for (uint256 i = 0; i < 3; i++) {
            token.transfer(actors[i], 1e24);
            vm.startPrank(actors[i]);
            token.approve(address(sm), type(uint256).max);
            sm.deposit(address(token), 1e21);
            vm.stopPrank();
            stakeSentIn += 1e21;
        }
    }

    function taskCount() external view returns (uint256) {
        return tasks.length;
    }

    function _goldRecords() internal pure returns (bytes memory) {
        return abi.encodePacked(uint32(0), GOLD0, uint32(1), GOLD1);
    }

    function _leaf(uint256 i) internal pure returns (bytes32) {
        bytes5 record = bytes5(abi.encodePacked(uint32(i), i == 0 ? GOLD0 : GOLD1));
        return sha256(abi.encodePacked(bytes1(0x00), bytes32(i + 1), record));
    }

    function _goldRoot() internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), _leaf(0), _leaf(1)));
    }

    function _task(uint256 seed) internal view returns (uint256 id, LabelingMarket.Task memory t) {
        id = tasks[seed % tasks.length];
        t = market.taskOf(id);
    }

    function createTask(uint256 pool, uint16 thresholdBps) external {
        pool = bound(pool, 1, 1e21);
        uint64 t = uint64(block.timestamp);
        LabelingMarket.TaskParams memory p = LabelingMarket.TaskParams({
            token: address(token),
            batchRoot: keccak256("batch"),
            itemCount: ITEMS,
            goldRoot: _goldRoot(),
            goldCount: GOLD,
            pool: pool,
            minStake: MIN_STAKE,
            thresholdBps: uint16(bound(thresholdBps, 0, 10_000)),
            commitDeadline: t + 1 hours,
            revealDeadline: t + 2 hours,
            goldDeadline: t + 3 hours
        });
        tasks.push(market.createTask(p));
        pooled += pool;
        openPools += pool;
    }

    function join(uint256 taskSeed, uint256 who, uint256 answers) external {
        if (tasks.length == 0) return;
        (uint256 id, LabelingMarket.Task memory t) = _task(taskSeed);
        address actor = actors[who % 3];
        bytes memory labels = new bytes(ITEMS);
        for (uint256 i = 0; i < ITEMS; i++) {
            uint256 pick = (answers >> (2 * i)) % 3; // right, wrong or abstain
            bytes1 right = i == 0 ? GOLD0 : i == 1 ? GOLD1 : bytes1(0x01);
            labels[i] = pick == 0 ? right : pick == 1 ? bytes1(0x09) : bytes1(0xff);
        }
        bytes32 commitment = market.commitmentOf(id, actor, keccak256(labels), bytes32(who));
        bool expected = block.timestamp <= t.commitDeadline && !market.workOf(id, actor).joined
            && market.labelersOf(id).length < market.MAX_LABELERS() && !t.settled;
        vm.prank(actor);
        try market.join(id, commitment) {
            if (!expected) disagreements++;
            _labels[id][actor] = labels;
            _salts[id][actor] = bytes32(who);
        } catch {
            if (expected) disagreements++;
        }
    }

    function reveal(uint256 taskSeed, uint256 who) external {
        if (tasks.length == 0) return;
        (uint256 id, LabelingMarket.Task memory t) = _task(taskSeed);
        address actor = actors[who % 3];
        if (block.timestamp <= t.commitDeadline) vm.warp(t.commitDeadline + 1);
        LabelingMarket.Labeler memory w = market.workOf(id, actor);
        bool expected = w.joined && !w.revealed && block.timestamp <= t.revealDeadline;
        vm.prank(actor);
        try market.reveal(id, _labels[id][actor], _salts[id][actor]) {
            if (!expected) disagreements++;
        } catch {
            if (expected) disagreements++;
        }
    }

    function revealGold(uint256 taskSeed) external {
        if (tasks.length == 0) return;
        (uint256 id, LabelingMarket.Task memory t) = _task(taskSeed);
        if (block.timestamp <= t.revealDeadline) vm.warp(t.revealDeadline + 1);
        bytes32[] memory salts = new bytes32[](2);
        salts[0] = bytes32(uint256(1));
        salts[1] = bytes32(uint256(2));
        bytes32[][] memory proofs = new bytes32[][](2);
        proofs[0] = new bytes32[](1);
        proofs[0][0] = _leaf(1);
        proofs[1] = new bytes32[](1);
        proofs[1][0] = _leaf(0);
        bool expected = !t.goldRevealed && block.timestamp <= t.goldDeadline;
        try market.revealGold(id, salts, _goldRecords(), proofs) {
            if (!expected) disagreements++;
        } catch {
            if (expected) disagreements++;
        }
    }

    function settle(uint256 taskSeed) external {
        if (tasks.length == 0) return;
        (uint256 id, LabelingMarket.Task memory t) = _task(taskSeed);
        if (t.settled) return;
        uint64 due = t.goldRevealed ? t.revealDeadline : t.goldDeadline;
        if (block.timestamp <= due) vm.warp(due + 1);
        address[] memory all = market.labelersOf(id);
        if (t.goldRevealed) _scoreAll(id, all);
        uint256 before = _owedSum(all);
        market.settle(id); // must not revert: every revealed labeler is scored
        uint256 rise = _owedSum(all) - before;
        if (rise != t.pool) disagreements++;
        distributed += rise;
        openPools -= t.pool;
        settledByUs[id] = true;
        for (uint256 i = 0; i < all.length; i++) {
            if (sm.lockedBy(all[i], address(token), address(market)) % MIN_STAKE != 0) {
                disagreements++;
            }
        }
    }

    function _scoreAll(uint256 id, address[] memory all) internal {
        uint256 n;
        for (uint256 i = 0; i < all.length; i++) {
            if (market.workOf(id, all[i]).revealed) n++;
        }
        address[] memory who = new address[](n);
        bytes[] memory labels = new bytes[](n);
        n = 0;
        for (uint256 i = 0; i < all.length; i++) {
            if (!market.workOf(id, all[i]).revealed) continue;
            who[n] = all[i];
            labels[n++] = _labels[id][all[i]];
        }
        market.score(id, who, labels, _goldRecords());
    }

    function _owedSum(address[] memory all) internal view returns (uint256 sum) {
        sum = market.owed(address(this), address(token));
        for (uint256 i = 0; i < all.length; i++) {
            sum += market.owed(all[i], address(token));
        }
    }

    function claim(uint256 who) external {
        address account = who % 4 == 3 ? address(this) : actors[who % 4];
        uint256 owed = market.owed(account, address(token));
        vm.prank(account);
        try market.claim(address(token), account) returns (uint256 amount) {
            if (owed == 0 || amount != owed) disagreements++;
            sentOut += amount;
        } catch {
            if (owed != 0) disagreements++;
        }
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 4 hours));
    }
}

contract LabelingMarketInvariantTest is InvariantBase {
    LabelingHandler internal handler;
    LabelingMarket internal market;
    StakeManager internal sm;
    ConsortiumToken internal token;

    function setUp() public {
        vm.warp(1_700_000_000);
        handler = new LabelingHandler();
        market = handler.market();
        sm = handler.sm();
        token = handler.token();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](10);
        s[0] = LabelingHandler.createTask.selector;
        s[1] = LabelingHandler.join.selector;
        s[2] = LabelingHandler.join.selector;
        s[3] = LabelingHandler.reveal.selector;
        s[4] = LabelingHandler.reveal.selector;
        s[5] = LabelingHandler.revealGold.selector;
        s[6] = LabelingHandler.settle.selector;
        s[7] = LabelingHandler.claim.selector;
        s[8] = LabelingHandler.warp.selector;
        s[9] = LabelingHandler.createTask.selector;
        targetSelector(address(handler), s);
    }

    /// @notice Every settled pool became owed in full (rewards + the requester's remainder ==
    ///         pool), and the market's books: escrowed == open pools, escrowed + owed + claimed
    ///         == every pool, and it holds escrowed + owed.
    /// forge-config: ci.invariant.runs = 32
    function invariant_poolsConserved() public view {
        address t = address(token);
        checkEq(handler.distributed() + handler.openPools(), handler.pooled(), "pools");
        checkEq(market.escrowed(t), handler.openPools(), "escrowed == open pools");
        checkEq(
            market.escrowed(t) + market.totalOwed(t) + market.claimed(t),
            handler.pooled(),
            "escrowed + owed + claimed == pools"
        );
        checkEq(market.claimed(t), handler.sentOut(), "claimed");
        checkEq(token.balanceOf(address(market)), market.escrowed(t) + market.totalOwed(t), "held");
    }

    /// @notice The StakeManager's books: per labeler deposited == free + locked + unbonding +
    ///         slashed + withdrawn, its lock here is minStake per open task it joined, and the
    ///         manager holds staked + owed.
    /// forge-config: ci.invariant.runs = 32
    function invariant_stakeBooks() public view {
        address t = address(token);
        uint256 staked;
        for (uint256 i = 0; i < 3; i++) {
            address actor = handler.actors(i);
            StakeManager.Stake memory s = sm.stakeOf(actor, t);
            checkEq(s.deposited, s.free + s.locked + s.unbonding + s.slashed + s.withdrawn, "books");
            uint256 open;
            for (uint256 k = 0; k < handler.taskCount(); k++) {
                uint256 id = handler.tasks(k);
                if (!market.taskOf(id).settled && market.workOf(id, actor).joined) open++;
            }
            checkEq(sm.lockedBy(actor, t, address(market)), open * handler.MIN_STAKE(), "locks");
            checkEq(s.locked, open * handler.MIN_STAKE(), "locked");
            staked += s.free + s.locked + s.unbonding;
        }
        StakeManager.Totals memory totals = sm.totalsOf(t);
        checkEq(totals.staked, staked, "staked in sum");
        checkEq(totals.deposited, handler.stakeSentIn(), "deposited");
        checkEq(totals.deposited, totals.staked + totals.slashed + totals.withdrawn, "asset books");
        checkEq(totals.slashed, totals.owed + totals.claimed, "slashed == owed + claimed");
        checkEq(token.balanceOf(address(sm)), totals.staked + totals.owed, "manager holds");
    }

    /// @notice Every call succeeded exactly when the handler expected it to.
    /// forge-config: ci.invariant.runs = 32
    function invariant_modelAgrees() public view {
        checkEq(handler.disagreements(), 0, "disagreements");
    }
}
