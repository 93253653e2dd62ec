// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumToken} from "../../contracts/ConsortiumToken.sol";
import {DatasetVouching} from "../../contracts/DatasetVouching.sol";
import {Membership} from "../../contracts/Membership.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {IStakeManagerForVouching} from "../../contracts/lib/IStakeManagerForVouching.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one DatasetVouching (registered market and judge of its StakeManager) over
///         two listed datasets of two records each (one all good, one with a record that fails
///         the length check), three curators staked in the consortium token and one
///         challenger: vouches, announced and made unvouches, pool funding, audits opened on
///         the next block, draws, owners' answers (or none: no answer), settlements (time and
///         blocks move as each step needs) and claims. The handler tracks what went in and out.
contract VouchingHandler is Cheats {
    DatasetVouching public immutable vouching;
    StakeManager public immutable sm;
    ConsortiumToken public immutable token;
    address public constant TREASURY = address(0x7EA5);
    address public constant OWNER = address(0x0E1);
    address public constant CHALLENGER = address(0xC4A1);
    uint64 public constant DELAY = 1 days;
    uint256 public constant MIN_VOUCH = 1e18;
    uint256 public constant BOND = 3e17;
    bytes32 internal constant ORG = keccak256("org");
    bytes32 internal constant TRAINER = keccak256("trainer");

    address[3] public curators = [address(0xA11CE), address(0xB0B), address(0xCA401)];
    bytes32[2] public datasets;
    mapping(bytes32 datasetId => bytes[2]) internal _entries;
    uint256 public sentIn; // into the vouching contract
    uint256 public sentOut; // claimed out of it

    constructor() {
        token = new ConsortiumToken("Consortium", "CON", address(this), 1e30);
        sm = new StakeManager(address(this), TREASURY, DELAY, DELAY);
        Membership membership = new Membership(address(this));
        ModelRegistry registry = new ModelRegistry(membership, address(this), uint48(DELAY));
        vouching = new DatasetVouching(IStakeManagerForVouching(address(sm)), registry);
        sm.proposeJudge(address(vouching), 5_000);
        sm.proposeMarket(address(vouching));
        vm.warp(block.timestamp + DELAY);
        membership.createOrg(ORG, address(this));
        membership.invite(ORG, OWNER);
        vm.prank(OWNER);
        membership.acceptInvitation(ORG);
        membership.grantRole(ORG, OWNER, TRAINER);
        bytes[2][2] memory entries =
            [[bytes("[\"a\",\"1\"]"), bytes("[\"b\",\"2\"]")], [bytes("[\"c\",\"3\"]"), bytes("")]];
        bytes32[] memory roots = new bytes32[](2);
        for (uint256 d = 0; d < 2; d++) {
            roots[d] = _node(_leaf(entries[d][0]), _leaf(entries[d][1]));
        }
        vm.prank(OWNER);
        bytes32 versionId = registry.registerVersion("m", "1", keccak256("w"), 0, roots);
        DatasetVouching.Terms memory terms = DatasetVouching.Terms({
            asset: address(token),
            size: 2,
            saltLength: 0,
            slashBps: 5_000,
            answerWindow: 1 hours,
            disputeWindow: 1 hours,
            minVouch: MIN_VOUCH,
            bond: BOND,
            auditReward: 1e17
        });
        DatasetVouching.Checks memory checks;
        checks.minLength = 1;
        checks.maxLength = 64;
        for (uint256 d = 0; d < 2; d++) {
            vm.prank(OWNER);
            datasets[d] = vouching.list(versionId, d, terms, checks);
            _entries[datasets[d]] = entries[d];
        }
        token.approve(address(vouching), type(uint256).max);
        token.transfer(CHALLENGER, 1e24);
        vm.prank(CHALLENGER);
        token.approve(address(vouching), type(uint256).max);
        for (uint256 i = 0; i < 3; i++) {
            token.transfer(curators[i], 1e24);
            vm.startPrank(curators[i]);
            token.approve(address(sm), type(uint256).max);
            sm.deposit(address(token), 1e21);
            vm.stopPrank();
        }
    }

    function _leaf(bytes memory entry) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), entry));
    }

    function _node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    function vouch(uint256 ds, uint256 who, uint256 amount) external {
        amount = bound(amount, MIN_VOUCH, 3 * MIN_VOUCH);
        vm.prank(curators[who % 3]);
        try vouching.vouch(datasets[ds % 2], amount) {} catch {}
    }

    function unvouch(uint256 ds, uint256 who, uint256 amount, bool all) external {
        bytes32 id = datasets[ds % 2];
        address c = curators[who % 3];
        uint256 mine = vouching.vouched(id, c);
        if (mine == 0) return;
        if (vouching.unvouchAt(id, c) == 0) {
            vm.prank(c);
            vouching.requestUnvouch(id);
        }
        uint64 at = vouching.unvouchAt(id, c);
        if (block.timestamp < at) vm.warp(at);
        amount = all ? mine : bound(amount, 1, mine);
        vm.prank(c);
        try vouching.unvouch(id, amount) {} catch {}
    }

    function fund(uint256 ds, uint256 amount) external {
        amount = bound(amount, 1, 1e18);
        vouching.fund(datasets[ds % 2], amount);
        sentIn += amount;
    }

    function openAudit(uint256 ds, uint16 k) external {
        k = uint16(bound(k, 1, 4));
        vm.prank(CHALLENGER);
        try vouching.openAudit(datasets[ds % 2], uint64(block.number + 1), k, BOND) {
            sentIn += BOND;
        } catch {}
    }

    function answer(uint256 auditSeed) external {
        uint256 count = vouching.auditCount();
        if (count == 0) return;
        uint256 id = 1 + auditSeed % count;
        DatasetVouching.Audit memory a = vouching.getAudit(id);
        if (a.status != DatasetVouching.Status.Open) return;
        if (a.seed == 0) {
            if (block.number <= a.seedBlock) vm.roll(a.seedBlock + 1);
            if (!vouching.draw(id)) return; // re-seeded: the hash was gone
        }
        uint256[] memory indices = vouching.sampleIndices(id);
        bytes[] memory entries = new bytes[](indices.length);
        bytes32[][] memory proofs = new bytes32[][](indices.length);
        bytes[2] storage mine = _entries[a.datasetId];
        for (uint256 i = 0; i < indices.length; i++) {
            uint256 at = indices[i];
            entries[i] = mine[at];
            proofs[i] = new bytes32[](1);
            proofs[i][0] = _leaf(mine[1 - at]);
        }
        vm.prank(OWNER);
        try vouching.answer(id, entries, proofs) {} catch {}
    }

    function settle(uint256 auditSeed) external {
        uint256 count = vouching.auditCount();
        if (count == 0) return;
        uint256 id = 1 + auditSeed % count;
        DatasetVouching.Audit memory a = vouching.getAudit(id);
        if (a.status == DatasetVouching.Status.Open) {
            if (a.seed == 0) {
                if (block.number <= a.seedBlock) vm.roll(a.seedBlock + 1);
                if (!vouching.draw(id)) return;
                a = vouching.getAudit(id);
            }
            if (block.timestamp <= a.deadline) vm.warp(a.deadline + 1);
        } else if (a.status == DatasetVouching.Status.Answered) {
            if (block.timestamp <= a.answeredAt + 1 hours) vm.warp(a.answeredAt + 1 hours + 1);
        }
        try vouching.settle(id) {} catch {}
    }

    function claim(uint256 who) external {
        address account = who % 4 == 3 ? CHALLENGER : curators[who % 4];
        vm.prank(account);
        try vouching.claim(address(token), account) returns (uint256 amount) {
            sentOut += amount;
        } catch {}
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 2 hours));
        vm.roll(block.number + 1);
    }
}

