// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from
    "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title PullPayments
/// @notice Books and pull payments shared by the settlement contracts: money comes in as a
///         deposit (remaining), is credited to an account (claimable) and leaves only when
///         that account withdraws (paid), to itself or to an address it names. Always
///         deposited == paid + claimable + remaining, and the contract's balance is at least
///         claimable + remaining. Ether forced in without a deposit (selfdestruct, coinbase)
///         is surplus; the owner (two-step handover, OpenZeppelin Ownable2Step) may sweep it,
///         which books it as a deposit credited to the owner. Nothing else is the owner's.
abstract contract PullPayments is Ownable2Step, ReentrancyGuardTransient {
    uint256 public totalDeposited;
    uint256 public totalPaid;
    uint256 public totalClaimable;
    uint256 public totalRemaining;

    mapping(address account => uint256) public claimable;

    error NothingToWithdraw(address account);
    error NoSurplus();
    error TransferFailed(address to, uint256 amount);
    error ZeroRecipient();

    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event SurplusSwept(address indexed owner, uint256 amount);

    constructor() Ownable(msg.sender) {}

    function _recordDeposit(uint256 amount) internal {
        totalDeposited += amount;
        totalRemaining += amount;
    }

    function _credit(address account, uint256 amount) internal {
        claimable[account] += amount;
        totalClaimable += amount;
        totalRemaining -= amount;
    }

    /// @notice Send the caller everything credited to it.
    function withdraw() external nonReentrant returns (uint256) {
        return _withdraw(payable(msg.sender));
    }

    /// @notice Send everything credited to the caller to `to` (for accounts, such as
    ///         contracts, that cannot receive ether themselves).
    function withdrawTo(address payable to) external nonReentrant returns (uint256) {
        if (to == address(0)) revert ZeroRecipient();
        return _withdraw(to);
    }

    function _withdraw(address payable to) private returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        totalClaimable -= amount;
        totalPaid += amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    /// @notice Ether held beyond the books (claimable + remaining).
    function surplus() public view returns (uint256) {
        return address(this).balance - (totalClaimable + totalRemaining);
    }

    /// @notice Credit the surplus to the owner (who then withdraws it).
    function sweepSurplus() external onlyOwner nonReentrant returns (uint256 amount) {
        amount = surplus();
        if (amount == 0) revert NoSurplus();
        _recordDeposit(amount);
        _credit(msg.sender, amount);
        emit SurplusSwept(msg.sender, amount);
    }

    /// @notice (deposited, paid, claimable, remaining); paid + claimable + remaining ==
    ///         deposited.
    function totals() external view returns (uint256, uint256, uint256, uint256) {
        return (totalDeposited, totalPaid, totalClaimable, totalRemaining);
    }
}
