// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumToken} from "../../contracts/ConsortiumToken.sol";
import {FLRewards} from "../../contracts/FLRewards.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {IStakeManagerForVouching} from "../../contracts/lib/IStakeManagerForVouching.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one FLRewards (registered market and judge of its StakeManager) over tasks
///         with ether pools, four clients staked in the consortium token, an aggregator key and
///         three verifier keys (threshold 2): task creation, acceptance, joins, round records
///         whose payout trees hold fuzzed amounts (sometimes more than the posted total, which
///         a lying aggregator may do), claims with real proofs (and replays of them), verifier
///         corrections, penalty slashes, finishes, leaves and time. A ghost model tracks what
///         was funded, refunded and paid, and every successful claim per (task, round, client).
contract FLHandler is Cheats {
    FLRewards public immutable rewards;
    StakeManager public immutable sm;
    ConsortiumToken public immutable token;
    address public constant TREASURY = address(0x7EA5);
    address public constant AGGREGATOR = address(0xA66);
    uint256 internal constant AGG_PK = 0xA66A66;
    uint256[3] internal verifierPks = [uint256(0x7E1), uint256(0x7E2), uint256(0x7E3)];
    uint64 public constant DELAY = 1 days;
    uint64 public constant WINDOW = 1 hours;
    uint256 public constant BUDGET = 1e18;
    uint32 public constant ROUNDS = 4;
    uint256 public constant STAKE = 1e18;
    uint256 public constant BOND = 5e18;
    bytes32 public constant HELDOUT = keccak256("held-out");

    address[4] public clients = [address(0xC1), address(0xC2), address(0xC3), address(0xC4)];
    bytes32[] public tasks;
    // a round's payout amounts, by (task, round), as posted (or corrected)
    mapping(bytes32 => mapping(uint32 => uint256[4])) internal _amounts;

    // ghost books
    uint256 public funded;
    uint256 public refunded;
    uint256 public paidOut;
    uint256 public doublePaid;
    uint256 public claims; // successful ones, with the corrections and slashes below
    uint256 public corrections;
    uint256 public slashes;
    mapping(bytes32 => uint256) public paidByTask;
    mapping(bytes32 => mapping(uint32 => mapping(address => uint256))) public timesPaid;

    constructor() {
        token = new ConsortiumToken("Consortium", "CON", address(this), 1e30);
        sm = new StakeManager(address(this), TREASURY, DELAY, DELAY);
        rewards = new FLRewards(IStakeManagerForVouching(address(sm)));
        sm.proposeJudge(address(rewards), 5_000);
        sm.proposeMarket(address(rewards));
        vm.warp(block.timestamp + DELAY);
        address[5] memory stakers = [clients[0], clients[1], clients[2], clients[3], AGGREGATOR];
        for (uint256 i = 0; i < 5; i++) {
            token.transfer(stakers[i], 1e24);
            vm.startPrank(stakers[i]);
            token.approve(address(sm), type(uint256).max);
            sm.deposit(address(token), i == 4 ? 100 * BOND : 10 * STAKE);
            vm.stopPrank();
        }
        vm.deal(address(this), 1e30);
    }

    receive() external payable {}

    // ---------------------------------------------------------------- trees (4 leaves)

    function _leaf(address c, uint256 amount) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), c, amount));
    }

    /// @dev The one-leaf penalty tree of a round: `c` loses STAKE for reason 1.
    function _penaltyLeaf(address c) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), c, STAKE, uint32(1)));
    }

    function _node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    function _leaves(uint256[4] memory a) internal view returns (bytes32[4] memory h) {
        for (uint256 i = 0; i < 4; i++) {
            h[i] = _leaf(clients[i], a[i]);
        }
    }

    function _root(uint256[4] memory a) internal view returns (bytes32) {
        bytes32[4] memory h = _leaves(a);
        return _node(_node(h[0], h[1]), _node(h[2], h[3]));
    }

    function _proof(uint256[4] memory a, uint256 i) internal view returns (bytes32[] memory p) {
        bytes32[4] memory h = _leaves(a);
        p = new bytes32[](2);
        p[0] = h[i ^ 1];
        p[1] = i < 2 ? _node(h[2], h[3]) : _node(h[0], h[1]);
    }

    function _amountsOf(uint256 seed) internal pure returns (uint256[4] memory a) {
        for (uint256 i = 0; i < 4; i++) {
            a[i] = uint256(keccak256(abi.encode(seed, i))) % (BUDGET / 2);
        }
    }

    function _task(uint256 seed) internal view returns (bytes32) {
        return tasks[seed % tasks.length];
    }

    /// @dev One of the task's posted rounds (0: none yet).
    function _postedRound(bytes32 id, uint32 seed) internal view returns (uint32) {
        uint32 last = rewards.getTask(id).lastRound;
        return last == 0 ? 0 : 1 + seed % last;
    }

    // ---------------------------------------------------------------- actions

    function createTask() external {
        if (tasks.length >= 3) return;
        address[] memory vs = new address[](3);
        for (uint256 i = 0; i < 3; i++) {
            vs[i] = vm.addr(verifierPks[i]);
        }
        FLRewards.Terms memory t = FLRewards.Terms({
            aggregator: AGGREGATOR,
            asset: address(0),
            stakeAsset: address(token),
            roundBudget: BUDGET,
            stakePerClient: STAKE,
            aggregatorBond: BOND,
            heldoutRoot: HELDOUT,
            initialModel: bytes32(uint256(1)),
            deadline: uint64(block.timestamp + 3 days),
            challengeWindow: WINDOW,
            rounds: ROUNDS,
            toleranceE6: 1_000,
            threshold: 2
        });
        bytes32 id = rewards.createTask{value: BUDGET * ROUNDS}(t, vs);
        funded += BUDGET * ROUNDS;
        tasks.push(id);
        address signer = vm.addr(AGG_PK);
        vm.prank(AGGREGATOR);
        rewards.acceptTask(id, signer);
    }

    function join(uint256 taskSeed, uint256 who) external {
        if (tasks.length == 0) return;
        vm.prank(clients[who % 4]);
        try rewards.join(_task(taskSeed), keccak256(abi.encode(who % 4))) {} catch {}
    }

    function postRound(uint256 taskSeed, uint256 amountSeed, bool lie) external {
        if (tasks.length == 0) return;
        bytes32 id = _task(taskSeed);
        FLRewards.Task memory k = rewards.getTask(id);
        if (k.status != FLRewards.Status.Active || k.lastRound == ROUNDS) return;
        if (block.timestamp > k.terms.deadline) return;
        uint256[4] memory a = _amountsOf(amountSeed);
        uint256 sum = a[0] + a[1] + a[2] + a[3];
        // a lying aggregator posts a total below what its tree holds
        uint256 total = lie ? sum / 2 : (sum > BUDGET ? BUDGET : sum);
        uint32 round = k.lastRound + 1;
        FLRewards.RoundRecord memory r = FLRewards.RoundRecord({
            taskId: id,
            round: round,
            modelBefore: k.model,
            modelAfter: keccak256(abi.encode(id, round)),
            heldoutRoot: HELDOUT,
            scoresRoot: keccak256("scores"),
            payoutRoot: _root(a),
            payoutCount: 4,
            payoutTotal: total,
            penaltyRoot: _penaltyLeaf(clients[amountSeed % 4]),
            penaltyCount: 1
        });
        bytes memory sig = signature(AGG_PK, rewards.roundRecordDigest(r));
        rewards.postRound(r, sig);
        _amounts[id][round] = a;
    }

    function claim(uint256 taskSeed, uint32 round, uint256 who) external {
        if (tasks.length == 0) return;
        bytes32 id = _task(taskSeed);
        round = _postedRound(id, round);
        if (round == 0) return;
        uint256 i = who % 4;
        if (!rewards.getClient(id, clients[i]).joined) {
            vm.prank(clients[i]);
            try rewards.join(id, keccak256(abi.encode(i))) {} catch {}
        }
        FLRewards.Round memory x = rewards.getRound(id, round);
        if (block.timestamp <= x.postedAt + WINDOW) vm.warp(x.postedAt + WINDOW + 1);
        uint256[4] memory a = _amounts[id][round];
        uint256 before = clients[i].balance;
        bytes32[] memory proof = _proof(a, i); // before the prank: sha256 is a call
        vm.prank(clients[i]);
        try rewards.claim(id, round, a[i], uint64(i), proof) {
            uint256 got = clients[i].balance - before;
            paidOut += got;
            paidByTask[id] += got;
            if (++timesPaid[id][round][clients[i]] > 1) doublePaid += 1;
            claims += 1;
        } catch {}
    }

    function challenge(uint256 taskSeed, uint32 round, uint256 amountSeed, uint256 who)
        external
    {
        if (tasks.length == 0) return;
        bytes32 id = _task(taskSeed);
        round = _postedRound(id, round);
        if (round == 0) return;
        FLRewards.Round memory x = rewards.getRound(id, round);
        if (x.corrected || block.timestamp > x.postedAt + WINDOW) return;
        uint256[4] memory a = _amountsOf(amountSeed);
        FLRewards.Correction memory c = _correction(id, round, x, a, clients[who % 4]);
        bytes[] memory sigs = _verifierSigs(rewards.correctionDigest(c));
        vm.prank(c.challenger);
        try rewards.challenge(c, sigs) {
            _amounts[id][round] = a;
            corrections += 1;
        } catch {}
    }

    function _correction(
        bytes32 id,
        uint32 round,
        FLRewards.Round memory x,
        uint256[4] memory a,
        address challenger
    ) internal view returns (FLRewards.Correction memory) {
        uint256 sum = a[0] + a[1] + a[2] + a[3];
        return FLRewards.Correction({
            taskId: id,
            round: round,
            recordDigest: x.recordDigest,
            scoresRoot: keccak256("fixed"),
            payoutRoot: _root(a),
            payoutCount: 4,
            payoutTotal: sum > BUDGET ? BUDGET : sum,
            penaltyRoot: x.penaltyRoot,
            penaltyCount: x.penaltyCount,
            challenger: challenger
        });
    }

    /// @dev Two verifiers' signatures of `digest`, ordered by signer address.
    function _verifierSigs(bytes32 digest) internal view returns (bytes[] memory sigs) {
        (uint256 lo, uint256 hi) =
            vm.addr(verifierPks[0]) < vm.addr(verifierPks[1]) ? (0, 1) : (1, 0);
        sigs = new bytes[](2);
        sigs[0] = signature(verifierPks[lo], digest);
        sigs[1] = signature(verifierPks[hi], digest);
    }

    function slash(uint256 taskSeed, uint32 round) external {
        if (tasks.length == 0) return;
        bytes32 id = _task(taskSeed);
        round = _postedRound(id, round);
        if (round == 0) return;
        FLRewards.Round memory x = rewards.getRound(id, round);
        if (block.timestamp <= x.postedAt + WINDOW) vm.warp(x.postedAt + WINDOW + 1);
        for (uint256 i = 0; i < 4; i++) {
            if (_penaltyLeaf(clients[i]) == x.penaltyRoot) {
                FLRewards.Penalty memory p = FLRewards.Penalty(clients[i], STAKE, 1);
                try rewards.slashPenalised(id, round, p, 0, new bytes32[](0)) {
                    slashes += 1;
                } catch {}
            }
        }
    }

    /// @dev Finishes a task when it is due; one call in four waits for it to be (a task
    ///      finished early would leave few rounds to claim).
    function finish(uint256 taskSeed, bool wait) external {
        if (tasks.length == 0) return;
        bytes32 id = _task(taskSeed);
        FLRewards.Task memory k = rewards.getTask(id);
        if (k.status != FLRewards.Status.Active && k.status != FLRewards.Status.Halted) return;
        uint64 at = rewards.finishableAt(id);
        if (block.timestamp <= at) {
            if (!wait || taskSeed % 2 == 0) return;
            vm.warp(at + 1);
        }
        rewards.finish(id);
    }

    function withdrawRefund() external {
        if (rewards.refundable(address(this), address(0)) == 0) return;
        uint256 before = address(this).balance;
        rewards.withdrawRefund(address(0), address(this));
        refunded += address(this).balance - before;
    }

    function leave(uint256 taskSeed, uint256 who) external {
        if (tasks.length == 0) return;
        vm.prank(clients[who % 4]);
        try rewards.leave(_task(taskSeed)) {} catch {}
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 2 hours));
        vm.roll(block.number + 1);
    }

    function taskCount() external view returns (uint256) {
        return tasks.length;
    }

    function clientAt(uint256 i) external view returns (address) {
        return clients[i];
    }
}

