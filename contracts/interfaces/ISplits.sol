// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title ISplits
 * @notice What Traceability and Disputes ask the JobBoard about a split of an order.
 * Implemented by JobBoard.
 */
interface ISplits {
    /// @notice The factory a split of job `jobId` is assigned to (zero address if no such split).
    function splitFactory(uint256 jobId, uint256 splitId) external view returns (address factory);

    /// @notice The buyer of job `jobId` (zero address if no such job).
    function jobBuyer(uint256 jobId) external view returns (address buyer);
}
