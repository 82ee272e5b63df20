// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IDisputes
 * @notice What the Settlement asks the dispute process before it moves a split's money.
 * Implemented by Disputes.
 */
interface IDisputes {
    /// @notice Whether split `splitId` of job `jobId` is under an open dispute: its payout
    /// is frozen until the dispute is ruled on or lapses.
    function isFrozen(uint256 jobId, uint256 splitId) external view returns (bool);

    /// @notice The splits of job `jobId` under an open dispute, as a mask (bit `i` = split `i`).
    function frozenSplits(uint256 jobId) external view returns (uint256 mask);
}
