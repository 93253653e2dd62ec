// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title PullPayments
/// @notice Books and pull payments shared by the settlement contracts: money comes in as a
///         deposit (remaining), is credited to an account (claimable) and leaves only when
///         that account withdraws (paid). deposited == paid + claimable + remaining always,
///         and the contract's balance equals claimable + remaining.
abstract contract PullPayments {
    uint256 public totalDeposited;
    uint256 public totalPaid;
    uint256 public totalClaimable;
    uint256 public totalRemaining;

    mapping(address account => uint256) public claimable;
    bool private _locked;

    error NothingToWithdraw(address account);
    error Reentrancy();
    error TransferFailed(address to, uint256 amount);

    event Withdrawn(address indexed account, uint256 amount);

    modifier nonReentrant() {
        if (_locked) revert Reentrancy();
        _locked = true;
        _;
        _locked = false;
    }

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
    function withdraw() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        totalClaimable -= amount;
        totalPaid += amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @notice (deposited, paid, claimable, remaining); paid + claimable + remaining ==
    ///         deposited.
    function totals() external view returns (uint256, uint256, uint256, uint256) {
        return (totalDeposited, totalPaid, totalClaimable, totalRemaining);
    }
}
