// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ConsortiumToken
/// @notice A plain OpenZeppelin ERC-20 with a fixed supply, all minted to `holder` at
///         deployment (18 decimals). Nobody can mint, burn or freeze afterwards: a consortium's
///         stake and reward token for tests and demos; on a real network any ERC-20 will do.
contract ConsortiumToken is ERC20 {
    constructor(string memory name_, string memory symbol_, address holder, uint256 supply)
        ERC20(name_, symbol_)
    {
        _mint(holder, supply);
    }
}
