// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICofabErrors} from "../common/Common.sol";

/**
 * @title ITraceability
 * @notice The anchors of signed production steps: their event and errors. Implemented by
 * Traceability.
 */
interface ITraceability is ICofabErrors {
    /**
     * @notice Steps `fromSeq`..`toSeq` of a split were anchored under `root`.
     * @param index the anchor's number within the split (0, 1, ...)
     * @param previousHead the hash step `fromSeq` names as its predecessor (zero for step 0)
     * @param head the hash of step `toSeq`
     */
    event StepsAnchored(
        uint256 indexed jobId,
        uint256 indexed splitId,
        uint256 indexed index,
        uint64 fromSeq,
        uint64 toSeq,
        bytes32 root,
        bytes32 previousHead,
        bytes32 head,
        address anchoredBy
    );

    /// @notice The next step to anchor is `expected`; a range from `fromSeq` would leave a gap.
    error SequenceGap(uint64 expected, uint64 fromSeq);
    /// @notice Steps from `expected` on are unanchored; a range from `fromSeq` overlaps anchored
    /// ones.
    error RangeOverlap(uint64 expected, uint64 fromSeq);
    /// @notice Range `fromSeq`..`toSeq` is empty.
    error EmptyRange(uint64 fromSeq, uint64 toSeq);
    /// @notice Root `previousRoot` and head `previousHead` are not the split's last anchor: the
    /// range does not continue the anchored chain.
    /// @dev Also raised when step 0 names a predecessor.
    error HeadMismatch(bytes32 previousRoot, bytes32 previousHead);
    /// @notice Split `splitId` of job `jobId` has no anchor `index`.
    error UnknownAnchor(uint256 jobId, uint256 splitId, uint256 index);
}
