// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title Roles
 * @notice The role bits of a cofab consortium member, held as one `uint32` mask by the
 * Consortium: every contract that asks {IConsortium-hasRole} names a role with these.
 * @dev `internal constant`s are inlined at compile time: using them costs no gas.
 */
library Roles {
    /// @notice Council members propose and approve membership decisions.
    uint32 internal constant COUNCIL = 1;
    /// @notice Factories accept splits, record production steps and own device keys.
    uint32 internal constant FACTORY = 2;
    /// @notice Designers register and licence designs.
    uint32 internal constant DESIGNER = 4;
    /// @notice Auditors audit jobs and rule on disputes.
    uint32 internal constant AUDITOR = 8;
    /// @notice Buyers place and pay orders.
    uint32 internal constant BUYER = 16;
    /// @notice Union of every role bit; a roles mask must be a nonzero subset of it.
    uint32 internal constant ALL = 31;
}

/**
 * @title Ppm
 * @notice Shares of a price (the designer's royalty, the platform fee, a factory's share,
 * a dispute's payout) are parts per million: {SCALE} is the whole.
 */
library Ppm {
    /// @notice The whole of an amount, in parts per million.
    uint32 internal constant SCALE = 1_000_000;
}

/**
 * @title ICofabErrors
 * @notice Errors several cofab contracts raise, declared once so that each has one
 * selector and one message.
 */
interface ICofabErrors {
    /// @notice `account` is not an active member with the `role` role.
    error MissingRole(address account, uint32 role);
    /// @notice The zero address cannot be used here.
    error ZeroAddress();
    /// @notice A zero hash cannot be used here.
    error ZeroHash();
    /// @notice Block `blockNumber` is in the future.
    error FutureBlock(uint256 blockNumber);
    /// @notice `count` splits: an order needs 1 to 64.
    error InvalidSplitCount(uint256 count);
}
