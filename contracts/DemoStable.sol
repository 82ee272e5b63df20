// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title DemoStable
 * @notice A demo stable token ("cofab Demo Dollar", dUSD, 6 decimals) for devnets: cofab
 * deploys it only on its embedded and devnet chains and mints it to demo accounts. A
 * consortium chain pays orders in an existing ERC-20 instead.
 * @dev Plain OpenZeppelin ERC20; only the deployer mints. Every mint emits `Transfer`
 * from the zero address.
 */
contract DemoStable is ERC20 {
    /// @notice The account allowed to mint (the deployer).
    address public immutable minter;

    /// @notice `caller` may not mint the demo token.
    error NotMinter(address caller);

    constructor() ERC20("cofab Demo Dollar", "dUSD") {
        minter = msg.sender;
    }

    /// @notice 6 decimals, like the common USD stable tokens.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` (in units of 1e-6 dUSD) to `to`. Minter only.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
