// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumToken} from "../../contracts/ConsortiumToken.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one StakeManager with three stakers in ether and the consortium token:
///         deposits, withdrawal requests, waits, withdrawals, locks and unlocks (the handler is
///         the registered market), slashes (the handler is the registered judge; fault ids
///         repeat) and claims by the prover and the treasury. Every call that the handler's
///         expectation and the contract disagree on is counted.
contract StakeHandler is Cheats {
    StakeManager public immutable sm;
    ConsortiumToken public immutable token;
    address public constant PROVER = address(0xBEEF);
    address public constant TREASURY = address(0x7EA5);
    uint64 public constant UNBONDING = 1 days;

    address[3] public actors = [address(0xA11CE), address(0xB0B), address(0xCA401)];
    mapping(bytes32 => bool) public faultUsed;
    mapping(address => uint256) public sentIn;
    mapping(address => uint256) public sentOut;
    uint256 public disagreements;

    constructor() {
        token = new ConsortiumToken("Consortium", "CON", address(this), 1e30);
        sm = new StakeManager(address(this), TREASURY, UNBONDING, 2 * UNBONDING);
        sm.proposeJudge(address(this), 5_000);
        sm.proposeMarket(address(this));
        vm.warp(block.timestamp + 2 * UNBONDING);
        for (uint256 i = 0; i < 3; i++) {
            vm.deal(actors[i], 1e24);
            token.transfer(actors[i], 1e24);
            vm.prank(actors[i]);
            token.approve(address(sm), type(uint256).max);
        }
    }

    function assets() public view returns (address[2] memory) {
        return [address(0), address(token)];
    }

    function _pick(uint256 who, bool useToken) private view returns (address, address) {
        return (actors[who % 3], useToken ? address(token) : address(0));
    }

    function _expect(bool ok, bool expected) private {
        if (ok != expected) disagreements++;
    }

    function deposit(uint256 who, bool useToken, uint256 amount) external {
        (address actor, address asset) = _pick(who, useToken);
        amount = bound(amount, 1, 1e21);
        vm.prank(actor);
        sm.deposit{value: useToken ? 0 : amount}(asset, amount);
        sentIn[asset] += amount;
    }

    function request(uint256 who, bool useToken, uint256 amount) external {
        (address actor, address asset) = _pick(who, useToken);
        uint256 free = sm.stakeOf(actor, asset).free;
        amount = bound(amount, 0, free + 1);
        vm.prank(actor);
        try sm.requestWithdrawal(asset, amount) {
            _expect(true, amount > 0 && amount <= free);
        } catch {
            _expect(false, amount > 0 && amount <= free);
        }
    }

    function withdraw(uint256 who, bool useToken) external {
        (address actor, address asset) = _pick(who, useToken);
        StakeManager.Stake memory s = sm.stakeOf(actor, asset);
        bool due = s.unbonding > 0 && block.timestamp >= s.unbondingReleaseAt;
        vm.prank(actor);
        try sm.withdraw(asset, actor) returns (uint256 amount) {
            _expect(true, due);
            sentOut[asset] += amount;
        } catch {
            _expect(false, due);
        }
    }

    function lock(uint256 who, bool useToken, uint256 amount) external {
        (address actor, address asset) = _pick(who, useToken);
        uint256 free = sm.stakeOf(actor, asset).free;
        amount = bound(amount, 0, free + 1);
        try sm.lock(actor, asset, amount) {
            _expect(true, amount > 0 && amount <= free);
        } catch {
            _expect(false, amount > 0 && amount <= free);
        }
    }

    function unlock(uint256 who, bool useToken, uint256 amount) external {
        (address actor, address asset) = _pick(who, useToken);
        uint256 held = sm.lockedBy(actor, asset, address(this));
        amount = bound(amount, 0, held + 1);
        try sm.unlock(actor, asset, amount) {
            _expect(true, amount > 0 && amount <= held);
        } catch {
            _expect(false, amount > 0 && amount <= held);
        }
    }

    function slash(uint256 who, bool useToken, uint256 amount, uint8 fault) external {
        (address actor, address asset) = _pick(who, useToken);
        StakeManager.Stake memory s = sm.stakeOf(actor, asset);
        uint256 total = s.free + s.locked + s.unbonding;
        amount = bound(amount, 0, 2 * total + 1);
        bytes32 id = bytes32(uint256(fault % 8));
        bool expected = amount > 0 && total > 0 && !faultUsed[id];
        try sm.slash(actor, asset, amount, id, 1, keccak256("evidence"), PROVER) returns (
            uint256 slashed
        ) {
            _expect(true, expected);
            faultUsed[id] = true;
            if (slashed != (amount < total ? amount : total)) disagreements++;
        } catch {
            _expect(false, expected);
        }
    }

    function claim(bool treasury, bool useToken) external {
        address account = treasury ? TREASURY : PROVER;
        address asset = useToken ? address(token) : address(0);
        uint256 owed = sm.owed(account, asset);
        vm.prank(account);
        try sm.claim(asset, account) returns (uint256 amount) {
            _expect(true, owed > 0);
            if (amount != owed) disagreements++;
            sentOut[asset] += amount;
        } catch {
            _expect(false, owed > 0);
        }
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 2 * UNBONDING));
    }

    function balanceOf(address asset) public view returns (uint256) {
        return asset == address(0) ? address(sm).balance : token.balanceOf(address(sm));
    }
}

