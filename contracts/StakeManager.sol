// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from
    "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title StakeManager
/// @notice Stakes per (participant, asset) in native ether (asset = address(0)) or any ERC-20.
///         A stake is free, locked (by a registered market for the participant's open work) or
///         unbonding (requested out; withdrawable `unbondingDelay` seconds after the latest
///         request). Registered judges slash free, unbonding and their own locked stake for a
///         fault (one slash per judge and fault id), with a reason code and an evidence hash
///         pointing at log entries; the slashed amount is split between the prover of the fault
///         (the judge's rule, in basis points, rounded down) and the treasury (the remainder),
///         both credited as pull payments that their owners `claim`.
///
///         Governance (OpenZeppelin Ownable2Step: two-step handover) registers judges and
///         markets; a registration takes effect `governanceDelay` (>= `unbondingDelay`) after it
///         is proposed, so a staker who distrusts a new judge or market can unbond and leave
///         before it can act. Removal is immediate; a removed market's locks may be released by
///         the participant. Governance never moves stake or owed balances itself.
///
///         ERC-20 deposits credit the balance the contract actually received (fee-on-transfer
///         tokens credit what arrived); rebasing tokens are not supported.
/// @dev For every participant and asset, and per asset in sum:
///      deposited == free + locked + unbonding + slashed + withdrawn, and
///      slashed == owed + claimed (over all accounts). For fee-free tokens the contract holds
///      at least staked + owed of each asset (ether forced in by selfdestruct is surplus).
///      Checks-effects-interactions and ReentrancyGuardTransient on every function that moves
///      value.
contract StakeManager is Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    address public constant ETHER = address(0);

    struct Stake {
        uint256 free;
        uint256 locked;
        uint256 unbonding;
        uint64 unbondingReleaseAt;
        uint256 deposited;
        uint256 slashed;
        uint256 withdrawn;
    }

    struct Totals {
        uint256 deposited;
        uint256 staked;
        uint256 slashed;
        uint256 withdrawn;
        uint256 owed;
        uint256 claimed;
    }

    /// @notice A judge or market: active from `activeFrom` (0: not registered). A judge's
    ///         `proverBps` of each slash goes to the prover, the rest to the treasury.
    struct Registration {
        uint64 activeFrom;
        uint16 proverBps;
    }

    uint64 public immutable unbondingDelay;
    uint64 public immutable governanceDelay;

    address public treasury;

    mapping(address participant => mapping(address asset => Stake)) private _stakes;
    mapping(address participant => mapping(address asset => mapping(address market => uint256)))
        public lockedBy;
    mapping(address asset => Totals) private _totals;
    mapping(address account => mapping(address asset => uint256)) public owed;
    mapping(address judge => Registration) private _judges;
    mapping(address market => Registration) private _markets;
    mapping(address judge => mapping(bytes32 faultId => bool)) public faultSlashed;

    error ZeroAddress();
    error ZeroAmount();
    error WrongValue(uint256 sent, uint256 expected);
    error UseDeposit();
    error NothingArrived(address asset);
    error InsufficientFree(uint256 requested, uint256 free);
    error InsufficientLocked(uint256 requested, uint256 locked);
    error NothingUnbonding();
    error UnbondingNotDue(uint64 releaseAt);
    error NotJudge(address caller);
    error NotMarket(address caller);
    error MarketStillActive(address market);
    error FaultAlreadySlashed(address judge, bytes32 faultId);
    error NothingToSlash(address participant, address asset);
    error NothingOwed(address account, address asset);
    error BadBps(uint16 bps);
    error BadDelays(uint64 unbondingDelay, uint64 governanceDelay);
    error AlreadyRegistered(address account);
    error TransferFailed(address to, uint256 amount);

    event Deposited(address indexed participant, address indexed asset, uint256 amount);
    event UnbondingRequested(
        address indexed participant, address indexed asset, uint256 amount, uint64 releaseAt
    );
    event Withdrawn(
        address indexed participant, address indexed asset, address to, uint256 amount
    );
    event Locked(
        address indexed participant, address indexed asset, address indexed market, uint256 amount
    );
    event Unlocked(
        address indexed participant, address indexed asset, address indexed market, uint256 amount
    );
    event Slashed(
        address indexed participant,
        address indexed asset,
        address indexed judge,
        bytes32 faultId,
        uint32 reasonCode,
        bytes32 evidenceHash,
        address prover,
        uint256 amount,
        uint256 proverShare,
        uint256 treasuryShare
    );
    event Claimed(address indexed account, address indexed asset, address to, uint256 amount);
    event JudgeProposed(address indexed judge, uint16 proverBps, uint64 activeFrom);
    event JudgeRemoved(address indexed judge);
    event MarketProposed(address indexed market, uint64 activeFrom);
    event MarketRemoved(address indexed market);
    event TreasuryChanged(address indexed previous, address indexed treasury);

    constructor(address governor, address treasury_, uint64 unbondingDelay_, uint64 governanceDelay_)
        Ownable(governor)
    {
        if (treasury_ == address(0)) revert ZeroAddress();
        if (unbondingDelay_ == 0 || governanceDelay_ < unbondingDelay_) {
            revert BadDelays(unbondingDelay_, governanceDelay_);
        }
        treasury = treasury_;
        unbondingDelay = unbondingDelay_;
        governanceDelay = governanceDelay_;
        emit TreasuryChanged(address(0), treasury_);
    }

    /// @notice Ether only through `deposit(address(0), amount)`.
    receive() external payable {
        revert UseDeposit();
    }

    // ---------------------------------------------------------------- participants

    /// @notice Stake `amount` of `asset` (address(0): ether, sent as msg.value == amount; an
    ///         ERC-20 is pulled with transferFrom after approval, and what arrived is credited).
    function deposit(address asset, uint256 amount)
        external
        payable
        nonReentrant
        returns (uint256 credited)
    {
        if (amount == 0) revert ZeroAmount();
        if (asset == ETHER) {
            if (msg.value != amount) revert WrongValue(msg.value, amount);
            credited = amount;
        } else {
            if (msg.value != 0) revert WrongValue(msg.value, 0);
            IERC20 token = IERC20(asset);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), amount);
            uint256 afterwards = token.balanceOf(address(this));
            if (afterwards <= before) revert NothingArrived(asset);
            credited = afterwards - before;
        }
        Stake storage s = _stakes[msg.sender][asset];
        s.free += credited;
        s.deposited += credited;
        Totals storage t = _totals[asset];
        t.deposited += credited;
        t.staked += credited;
        emit Deposited(msg.sender, asset, credited);
    }

    /// @notice Move `amount` of free stake to unbonding; it (with any earlier unbonding amount)
    ///         becomes withdrawable `unbondingDelay` seconds from now and stays slashable until
    ///         withdrawn.
    function requestWithdrawal(address asset, uint256 amount) external returns (uint64 releaseAt) {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender][asset];
        if (amount > s.free) revert InsufficientFree(amount, s.free);
        s.free -= amount;
        s.unbonding += amount;
        releaseAt = uint64(block.timestamp) + unbondingDelay;
        s.unbondingReleaseAt = releaseAt;
        emit UnbondingRequested(msg.sender, asset, amount, releaseAt);
    }

    /// @notice Send the caller's whole unbonding amount of `asset`, once due, to `to`.
    function withdraw(address asset, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        Stake storage s = _stakes[msg.sender][asset];
        amount = s.unbonding;
        if (amount == 0) revert NothingUnbonding();
        if (block.timestamp < s.unbondingReleaseAt) revert UnbondingNotDue(s.unbondingReleaseAt);
        s.unbonding = 0;
        s.withdrawn += amount;
        Totals storage t = _totals[asset];
        t.staked -= amount;
        t.withdrawn += amount;
        emit Withdrawn(msg.sender, asset, to, amount);
        _send(asset, to, amount);
    }

    /// @notice Send everything owed to the caller in `asset` (prover and treasury shares) to
    ///         `to`.
    function claim(address asset, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = owed[msg.sender][asset];
        if (amount == 0) revert NothingOwed(msg.sender, asset);
        owed[msg.sender][asset] = 0;
        Totals storage t = _totals[asset];
        t.owed -= amount;
        t.claimed += amount;
        emit Claimed(msg.sender, asset, to, amount);
        _send(asset, to, amount);
    }

    /// @notice Free the caller's stake locked by `market` once governance has removed it.
    function releaseLock(address asset, address market) external returns (uint256 amount) {
        if (isMarket(market)) revert MarketStillActive(market);
        amount = lockedBy[msg.sender][asset][market];
        if (amount == 0) revert ZeroAmount();
        _unlock(msg.sender, asset, market, amount);
    }

    // ---------------------------------------------------------------- markets and judges

    /// @notice A registered market locks `amount` of `participant`'s free stake for open work.
    function lock(address participant, address asset, uint256 amount) external {
        if (!isMarket(msg.sender)) revert NotMarket(msg.sender);
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[participant][asset];
        if (amount > s.free) revert InsufficientFree(amount, s.free);
        s.free -= amount;
        s.locked += amount;
        lockedBy[participant][asset][msg.sender] += amount;
        emit Locked(participant, asset, msg.sender, amount);
    }

    /// @notice A market (registered or not) frees stake it locked.
    function unlock(address participant, address asset, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _unlock(participant, asset, msg.sender, amount);
    }

    /// @notice A registered judge slashes up to `amount` of `participant`'s stake in `asset`
    ///         for fault `faultId` (once per judge and fault): first what the judge itself
    ///         locked, then unbonding, then free stake (never other markets' locks). Returns the
    ///         amount slashed; the prover's share (the judge's basis points, rounded down) and the
    ///         treasury's (the rest) become owed. `prover` may be address(0): all to treasury.
    function slash(
        address participant,
        address asset,
        uint256 amount,
        bytes32 faultId,
        uint32 reasonCode,
        bytes32 evidenceHash,
        address prover
    ) external nonReentrant returns (uint256 slashed) {
        Registration memory judge = _judges[msg.sender];
        if (!_active(judge)) revert NotJudge(msg.sender);
        if (amount == 0) revert ZeroAmount();
        if (faultSlashed[msg.sender][faultId]) revert FaultAlreadySlashed(msg.sender, faultId);
        slashed = _take(participant, asset, amount);
        faultSlashed[msg.sender][faultId] = true;
        uint256 proverShare = prover == address(0) ? 0 : slashed * judge.proverBps / BPS;
        _distribute(asset, prover, proverShare, slashed - proverShare);
        emit Slashed(
            participant,
            asset,
            msg.sender,
            faultId,
            reasonCode,
            evidenceHash,
            prover,
            slashed,
            proverShare,
            slashed - proverShare
        );
    }

    /// @dev Take up to `amount` from the caller's own lock, then unbonding, then free stake.
    function _take(address participant, address asset, uint256 amount)
        private
        returns (uint256 slashed)
    {
        Stake storage s = _stakes[participant][asset];
        uint256 left = amount;
        uint256 own = lockedBy[participant][asset][msg.sender];
        uint256 take = left < own ? left : own;
        if (take != 0) {
            lockedBy[participant][asset][msg.sender] = own - take;
            s.locked -= take;
            left -= take;
        }
        take = left < s.unbonding ? left : s.unbonding;
        s.unbonding -= take;
        left -= take;
        take = left < s.free ? left : s.free;
        s.free -= take;
        left -= take;
        slashed = amount - left;
        if (slashed == 0) revert NothingToSlash(participant, asset);
        s.slashed += slashed;
    }

    function _distribute(address asset, address prover, uint256 proverShare, uint256 rest)
        private
    {
        Totals storage t = _totals[asset];
        uint256 slashed = proverShare + rest;
        t.staked -= slashed;
        t.slashed += slashed;
        t.owed += slashed;
        if (proverShare != 0) owed[prover][asset] += proverShare;
        owed[treasury][asset] += rest;
    }

    // ---------------------------------------------------------------- governance

    /// @notice Register `judge` (a contract), active `governanceDelay` seconds from now, with
    ///         `proverBps` of each slash going to the prover.
    function proposeJudge(address judge, uint16 proverBps) external onlyOwner {
        if (judge == address(0)) revert ZeroAddress();
        if (proverBps > BPS) revert BadBps(proverBps);
        if (_judges[judge].activeFrom != 0) revert AlreadyRegistered(judge);
        uint64 activeFrom = uint64(block.timestamp) + governanceDelay;
        _judges[judge] = Registration(activeFrom, proverBps);
        emit JudgeProposed(judge, proverBps, activeFrom);
    }

    /// @notice Remove a judge (pending or active) at once.
    function removeJudge(address judge) external onlyOwner {
        if (_judges[judge].activeFrom == 0) revert NotJudge(judge);
        delete _judges[judge];
        emit JudgeRemoved(judge);
    }

    /// @notice Register `market`, active `governanceDelay` seconds from now.
    function proposeMarket(address market) external onlyOwner {
        if (market == address(0)) revert ZeroAddress();
        if (_markets[market].activeFrom != 0) revert AlreadyRegistered(market);
        uint64 activeFrom = uint64(block.timestamp) + governanceDelay;
        _markets[market] = Registration(activeFrom, 0);
        emit MarketProposed(market, activeFrom);
    }

    /// @notice Remove a market at once; its participants may then release its locks.
    function removeMarket(address market) external onlyOwner {
        if (_markets[market].activeFrom == 0) revert NotMarket(market);
        delete _markets[market];
        emit MarketRemoved(market);
    }

    /// @notice Where treasury shares of future slashes are owed (past ones stay owed to the
    ///         previous treasury).
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, treasury_);
        treasury = treasury_;
    }

    // ---------------------------------------------------------------- views

    function isJudge(address account) public view returns (bool) {
        return _active(_judges[account]);
    }

    function isMarket(address account) public view returns (bool) {
        return _active(_markets[account]);
    }

    function judgeInfo(address judge) external view returns (Registration memory) {
        return _judges[judge];
    }

    function marketInfo(address market) external view returns (Registration memory) {
        return _markets[market];
    }

    function stakeOf(address participant, address asset) external view returns (Stake memory) {
        return _stakes[participant][asset];
    }

    function totalsOf(address asset) external view returns (Totals memory) {
        return _totals[asset];
    }

    // ---------------------------------------------------------------- internals

    function _active(Registration memory r) private view returns (bool) {
        return r.activeFrom != 0 && block.timestamp >= r.activeFrom;
    }

    function _unlock(address participant, address asset, address market, uint256 amount)
        private
    {
        uint256 held = lockedBy[participant][asset][market];
        if (amount > held) revert InsufficientLocked(amount, held);
        lockedBy[participant][asset][market] = held - amount;
        Stake storage s = _stakes[participant][asset];
        s.locked -= amount;
        s.free += amount;
        emit Unlocked(participant, asset, market, amount);
    }

    function _send(address asset, address to, uint256 amount) private {
        if (asset == ETHER) {
            (bool ok,) = payable(to).call{value: amount}("");
            if (!ok) revert TransferFailed(to, amount);
        } else {
            IERC20(asset).safeTransfer(to, amount);
        }
    }
}
