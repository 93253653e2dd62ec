// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumToken} from "../../contracts/ConsortiumToken.sol";
import {InferenceMarket} from "../../contracts/InferenceMarket.sol";
import {IStakeManagerForVouching} from "../../contracts/lib/IStakeManagerForVouching.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one InferenceMarket (registered market and judge of its StakeManager) in the
///         consortium token. The handler plays the consumer (opens, cancels, approves,
///         disputes), the provider (accepts, commits epochs of two receipts, some with wrong
///         outputs or another model), three verifiers (threshold 2; they sign the honest
///         result of the drawn sample, and a Mismatch for each wrong output) and an attacker
///         (commits with its own key, settles or disputes with one verifier and itself,
///         disputes a right output, disputes in the consumer's place). Time and blocks move as
///         steps need. A ghost model says which calls must succeed and what each job was
///         credited; every disagreement is counted.
contract InferenceHandler is Cheats {
    InferenceMarket public immutable market;
    StakeManager public immutable sm;
    ConsortiumToken public immutable token;
    address public constant TREASURY = address(0x7EA5);
    address public constant CONSUMER = address(0xC0FFEE);
    address public constant ATTACKER = address(0xBAD);
    uint64 public constant DELAY = 1 days;
    uint64 public constant WINDOW = 1 hours;
    uint256 public constant STAKE = 1e18;
    uint256 internal constant PROVIDER_KEY = 0xA11CE5;
    uint256 internal constant ATTACKER_KEY = 0xBADBAD;
    bytes32 public constant MODEL = keccak256("model");
    bytes32 internal constant RIGHT = keccak256("right output");
    bytes32 internal constant WRONG = keccak256("wrong output");

    address public immutable provider;
    uint256[3] internal _verifierKeys; // sorted by address
    address[] internal _verifiers;

    bytes32[] public jobs;
    mapping(bytes32 => uint64) public epochsOf; // epochs committed (numbered 0..)
    mapping(bytes32 => mapping(uint64 => InferenceMarket.Receipt[2])) internal _receipts;
    mapping(bytes32 => uint256) public creditedProvider; // what the job paid the provider
    mapping(bytes32 => uint256) public creditedConsumer; // what the job refunded
    mapping(bytes32 => uint256) public slashes;
    uint256 public escrowed; // every escrow opened
    uint256 public claimedOut;
    uint256 public disagreements;
    uint256 public settled; // coverage counters (not invariants)
    uint256 public outputDisputes;

    constructor() {
        token = new ConsortiumToken("Consortium", "CON", address(this), 1e30);
        sm = new StakeManager(address(this), TREASURY, DELAY, DELAY);
        market = new InferenceMarket(IStakeManagerForVouching(address(sm)), WINDOW);
        sm.proposeJudge(address(market), 5_000);
        sm.proposeMarket(address(market));
        vm.warp(block.timestamp + DELAY);
        provider = vm.addr(PROVIDER_KEY);
        token.transfer(provider, 1e24);
        vm.startPrank(provider);
        token.approve(address(sm), type(uint256).max);
        sm.deposit(address(token), 8 * STAKE);
        vm.stopPrank();
        token.transfer(CONSUMER, 1e27);
        vm.prank(CONSUMER);
        token.approve(address(market), type(uint256).max);
        uint256[3] memory keys = [uint256(0xB1), uint256(0xB2), uint256(0xB3)];
        for (uint256 i = 0; i < 3; i++) {
            for (uint256 j = i + 1; j < 3; j++) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        for (uint256 i = 0; i < 3; i++) {
            _verifierKeys[i] = keys[i];
            _verifiers.push(vm.addr(keys[i]));
        }
    }

    function jobCount() external view returns (uint256) {
        return jobs.length;
    }

    function _expect(bool ok, bool expected) internal {
        if (ok != expected) disagreements++;
    }

    function _pick(uint256 seed) internal view returns (bytes32 id, InferenceMarket.Job memory j) {
        id = jobs[seed % jobs.length];
        j = market.getJob(id);
    }

    /// @dev Observe what a call credited: the rise of owed to provider and consumer.
    function _owed() internal view returns (uint256 p, uint256 c) {
        p = market.owed(provider, address(token));
        c = market.owed(CONSUMER, address(token));
    }

    function _credit(bytes32 id, uint256 p0, uint256 c0) internal {
        (uint256 p1, uint256 c1) = _owed();
        creditedProvider[id] += p1 - p0;
        creditedConsumer[id] += c1 - c0;
    }

    // ------------------------------------------------------------------ consumer

    function openJob(uint256 price, uint256 maxCalls) external {
        if (jobs.length >= 12) return;
        InferenceMarket.Terms memory t = InferenceMarket.Terms({
            provider: provider,
            asset: address(token),
            stakeAsset: address(token),
            stake: STAKE,
            modelDigest: MODEL,
            price: bound(price, 1, 1e18),
            maxCalls: uint64(bound(maxCalls, 2, 12)),
            deadline: uint64(block.timestamp + 1 days),
            k: 2,
            passBps: 0,
            threshold: 2
        });
        vm.prank(CONSUMER);
        bytes32 id = market.openJob(t, _verifiers);
        jobs.push(id);
        escrowed += t.price * t.maxCalls;
    }

    function cancel(uint256 seed) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        (uint256 p0, uint256 c0) = _owed();
        vm.prank(CONSUMER);
        try market.cancel(id) {
            _expect(true, j.status == InferenceMarket.Status.Open);
        } catch {
            _expect(false, j.status == InferenceMarket.Status.Open);
        }
        _credit(id, p0, c0);
    }

    function approve(uint256 seed, uint64 epochSeed) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        if (epochsOf[id] == 0) return;
        uint64 epoch = epochSeed % epochsOf[id];
        bool expected = j.status == InferenceMarket.Status.Active
            && market.getEpoch(id, epoch).status == InferenceMarket.EpochStatus.Committed;
        (uint256 p0, uint256 c0) = _owed();
        vm.prank(CONSUMER);
        try market.approveEpoch(id, epoch) {
            _expect(true, expected);
        } catch {
            _expect(false, expected);
        }
        _credit(id, p0, c0);
    }

    // ------------------------------------------------------------------ provider

    function accept(uint256 seed) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        bool expected = j.status == InferenceMarket.Status.Open
            && block.timestamp <= j.terms.deadline
            && sm.stakeOf(provider, address(token)).free >= STAKE;
        vm.prank(provider);
        try market.acceptJob(id, provider) {
            _expect(true, expected);
        } catch {
            _expect(false, expected);
        }
    }

    /// @notice Commit the job's next epoch: two receipts of the job (bit i of `wrong` makes
    ///         receipt i's output wrong; `otherModel` names another model in receipt 1).
    ///         `forged`: the attacker signs the root instead of the provider.
    function commit(uint256 seed, uint8 wrong, bool otherModel, bool forged) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        uint64 epoch = epochsOf[id];
        bool expected = j.status == InferenceMarket.Status.Active
            && block.timestamp <= j.terms.deadline
            && j.terms.maxCalls - j.committedCalls >= 2 && !forged;
        bytes32 root = _buildEpoch(id, epoch, j.committedCalls + 1, wrong, otherModel, j.terms.price);
        bytes memory sig =
            signature(forged ? ATTACKER_KEY : PROVIDER_KEY, market.epochRootDigest(epoch, 2, root));
        vm.prank(provider); // nobody else commits the provider's roots (NotProvider)
        try market.commitEpoch(id, epoch, 2, root, 2, sig) {
            _expect(true, expected);
            epochsOf[id] = epoch + 1;
        } catch {
            _expect(false, expected);
        }
    }

    function _buildEpoch(
        bytes32 id,
        uint64 epoch,
        uint64 first,
        uint8 wrong,
        bool otherModel,
        uint256 price
    ) internal returns (bytes32) {
        InferenceMarket.Receipt[2] storage rs = _receipts[id][epoch];
        for (uint64 i = 0; i < 2; i++) {
            rs[i] = InferenceMarket.Receipt({
                jobId: id,
                counter: first + i,
                requestDigest: keccak256(abi.encode(id, first + i)),
                responseDigest: (wrong >> i) & 1 == 1 ? WRONG : RIGHT,
                modelDigest: otherModel && i == 1 ? keccak256("other model") : MODEL,
                price: price,
                timeMs: uint64(block.timestamp * 1000),
                consumer: CONSUMER,
                epoch: epoch,
                position: i
            });
        }
        return _node(_leafOf(rs[0]), _leafOf(rs[1]));
    }

    function _leafOf(InferenceMarket.Receipt memory r) internal view returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), market.receiptDigest(r)));
    }

    function _node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    // ------------------------------------------------------------------ verifiers

    function _epochOf(bytes32 id, uint64 epochSeed) internal view returns (bool, uint64) {
        if (epochsOf[id] == 0) return (false, 0);
        return (true, epochSeed % epochsOf[id]);
    }

    function _drawn(bytes32 id, uint64 epoch) internal returns (bool) {
        InferenceMarket.Epoch memory e = market.getEpoch(id, epoch);
        if (e.seed != 0) return true;
        if (e.status != InferenceMarket.EpochStatus.Committed) return false;
        if (block.number <= e.seedBlock) vm.roll(e.seedBlock + 1);
        return market.draw(id, epoch); // false: re-seeded (the hash was gone)
    }

    /// @notice The verifiers settle the epoch with their honest result (both sampled calls
    ///         right: passed); `attack`: one verifier and the attacker sign instead.
    function settle(uint256 seed, uint64 epochSeed, bool attack) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        (bool any, uint64 epoch) = _epochOf(id, epochSeed);
        if (!any || !_drawn(id, epoch)) return;
        InferenceMarket.Epoch memory e = market.getEpoch(id, epoch);
        uint32 passed = _honestPassed(id, epoch);
        bytes32 digest = market.verificationDigest(id, epoch, e.seed, passed, 2);
        bytes[] memory sigs = _twoSignatures(digest, attack);
        bool expected = !attack && j.status == InferenceMarket.Status.Active
            && block.timestamp <= j.terms.deadline + WINDOW
            && e.status == InferenceMarket.EpochStatus.Committed;
        (uint256 p0, uint256 c0) = _owed();
        try market.settleEpoch(id, epoch, passed, 2, sigs) {
            _expect(true, expected);
            settled++;
            // both sampled calls right pays (99 % of 2 needs 2); any wrong one fails the epoch
            InferenceMarket.EpochStatus now_ = market.getEpoch(id, epoch).status;
            bool paid = now_ == InferenceMarket.EpochStatus.Passed;
            if (paid != (passed == 2)) disagreements++;
        } catch {
            _expect(false, expected);
        }
        _credit(id, p0, c0);
    }

    function _honestPassed(bytes32 id, uint64 epoch) internal view returns (uint32 passed) {
        uint64[] memory counters = market.sampleCounters(id, epoch);
        InferenceMarket.Receipt[2] storage rs = _receipts[id][epoch];
        for (uint256 i = 0; i < counters.length; i++) {
            InferenceMarket.Receipt storage r = rs[counters[i] - rs[0].counter];
            if (r.responseDigest == RIGHT && r.modelDigest == MODEL) passed++;
        }
    }

    function _twoSignatures(bytes32 digest, bool attack) internal view returns (bytes[] memory s) {
        s = new bytes[](2);
        if (!attack) {
            s[0] = signature(_verifierKeys[0], digest);
            s[1] = signature(_verifierKeys[2], digest);
            return s;
        }
        address a = vm.addr(ATTACKER_KEY);
        bool attackerFirst = a < _verifiers[1];
        s[attackerFirst ? 0 : 1] = signature(ATTACKER_KEY, digest);
        s[attackerFirst ? 1 : 0] = signature(_verifierKeys[1], digest);
    }

    // ------------------------------------------------------------------ disputes

    /// @notice Prove receipt `pos` of an epoch wrong with two verifiers' Mismatch. `mode` 0:
    ///         the consumer, honest verifiers; 1: the attacker in the consumer's place; 2: one
    ///         verifier and the attacker sign; 3: the consumer disputes claiming the receipt's
    ///         own output is the expected one.
    function proveWrongOutput(uint256 seed, uint64 epochSeed, uint8 pos, uint8 mode) external {
        if (jobs.length == 0) return;
        (bytes32 id, uint64 epoch, bool found) = _wrongEpoch(seed, epochSeed);
        if (!found) {
            id = jobs[seed % jobs.length];
            bool any;
            (any, epoch) = _epochOf(id, epochSeed);
            if (!any) return;
        }
        InferenceMarket.Job memory j = market.getJob(id);
        mode = mode % 4;
        if (found && _receipts[id][epoch][pos % 2].responseDigest != WRONG) {
            pos = pos % 2 == 0 ? 1 : 0;
        }
        InferenceMarket.Receipt memory r = _receipts[id][epoch][pos % 2];
        bytes32 expectedDigest = mode == 3 ? r.responseDigest : RIGHT;
        bytes[] memory sigs = _twoSignatures(
            market.mismatchDigest(id, r.counter, r.requestDigest, r.responseDigest, expectedDigest),
            mode == 2
        );
        bool expected = mode == 0 && j.status == InferenceMarket.Status.Active
            && market.getEpoch(id, epoch).status == InferenceMarket.EpochStatus.Failed
            && r.responseDigest == WRONG;
        _dispute(id, r, pos % 2, expectedDigest, sigs, mode == 1 ? ATTACKER : CONSUMER, expected);
    }

    /// @dev An epoch with a wrong output of an active job, searching from job `seed` and epoch
    ///      `epochSeed` (disputes aim there, whatever the epoch's status).
    function _wrongEpoch(uint256 seed, uint64 epochSeed)
        internal
        view
        returns (bytes32, uint64, bool)
    {
        for (uint256 k = 0; k < jobs.length; k++) {
            bytes32 id = jobs[(seed % jobs.length + k) % jobs.length];
            uint64 n = epochsOf[id];
            if (n == 0 || market.getJob(id).status != InferenceMarket.Status.Active) continue;
            for (uint64 i = 0; i < n; i++) {
                uint64 e = (epochSeed % n + i) % n;
                InferenceMarket.Receipt[2] storage rs = _receipts[id][e];
                if (rs[0].responseDigest == WRONG || rs[1].responseDigest == WRONG) {
                    return (id, e, true);
                }
            }
        }
        return (bytes32(0), 0, false);
    }

    function _dispute(
        bytes32 id,
        InferenceMarket.Receipt memory r,
        uint8 pos,
        bytes32 expectedDigest,
        bytes[] memory sigs,
        address caller,
        bool expected
    ) internal {
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = _leafOf(_receipts[id][r.epoch][1 - pos]);
        bytes memory sig = signature(PROVIDER_KEY, market.receiptDigest(r));
        (uint256 p0, uint256 c0) = _owed();
        vm.prank(caller);
        try market.proveWrongOutput(id, r, sig, proof, expectedDigest, sigs) {
            _expect(true, expected);
            slashes[id]++;
            outputDisputes++;
        } catch {
            _expect(false, expected);
        }
        _credit(id, p0, c0);
    }

    /// @notice The consumer proves receipt 1 of an epoch names another model.
    function proveWrongModel(uint256 seed, uint64 epochSeed) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        (bool any, uint64 epoch) = _epochOf(id, epochSeed);
        if (!any) return;
        InferenceMarket.Receipt memory r = _receipts[id][epoch][1];
        bool expected = j.status == InferenceMarket.Status.Active && r.modelDigest != MODEL;
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = _leafOf(_receipts[id][epoch][0]);
        bytes memory sig = signature(PROVIDER_KEY, market.receiptDigest(r));
        (uint256 p0, uint256 c0) = _owed();
        vm.prank(CONSUMER);
        try market.proveWrongModel(id, r, sig, proof) {
            _expect(true, expected);
            slashes[id]++;
        } catch {
            _expect(false, expected);
        }
        _credit(id, p0, c0);
    }

    // ------------------------------------------------------------------ the end

    function finish(uint256 seed) external {
        if (jobs.length == 0) return;
        (bytes32 id, InferenceMarket.Job memory j) = _pick(seed);
        uint256 closes = j.terms.deadline + WINDOW;
        if (j.status == InferenceMarket.Status.Active && block.timestamp <= closes) {
            vm.warp(closes + 1);
        }
        (uint256 p0, uint256 c0) = _owed();
        try market.finish(id) {
            _expect(true, j.status == InferenceMarket.Status.Active);
        } catch {
            _expect(false, j.status == InferenceMarket.Status.Active);
        }
        _credit(id, p0, c0);
    }

    function claim(uint256 who) external {
        address account = who % 3 == 0 ? provider : who % 3 == 1 ? CONSUMER : ATTACKER;
        uint256 owed = market.owed(account, address(token));
        vm.prank(account);
        try market.claim(address(token), account) returns (uint256 amount) {
            _expect(true, owed != 0);
            if (amount != owed) disagreements++;
            claimedOut += amount;
        } catch {
            _expect(false, owed != 0);
        }
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 6 hours));
        vm.roll(block.number + 1);
    }
}

