// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICofabErrors} from "../common/Common.sol";

/**
 * @title IDisputes
 * @notice The dispute process of cofab orders: its types, events and errors, and what the
 * Settlement asks it before it moves a split's money. Implemented by Disputes.
 */
interface IDisputes is ICofabErrors {
    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /// @notice Lifecycle of a dispute: open (the split frozen), then ruled or lapsed.
    enum DisputeStatus {
        None,
        Open,
        Ruled,
        Lapsed
    }

    /// @notice The party a vote or a ruling holds at fault.
    enum Fault {
        None,
        Buyer,
        Factory
    }

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /**
     * @notice `claimant` opened dispute `disputeId` on split `splitId` of order `jobId`
     * against `respondent`, for `reason`, with evidence hashed `evidenceHash`. Evidence is
     * accepted until `evidenceDeadline`, votes until `rulingDeadline`.
     */
    event DisputeOpened(
        uint256 indexed disputeId,
        uint256 indexed jobId,
        uint256 splitId,
        address indexed claimant,
        address respondent,
        string reason,
        bytes32 evidenceHash,
        uint48 evidenceDeadline,
        uint48 rulingDeadline
    );

    /// @notice `party` submitted evidence hashed `evidenceHash`, to be fetched at `uri`, in
    /// dispute `disputeId` on split `splitId` of order `jobId`.
    event EvidenceSubmitted(
        uint256 indexed disputeId,
        uint256 indexed jobId,
        uint256 splitId,
        address party,
        bytes32 evidenceHash,
        string uri
    );

    /// @notice `auditor` voted in dispute `disputeId` on split `splitId` of order `jobId`:
    /// pay the factory `payoutPpm` of the split's amount, `fault` at fault.
    event VoteCast(
        uint256 indexed disputeId,
        uint256 indexed jobId,
        uint256 splitId,
        address indexed auditor,
        uint32 payoutPpm,
        Fault fault
    );

    /// @notice `votes` auditors ruled dispute `disputeId` on split `splitId` of order
    /// `jobId`: `payoutPpm` of the split's amount (`payout`) to its factory, `refund` to
    /// the buyer, `fault` at fault. The Settlement applied it in the same transaction.
    event DisputeRuled(
        uint256 indexed disputeId,
        uint256 indexed jobId,
        uint256 splitId,
        uint32 payoutPpm,
        uint128 payout,
        uint128 refund,
        Fault fault,
        uint16 votes
    );

    /// @notice Dispute `disputeId` on split `splitId` of order `jobId` reached its ruling
    /// deadline without a quorum: closed without ruling, the split unfrozen.
    event DisputeLapsed(uint256 indexed disputeId, uint256 indexed jobId, uint256 splitId);

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    /// @notice The evidence period (`evidencePeriod` s) and the ruling period (`rulingPeriod` s)
    /// must be positive.
    error InvalidPeriods(uint256 evidencePeriod, uint256 rulingPeriod);
    /// @notice Dispute quorum `quorum` must be 1 to 64 votes.
    error InvalidDisputeQuorum(uint256 quorum);
    /// @notice The Settlement moves escrow for `linked`, not for the JobBoard `jobBoard`.
    error BoardMismatch(address jobBoard, address linked);
    /// @notice There is no dispute `disputeId`.
    error UnknownDispute(uint256 disputeId);
    /// @notice `caller` is neither the buyer of job `jobId` nor the factory of its split `splitId`.
    error NotJobParty(uint256 jobId, uint256 splitId, address caller);
    /// @notice Split `splitId` of job `jobId` is already under open dispute `disputeId`.
    error DisputeAlreadyOpen(uint256 jobId, uint256 splitId, uint256 disputeId);
    /// @notice `claimant` already opened a dispute on split `splitId` of job `jobId` (one per party
    /// and split).
    error AlreadyDisputed(uint256 jobId, uint256 splitId, address claimant);
    /// @notice A dispute needs a reason.
    error EmptyReason();
    /// @notice The text is `length` bytes; at most `max` are allowed.
    error TextTooLong(uint256 length, uint256 max);
    /// @notice Dispute `disputeId` is `status`, no longer open.
    error DisputeNotOpen(uint256 disputeId, DisputeStatus status);
    /// @notice `caller` is neither the claimant nor the respondent of dispute `disputeId`.
    error NotDisputeParty(uint256 disputeId, address caller);
    /// @notice The evidence period of dispute `disputeId` ended at `deadline`.
    error EvidencePeriodOver(uint256 disputeId, uint256 deadline);
    /// @notice Voting on dispute `disputeId` opens when the respondent has submitted evidence or
    /// after the evidence deadline (`deadline`).
    error VotingNotOpen(uint256 disputeId, uint256 deadline);
    /// @notice The ruling deadline of dispute `disputeId` (`deadline`) has passed: it can only
    /// lapse.
    error RulingPeriodOver(uint256 disputeId, uint256 deadline);
    /// @notice Dispute `disputeId` can lapse only after its ruling deadline (`deadline`).
    error RulingPeriodNotOver(uint256 disputeId, uint256 deadline);
    /// @notice Auditor `auditor` is a party to the job of dispute `disputeId` (its buyer, designer
    /// or a factory) and may not vote.
    error AuditorIsParty(uint256 disputeId, address auditor);
    /// @notice Auditor `auditor` already voted in dispute `disputeId`.
    error AlreadyVoted(uint256 disputeId, address auditor);
    /// @notice Payout share `payoutPpm` ppm exceeds 1000000 (100%).
    error InvalidPayoutShare(uint256 payoutPpm);

    // ------------------------------------------------------------------------------------
    // Functions
    // ------------------------------------------------------------------------------------

    /// @notice Whether split `splitId` of job `jobId` is under an open dispute: its payout
    /// is frozen until the dispute is ruled on or lapses.
    function isFrozen(uint256 jobId, uint256 splitId) external view returns (bool);

    /// @notice The splits of job `jobId` under an open dispute, as a mask (bit `i` = split `i`).
    function frozenSplits(uint256 jobId) external view returns (uint256 mask);
}
