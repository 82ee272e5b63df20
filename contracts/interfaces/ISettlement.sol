// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/**
 * @title ISettlement
 * @notice The escrow of cofab orders, as the JobBoard and the dispute process use it.
 * Implemented by Settlement. Shares are parts per million (1e6 = the whole price).
 */
interface ISettlement {
    /// @notice The token orders are paid in when they name none (zero if not configured).
    function defaultToken() external view returns (IERC20);

    /// @notice The platform's fee on every order, parts per million of the price.
    function platformFeePpm() external view returns (uint32);

    /// @notice Takes `amount` of `token` from `buyer` (who approved the Settlement) into
    /// escrow for job `jobId`. JobBoard only.
    function deposit(uint256 jobId, IERC20 token, address buyer, uint128 amount) external;

    /// @notice Fixes the payees of job `jobId`: one factory and share per split, the
    /// designer's royalty and the platform fee, summing to exactly 1e6. JobBoard only.
    function allocate(
        uint256 jobId,
        address designer,
        uint32 royaltyPpm,
        address[] calldata factories,
        uint32[] calldata sharesPpm
    ) external;

    /// @notice Credits split `splitId`'s amount to its factory; returns true when every
    /// split of the job is closed (the royalty and fee are then credited too). JobBoard only.
    function release(uint256 jobId, uint256 splitId) external returns (bool jobClosed);

    /// @notice Refunds to the buyer everything still held for job `jobId` except the splits
    /// whose bit is set in `keepMask`. JobBoard only.
    function refund(uint256 jobId, uint256 keepMask) external returns (uint256 refunded);

    /// @notice Applies a dispute ruling: split `splitId` pays `payout` (at most its
    /// amount) to its factory and refunds the rest to the buyer, and is closed. Only the
    /// disputes address.
    function applyRuling(uint256 jobId, uint256 splitId, uint128 payout) external;
}

/**
 * @title ISettlementHooks
 * @notice What the Settlement tells the JobBoard when a ruling closes a split.
 */
interface ISettlementHooks {
    /// @notice A ruling closed split `splitId` of job `jobId`, paying `payout` to its factory.
    function onSplitRuled(uint256 jobId, uint256 splitId, uint128 payout) external;
}