contract DatasetVouchingInvariantTest is InvariantBase {
    VouchingHandler internal handler;
    DatasetVouching internal vouching;
    StakeManager internal sm;
    ConsortiumToken internal token;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(100);
        handler = new VouchingHandler();
        vouching = handler.vouching();
        sm = handler.sm();
        token = handler.token();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](10);
        s[0] = VouchingHandler.vouch.selector;
        s[1] = VouchingHandler.vouch.selector;
        s[2] = VouchingHandler.unvouch.selector;
        s[3] = VouchingHandler.fund.selector;
        s[4] = VouchingHandler.openAudit.selector;
        s[5] = VouchingHandler.answer.selector;
        s[6] = VouchingHandler.settle.selector;
        s[7] = VouchingHandler.settle.selector;
        s[8] = VouchingHandler.claim.selector;
        s[9] = VouchingHandler.warp.selector;
        targetSelector(address(handler), s);
    }

    /// @notice The contract holds held[token] == pools + open bonds + owed, exactly, and what
    ///         came in less what went out.
    /// forge-config: ci.invariant.runs = 32
    function invariant_heldIsBondsPoolsOwed() public view {
        address t = address(token);
        uint256 pools;
        for (uint256 d = 0; d < 2; d++) {
            pools += vouching.getDataset(handler.datasets(d)).pool;
        }
        uint256 bonds;
        for (uint256 id = 1; id <= vouching.auditCount(); id++) {
            DatasetVouching.Audit memory a = vouching.getAudit(id);
            bool closed = a.status == DatasetVouching.Status.Passed
                || a.status == DatasetVouching.Status.Slashed;
            if (!closed) bonds += a.bond;
        }
        uint256 owed = vouching.owed(handler.CHALLENGER(), t);
        for (uint256 i = 0; i < 3; i++) {
            owed += vouching.owed(handler.curators(i), t);
        }
        checkEq(vouching.held(t), pools + bonds + owed, "held == pools + bonds + owed");
        checkEq(token.balanceOf(address(vouching)), vouching.held(t), "balance == held");
        checkEq(handler.sentIn() - handler.sentOut(), vouching.held(t), "in - out == held");
    }

    /// @notice Vouches are the stake locked here: per dataset the total is the curators' sum,
    ///         per curator its lock is its vouches' sum; the StakeManager's books balance.
    /// forge-config: ci.invariant.runs = 32
    function invariant_vouchesAreLockedStake() public view {
        address t = address(token);
        uint256[3] memory perCurator;
        for (uint256 d = 0; d < 2; d++) {
            bytes32 id = handler.datasets(d);
            uint256 sum;
            for (uint256 i = 0; i < 3; i++) {
                uint256 v = vouching.vouched(id, handler.curators(i));
                sum += v;
                perCurator[i] += v;
            }
            checkEq(vouching.getDataset(id).totalVouched, sum, "total vouched");
        }
        for (uint256 i = 0; i < 3; i++) {
            address c = handler.curators(i);
            checkEq(sm.lockedBy(c, t, address(vouching)), perCurator[i], "locked == vouched");
            StakeManager.Stake memory s = sm.stakeOf(c, t);
            checkEq(s.deposited, s.free + s.locked + s.unbonding + s.slashed + s.withdrawn, "books");
        }
        StakeManager.Totals memory totals = sm.totalsOf(t);
        checkEq(totals.slashed, totals.owed + totals.claimed, "slashed == owed + claimed");
        checkEq(token.balanceOf(address(sm)), totals.staked + totals.owed, "manager holds");
    }
}