contract FLRewardsInvariantTest is InvariantBase {
    FLHandler internal handler;
    FLRewards internal rewards;
    StakeManager internal sm;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(100);
        handler = new FLHandler();
        rewards = handler.rewards();
        sm = handler.sm();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](12);
        s[0] = FLHandler.createTask.selector;
        s[1] = FLHandler.join.selector;
        s[2] = FLHandler.postRound.selector;
        s[3] = FLHandler.postRound.selector;
        s[4] = FLHandler.claim.selector;
        s[5] = FLHandler.claim.selector;
        s[6] = FLHandler.challenge.selector;
        s[7] = FLHandler.slash.selector;
        s[8] = FLHandler.finish.selector;
        s[9] = FLHandler.leave.selector;
        s[10] = FLHandler.warp.selector;
        s[11] = FLHandler.withdrawRefund.selector;
        targetSelector(address(handler), s);
    }

    /// @notice The handler is not vacuous: one scripted sequence reaches claims, a
    ///         correction, a slash, a finish and leaves, and the invariants hold after it.
    function test_handlerReachesEveryPath() public {
        handler.createTask();
        for (uint256 i = 0; i < 4; i++) {
            handler.join(0, i);
        }
        handler.postRound(0, 7, false);
        handler.postRound(0, 8, false);
        handler.postRound(0, 10, true); // round 3: a tree holding twice its total
        handler.challenge(0, 4, 9, 1); // 1 + 4 % 3: round 2 (the task halts)
        for (uint256 i = 0; i < 4; i++) {
            handler.claim(0, 0, i); // round 1 (1 + 0 % 3)
            handler.claim(0, 0, i); // a replay: refused
            handler.claim(0, 1, i); // round 2
            handler.claim(0, 2, i); // round 3: claims stop at its total
        }
        handler.slash(0, 0);
        handler.finish(1, true); // tasks(1 % 1): the only task, waited for
        handler.withdrawRefund();
        check(handler.refunded() > 0, "the sponsor withdrew its refund");
        for (uint256 i = 0; i < 4; i++) {
            handler.leave(0, i);
        }
        // (a round's claims stop at its total: some of these may be refused)
        check(handler.claims() >= 2, "claims were paid");
        check(rewards.getRound(handler.tasks(0), 1).claimed > 0, "round 1 paid");
        check(rewards.getRound(handler.tasks(0), 2).claimed > 0, "corrected round 2 paid");
        FLRewards.Round memory lying = rewards.getRound(handler.tasks(0), 3);
        check(lying.claimed > 0 && lying.claimed <= lying.payoutTotal, "round 3 capped");
        checkEq(handler.corrections(), 1, "one correction");
        checkEq(handler.slashes(), 1, "one slash");
        check(rewards.getTask(handler.tasks(0)).status == FLRewards.Status.Finished, "finished");
        invariant_poolCoversOutstandingClaims();
        invariant_paidNeverExceedsFunded();
        invariant_noClientPaidTwicePerRound();
        invariant_stakeBooks();
    }

    /// @notice The pool covers every outstanding claim: the contract's ether is exactly
    ///         funded - refunded - paid (the ghost's books), which is `held`, which is the
    ///         sum over tasks of what is reserved and unpaid plus the unreserved pools of
    ///         running tasks plus the refunds credited and not yet withdrawn.
    /// forge-config: ci.invariant.runs = 32
    function invariant_poolCoversOutstandingClaims() public view {
        uint256 expected = handler.funded() - handler.refunded() - handler.paidOut();
        checkEq(address(rewards).balance, expected, "balance == funded - refunded - paid");
        checkEq(rewards.held(address(0)), expected, "held == funded - refunded - paid");
        uint256 owed = rewards.refundable(address(handler), address(0));
        for (uint256 t = 0; t < handler.taskCount(); t++) {
            FLRewards.Task memory k = rewards.getTask(handler.tasks(t));
            owed += k.reserved - k.paid;
            if (k.status != FLRewards.Status.Finished) {
                owed += k.terms.roundBudget * k.terms.rounds - k.reserved;
            }
        }
        checkEq(address(rewards).balance, owed, "balance == outstanding claims + open pools");
    }

    /// @notice A task never pays more than it reserved nor reserves more than it was funded
    ///         with; a round never pays more than its total, nor its total exceed the budget.
    /// forge-config: ci.invariant.runs = 32
    function invariant_paidNeverExceedsFunded() public view {
        for (uint256 t = 0; t < handler.taskCount(); t++) {
            bytes32 id = handler.tasks(t);
            FLRewards.Task memory k = rewards.getTask(id);
            check(k.paid <= k.reserved, "paid <= reserved");
            check(k.reserved <= k.terms.roundBudget * k.terms.rounds, "reserved <= funded");
            checkEq(k.paid, handler.paidByTask(id), "paid == ghost paid");
            uint256 claimedSum;
            for (uint32 r = 1; r <= k.lastRound; r++) {
                FLRewards.Round memory x = rewards.getRound(id, r);
                check(x.claimed <= x.payoutTotal, "claimed <= total");
                check(x.payoutTotal <= k.terms.roundBudget, "total <= budget");
                claimedSum += x.claimed;
            }
            checkEq(claimedSum, k.paid, "sum of rounds' claims == paid");
        }
    }

    /// @notice No client is ever paid twice for one round; what a client was paid is the
    ///         contract's record of it.
    /// forge-config: ci.invariant.runs = 32
    function invariant_noClientPaidTwicePerRound() public view {
        checkEq(handler.doublePaid(), 0, "a client was paid twice in a round");
    }

    /// @notice The StakeManager's books balance for every client (locks here never exceed
    ///         the stake per client) and the aggregator.
    /// forge-config: ci.invariant.runs = 32
    function invariant_stakeBooks() public view {
        address t = address(handler.token());
        for (uint256 i = 0; i < 5; i++) {
            address who = i == 4 ? handler.AGGREGATOR() : handler.clientAt(i);
            StakeManager.Stake memory s = sm.stakeOf(who, t);
            checkEq(s.deposited, s.free + s.locked + s.unbonding + s.slashed + s.withdrawn, "books");
            if (i < 4) {
                check(
                    sm.lockedBy(who, t, address(rewards)) <= handler.taskCount() * handler.STAKE(),
                    "client lock <= stake per task"
                );
            }
        }
        StakeManager.Totals memory totals = sm.totalsOf(t);
        checkEq(totals.slashed, totals.owed + totals.claimed, "slashed == owed + claimed");
    }
}