contract InferenceMarketInvariantTest is InvariantBase {
    InferenceHandler internal handler;
    InferenceMarket internal market;
    StakeManager internal sm;
    ConsortiumToken internal token;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(100);
        handler = new InferenceHandler();
        market = handler.market();
        sm = handler.sm();
        token = handler.token();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](15);
        s[0] = InferenceHandler.openJob.selector;
        s[1] = InferenceHandler.accept.selector;
        s[2] = InferenceHandler.accept.selector;
        s[3] = InferenceHandler.commit.selector;
        s[4] = InferenceHandler.commit.selector;
        s[5] = InferenceHandler.commit.selector;
        s[6] = InferenceHandler.settle.selector;
        s[7] = InferenceHandler.settle.selector;
        s[8] = InferenceHandler.approve.selector;
        s[9] = InferenceHandler.proveWrongOutput.selector;
        s[10] = InferenceHandler.proveWrongModel.selector;
        s[11] = InferenceHandler.finish.selector;
        s[12] = InferenceHandler.claim.selector;
        s[13] = InferenceHandler.cancel.selector;
        s[14] = InferenceHandler.warp.selector;
        targetSelector(address(handler), s);
    }

    function _openEscrow(InferenceMarket.Job memory j) internal pure returns (uint256) {
        if (j.status != InferenceMarket.Status.Open && j.status != InferenceMarket.Status.Active) {
            return 0;
        }
        return j.terms.price * (j.terms.maxCalls - j.paidCalls);
    }

    /// @notice The market holds held[asset], which is every open escrow plus everything owed;
    ///         paid + refunded + open escrow == escrowed, per job and in sum.
    /// forge-config: ci.invariant.runs = 16
    function invariant_escrowConserved() public view {
        address t = address(token);
        uint256 paid;
        uint256 refunded;
        uint256 open;
        for (uint256 i = 0; i < handler.jobCount(); i++) {
            bytes32 id = handler.jobs(i);
            InferenceMarket.Job memory j = market.getJob(id);
            uint256 p = handler.creditedProvider(id);
            uint256 r = handler.creditedConsumer(id);
            uint256 o = _openEscrow(j);
            checkEq(p + r + o, j.terms.price * j.terms.maxCalls, "job: paid + refunded + open");
            paid += p;
            refunded += r;
            open += o;
        }
        checkEq(paid + refunded + open, handler.escrowed(), "paid + refunded + open == escrowed");
        uint256 owed = market.owed(handler.provider(), t) + market.owed(handler.CONSUMER(), t);
        checkEq(market.held(t), open + owed, "held == open escrow + owed");
        checkEq(paid + refunded, owed + handler.claimedOut(), "credited == owed + claimed");
        check(token.balanceOf(address(market)) >= market.held(t), "holds at least held");
    }

    /// @notice No job pays its provider beyond price x committed calls (nor for a failed
    ///         epoch's calls); a job is slashed at most once, and then its stake is gone.
    /// forge-config: ci.invariant.runs = 16
    function invariant_paymentsAndSlashes() public view {
        uint256 slashedJobs;
        for (uint256 i = 0; i < handler.jobCount(); i++) {
            bytes32 id = handler.jobs(i);
            InferenceMarket.Job memory j = market.getJob(id);
            check(j.paidCalls + j.failedCalls <= j.committedCalls, "paid + failed <= committed");
            checkEq(handler.creditedProvider(id), j.terms.price * j.paidCalls, "provider credit");
            check(handler.slashes(id) <= 1, "slashed at most once");
            bool slashed = j.status == InferenceMarket.Status.Slashed;
            checkEq(handler.slashes(id), slashed ? 1 : 0, "slashed status");
            if (slashed) slashedJobs++;
        }
        StakeManager.Stake memory s = sm.stakeOf(handler.provider(), address(token));
        checkEq(s.slashed, slashedJobs * handler.STAKE(), "one stake slashed per slashed job");
        checkEq(s.deposited, s.free + s.locked + s.unbonding + s.slashed + s.withdrawn, "books");
        uint256 active;
        for (uint256 i = 0; i < handler.jobCount(); i++) {
            if (market.getJob(handler.jobs(i)).status == InferenceMarket.Status.Active) active++;
        }
        checkEq(sm.lockedBy(handler.provider(), address(token), address(market)),
            active * handler.STAKE(), "stake locked per active job");
    }

    /// @notice Every call succeeded exactly when the model expected it to.
    /// forge-config: ci.invariant.runs = 16
    function invariant_modelAgrees() public view {
        checkEq(handler.disagreements(), 0, "disagreements");
    }
}
