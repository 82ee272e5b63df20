// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title ISplits
 * @notice What Traceability, Disputes and the Settlement ask the JobBoard about a split of
 * an order.
 * Implemented by JobBoard.
 */
interface ISplits {
    /// @notice Job `jobId` has no split `splitId`.
    error UnknownSplit(uint256 jobId, uint256 splitId);
    /// @notice `caller` is not the factory of split `splitId` of job `jobId`.
    /// @dev Nor, for Traceability, one of the factory's authorised device keys.
    error NotSplitFactory(uint256 jobId, uint256 splitId, address caller);

    /// @notice The factory a split of job `jobId` is assigned to (zero address if no such split).
    function splitFactory(uint256 jobId, uint256 splitId) external view returns (address factory);

    /// @notice The factory and share of a split of job `jobId`, which the Settlement pays
    /// (zero address and share if no such split). Both are fixed when the order is split.
    function payeeOf(uint256 jobId, uint256 splitId) external view returns (address factory, uint32 sharePpm);

    /// @notice The buyer of job `jobId` (zero address if no such job).
    function jobBuyer(uint256 jobId) external view returns (address buyer);
}