contract StakeManagerInvariantTest is InvariantBase {
    StakeHandler internal handler;
    StakeManager internal sm;

    function setUp() public {
        vm.warp(1_700_000_000);
        handler = new StakeHandler();
        sm = handler.sm();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](9);
        s[0] = StakeHandler.deposit.selector;
        s[1] = StakeHandler.request.selector;
        s[2] = StakeHandler.withdraw.selector;
        s[3] = StakeHandler.lock.selector;
        s[4] = StakeHandler.unlock.selector;
        s[5] = StakeHandler.slash.selector;
        s[6] = StakeHandler.claim.selector;
        s[7] = StakeHandler.warp.selector;
        s[8] = StakeHandler.deposit.selector;
        targetSelector(address(handler), s);
    }

    /// @notice Per participant and asset, and in sum: deposited == free + locked + unbonding
    ///         + slashed + withdrawn; slashed == owed + claimed.
    function invariant_booksBalance() public view {
        address[2] memory assets = handler.assets();
        for (uint256 a = 0; a < 2; a++) {
            uint256 staked;
            for (uint256 i = 0; i < 3; i++) {
                StakeManager.Stake memory s = sm.stakeOf(handler.actors(i), assets[a]);
                uint256 mine = s.free + s.locked + s.unbonding;
                checkEq(s.deposited, mine + s.slashed + s.withdrawn, "participant books");
                staked += mine;
            }
            StakeManager.Totals memory t = sm.totalsOf(assets[a]);
            checkEq(t.staked, staked, "staked in sum");
            checkEq(t.deposited, t.staked + t.slashed + t.withdrawn, "asset books");
            checkEq(t.slashed, t.owed + t.claimed, "slashed == owed + claimed");
            checkEq(
                t.owed,
                sm.owed(handler.PROVER(), assets[a]) + sm.owed(handler.TREASURY(), assets[a]),
                "owed in sum"
            );
        }
    }

    /// @notice The contract holds exactly staked + owed of each asset, and what came in and
    ///         went out is what the books say.
    function invariant_balanceMatches() public view {
        address[2] memory assets = handler.assets();
        for (uint256 a = 0; a < 2; a++) {
            StakeManager.Totals memory t = sm.totalsOf(assets[a]);
            checkEq(handler.balanceOf(assets[a]), t.staked + t.owed, "balance");
            checkEq(handler.sentIn(assets[a]), t.deposited, "sent in");
            checkEq(handler.sentOut(assets[a]), t.withdrawn + t.claimed, "sent out");
        }
    }

    /// @notice Every call succeeded exactly when the handler expected it to.
    function invariant_modelAgrees() public view {
        checkEq(handler.disagreements(), 0, "disagreements");
    }
}
