// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Ppm, Roles} from "./common/Common.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDisputes} from "./interfaces/IDisputes.sol";
import {IJobBoard} from "./interfaces/IJobBoard.sol";
import {ISettlement} from "./interfaces/ISettlement.sol";

/**
 * @title Disputes
 * @notice Disagreements about one split of a cofab order, settled by the consortium's
 * auditors from the chain record and the parties' evidence.
 *
 * A party to the order — its buyer, or the factory of the split — opens a dispute on the
 * split with a reason and the hash of its evidence ({openDispute}). The other party is the
 * respondent. While the dispute is open the split is frozen: the Settlement refuses to
 * release or refund its amount ({isFrozen}). Both parties add evidence — a hash and a URI
 * where it can be fetched, in the spirit of ERC-1497 — until the evidence deadline
 * ({submitEvidence}).
 *
 * Active auditors who are not parties to the order (neither its buyer, its designer nor
 * any of its factories) vote once each ({vote}): the share of the split's amount to pay
 * its factory (parts per million) and the party at fault. Voting opens once the
 * respondent has submitted evidence or the evidence deadline has passed, so no ruling is
 * made before both sides were heard, and closes at the ruling deadline. The vote that
 * reaches {quorum} rules: the payout share is the median of the votes (with an even
 * number of votes, the mean of the two middle ones rounded down) and the fault is the one
 * named by more than half of the votes (else none). The ruling is applied by the
 * Settlement at once: the factory is credited `amount * share / 1e6`, the buyer the rest,
 * and the split is closed.
 *
 * If the ruling deadline passes without a quorum, anyone may declare the dispute lapsed
 * ({lapse}): it closes without a ruling, the split is unfrozen and follows its normal
 * course (the buyer accepts the delivery, or the order expires). Each party may open one
 * dispute per split, so a split cannot be kept frozen indefinitely.
 *
 * @dev Every state change emits an event carrying the job and split ids, so an auditor
 * rebuilds a job's dispute history from logs alone. State is written before the
 * Settlement is called (checks-effects-interactions) and every mutating function is
 * non-reentrant. Membership comes from the Consortium, orders from the JobBoard, amounts
 * from the Settlement, which must name this contract as its disputes address.
 */
contract Disputes is IDisputes, ReentrancyGuardTransient {
    /// @notice Most votes a ruling may need.
    uint16 public constant MAX_QUORUM = 64;
    /// @notice Longest reason or evidence URI, in bytes.
    uint256 public constant MAX_TEXT_BYTES = 2048;

    /**
     * @notice A dispute.
     * @param jobId The order.
     * @param splitId The disputed split.
     * @param status Lifecycle status.
     * @param fault The ruling's party at fault (when ruled).
     * @param respondentHeard Whether the respondent has submitted evidence.
     * @param votes Votes cast so far.
     * @param payoutPpm The ruling's share of the split's amount paid to its factory.
     * @param openedAt When it was opened (unix time).
     * @param evidenceDeadline Last unix time at which evidence is accepted.
     * @param rulingDeadline Last unix time at which votes are accepted.
     * @param claimant Who opened it.
     * @param respondent The other party (the split's factory, or the order's buyer).
     * @param evidenceHash Hash of the claimant's evidence given at opening.
     * @param payout Amount credited to the factory by the ruling.
     * @param refund Amount credited back to the buyer by the ruling.
     */
    struct Dispute {
        uint256 jobId;
        uint64 splitId;
        DisputeStatus status;
        Fault fault;
        bool respondentHeard;
        uint16 votes;
        uint32 payoutPpm;
        uint48 openedAt;
        uint48 evidenceDeadline;
        uint48 rulingDeadline;
        address claimant;
        address respondent;
        bytes32 evidenceHash;
        uint128 payout;
        uint128 refund;
    }

    // ------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------

    IConsortium private immutable _consortium;
    IJobBoard private immutable _board;
    ISettlement private immutable _settlement;

    /// @notice Seconds after opening during which evidence is accepted.
    uint48 public immutable evidencePeriod;
    /// @notice Seconds after the evidence deadline during which votes are accepted.
    uint48 public immutable rulingPeriod;
    /// @notice Votes that make a ruling.
    uint16 public immutable quorum;

    uint256 private _disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => uint32[]) private _shares;
    mapping(uint256 disputeId => uint16[3]) private _faultVotes;
    mapping(uint256 disputeId => mapping(address auditor => bool)) private _voted;
    mapping(uint256 jobId => mapping(uint256 splitId => uint256 disputeId)) private _open;
    mapping(uint256 jobId => uint256 mask) private _frozen;
    mapping(uint256 jobId => mapping(uint256 splitId => mapping(address party => bool))) private _claimed;

    // ------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------

    /**
     * @param consortium_ Who is an active auditor.
     * @param jobBoard_ The orders and their parties.
     * @param settlement_ The escrow, which must already move escrow for `jobBoard_`.
     * @param evidencePeriod_ Seconds after opening during which evidence is accepted, > 0.
     * @param rulingPeriod_ Seconds after the evidence deadline during which votes are accepted, > 0.
     * @param quorum_ Votes that make a ruling, 1..{MAX_QUORUM}.
     * @dev Reverts with {ZeroAddress}, {InvalidPeriods}, {InvalidDisputeQuorum} or {BoardMismatch}.
     */
    constructor(
        IConsortium consortium_,
        IJobBoard jobBoard_,
        ISettlement settlement_,
        uint48 evidencePeriod_,
        uint48 rulingPeriod_,
        uint16 quorum_
    ) {
        if (
            address(consortium_) == address(0) || address(jobBoard_) == address(0)
                || address(settlement_) == address(0)
        ) revert ZeroAddress();
        if (evidencePeriod_ == 0 || rulingPeriod_ == 0) revert InvalidPeriods(evidencePeriod_, rulingPeriod_);
        if (quorum_ == 0 || quorum_ > MAX_QUORUM) revert InvalidDisputeQuorum(quorum_);
        address linked = settlement_.jobBoard();
        if (linked != address(jobBoard_)) revert BoardMismatch(address(jobBoard_), linked);
        _consortium = consortium_;
        _board = jobBoard_;
        _settlement = settlement_;
        evidencePeriod = evidencePeriod_;
        rulingPeriod = rulingPeriod_;
        quorum = quorum_;
    }

    // ------------------------------------------------------------------------------------
    // Parties
    // ------------------------------------------------------------------------------------

    /**
     * @notice Opens a dispute on split `splitId` of order `jobId`, as its buyer or the
     * split's factory; the split's payout is frozen until the dispute closes.
     * @param reason What is disputed (e.g. "late delivery", "failed inspection"), 1..{MAX_TEXT_BYTES} bytes.
     * @param evidenceHash Hash of the claimant's evidence (e.g. an audit report), nonzero.
     * @dev The order must be in production, delivered or expired and the split accepted
     * or delivered (a ruling can still close it). Reverts with the JobBoard's
     * `UnknownJob`, `UnknownSplit`, `JobNotInStatus` or `SplitNotInStatus`, or with
     * {NotJobParty}, {EmptyReason}, {TextTooLong}, {ZeroHash}, {DisputeAlreadyOpen} or
     * {AlreadyDisputed}.
     * @return disputeId The new dispute's id (from 1).
     */
    function openDispute(uint256 jobId, uint256 splitId, string calldata reason, bytes32 evidenceHash)
        external
        nonReentrant
        returns (uint256 disputeId)
    {
        address respondent = _respondent(jobId, splitId);
        if (bytes(reason).length == 0) revert EmptyReason();
        _checkText(bytes(reason).length);
        if (evidenceHash == bytes32(0)) revert ZeroHash();
        Dispute storage d;
        (disputeId, d) = _record(jobId, splitId, respondent, evidenceHash);
        emit DisputeOpened(
            disputeId, jobId, splitId, msg.sender, respondent, reason, evidenceHash, d.evidenceDeadline, d.rulingDeadline
        );
    }

    /**
     * @notice Adds evidence to open dispute `disputeId`, as its claimant or respondent,
     * until the evidence deadline. The respondent's first evidence opens the vote.
     * @param evidenceHash Hash of the evidence document, nonzero.
     * @param uri Where the evidence can be fetched (may be empty), at most {MAX_TEXT_BYTES} bytes.
     * @dev Reverts with {UnknownDispute}, {DisputeNotOpen}, {NotDisputeParty},
     * {EvidencePeriodOver}, {ZeroHash} or {TextTooLong}.
     */
    function submitEvidence(uint256 disputeId, bytes32 evidenceHash, string calldata uri) external nonReentrant {
        Dispute storage d = _openDispute(disputeId);
        if (msg.sender != d.claimant && msg.sender != d.respondent) revert NotDisputeParty(disputeId, msg.sender);
        if (block.timestamp > d.evidenceDeadline) revert EvidencePeriodOver(disputeId, d.evidenceDeadline);
        if (evidenceHash == bytes32(0)) revert ZeroHash();
        _checkText(bytes(uri).length);
        if (msg.sender == d.respondent && !d.respondentHeard) d.respondentHeard = true;
        emit EvidenceSubmitted(disputeId, d.jobId, d.splitId, msg.sender, evidenceHash, uri);
    }

    // ------------------------------------------------------------------------------------
    // Auditors
    // ------------------------------------------------------------------------------------

    /**
     * @notice Votes in dispute `disputeId` as an active auditor who is not a party to its
     * order. The vote that reaches {quorum} rules and has the Settlement apply the ruling.
     * @param payoutPpm Share of the split's amount to pay its factory, 0..1,000,000.
     * @param fault The party at fault, if any.
     * @dev Reverts with {UnknownDispute}, {DisputeNotOpen}, {RulingPeriodOver},
     * {VotingNotOpen}, {MissingRole}, {AuditorIsParty}, {AlreadyVoted} or
     * {InvalidPayoutShare}.
     */
    function vote(uint256 disputeId, uint32 payoutPpm, Fault fault) external nonReentrant {
        Dispute storage d = _openDispute(disputeId);
        if (block.timestamp > d.rulingDeadline) revert RulingPeriodOver(disputeId, d.rulingDeadline);
        if (!d.respondentHeard && block.timestamp <= d.evidenceDeadline) {
            revert VotingNotOpen(disputeId, d.evidenceDeadline);
        }
        if (!_consortium.hasRole(msg.sender, Roles.AUDITOR)) revert MissingRole(msg.sender, Roles.AUDITOR);
        if (isParty(d.jobId, msg.sender)) revert AuditorIsParty(disputeId, msg.sender);
        if (_voted[disputeId][msg.sender]) revert AlreadyVoted(disputeId, msg.sender);
        if (payoutPpm > Ppm.SCALE) revert InvalidPayoutShare(payoutPpm);

        _voted[disputeId][msg.sender] = true;
        _shares[disputeId].push(payoutPpm);
        _faultVotes[disputeId][uint8(fault)] += 1;
        uint16 votes = ++d.votes;
        emit VoteCast(disputeId, d.jobId, d.splitId, msg.sender, payoutPpm, fault);
        if (votes >= quorum) _rule(disputeId, d);
    }

    /**
     * @notice Closes open dispute `disputeId` without a ruling once its ruling deadline has
     * passed without a quorum; anyone may call it. The split is unfrozen.
     * @dev Reverts with {UnknownDispute}, {DisputeNotOpen} or {RulingPeriodNotOver}.
     */
    function lapse(uint256 disputeId) external nonReentrant {
        Dispute storage d = _openDispute(disputeId);
        if (block.timestamp <= d.rulingDeadline) revert RulingPeriodNotOver(disputeId, d.rulingDeadline);
        d.status = DisputeStatus.Lapsed;
        _unfreeze(d);
        emit DisputeLapsed(disputeId, d.jobId, d.splitId);
    }

    // ------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------

    /// @notice Number of disputes opened (ids run from 1).
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @notice Dispute `disputeId`; reverts with {UnknownDispute}.
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        return _dispute(disputeId);
    }

    /// @notice The payout shares voted so far in dispute `disputeId`, in voting order, and
    /// the votes per fault (none, buyer, factory); reverts with {UnknownDispute}.
    function votesOf(uint256 disputeId) external view returns (uint32[] memory shares, uint16[3] memory faults) {
        _dispute(disputeId);
        return (_shares[disputeId], _faultVotes[disputeId]);
    }

    /// @notice Whether `account` voted in dispute `disputeId`.
    function hasVoted(uint256 disputeId, address account) external view returns (bool) {
        return _voted[disputeId][account];
    }

    /// @notice The open dispute on split `splitId` of order `jobId` (0 if none).
    function openDisputeOf(uint256 jobId, uint256 splitId) external view returns (uint256) {
        return _open[jobId][splitId];
    }

    /// @inheritdoc IDisputes
    function isFrozen(uint256 jobId, uint256 splitId) external view returns (bool) {
        return _open[jobId][splitId] != 0;
    }

    /// @inheritdoc IDisputes
    function frozenSplits(uint256 jobId) external view returns (uint256) {
        return _frozen[jobId];
    }

    /// @notice Whether `account` is a party to order `jobId`: its buyer, its designer or
    /// the factory of one of its splits (such an auditor may not vote on it).
    function isParty(uint256 jobId, address account) public view returns (bool) {
        IJobBoard.Job memory j = _board.job(jobId);
        if (account == j.buyer || account == j.designer) return true;
        IJobBoard.Split[] memory splits = _board.splits(jobId);
        for (uint256 i = 0; i < splits.length; ++i) {
            if (splits[i].factory == account) return true;
        }
        return false;
    }

    /// @notice The Consortium, JobBoard and Settlement this contract uses.
    function links() external view returns (address consortium, address jobBoard, address settlement) {
        return (address(_consortium), address(_board), address(_settlement));
    }

    // ------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------

    /// @dev The respondent of a dispute the caller would open on split `splitId` of order
    /// `jobId`, after checking the caller is a party and the split can still be ruled on.
    function _respondent(uint256 jobId, uint256 splitId) private view returns (address respondent) {
        IJobBoard.Job memory j = _board.job(jobId);
        IJobBoard.Split memory s = _board.splitOf(jobId, splitId);
        if (msg.sender == j.buyer) respondent = s.factory;
        else if (msg.sender == s.factory) respondent = j.buyer;
        else revert NotJobParty(jobId, splitId, msg.sender);
        IJobBoard.JobStatus js = j.status;
        if (
            js != IJobBoard.JobStatus.InProduction && js != IJobBoard.JobStatus.Delivered
                && js != IJobBoard.JobStatus.Expired
        ) revert IJobBoard.JobNotInStatus(jobId, js);
        if (s.status != IJobBoard.SplitStatus.Accepted && s.status != IJobBoard.SplitStatus.Delivered) {
            revert IJobBoard.SplitNotInStatus(jobId, splitId, s.status);
        }
        uint256 current = _open[jobId][splitId];
        if (current != 0) revert DisputeAlreadyOpen(jobId, splitId, current);
        if (_claimed[jobId][splitId][msg.sender]) revert AlreadyDisputed(jobId, splitId, msg.sender);
    }

    /// @dev Stores a new open dispute by the caller and freezes its split.
    function _record(uint256 jobId, uint256 splitId, address respondent, bytes32 evidenceHash)
        private
        returns (uint256 disputeId, Dispute storage d)
    {
        disputeId = ++_disputeCount;
        uint48 evidenceDeadline = uint48(block.timestamp) + evidencePeriod;
        d = _disputes[disputeId];
        d.jobId = jobId;
        d.splitId = uint64(splitId);
        d.status = DisputeStatus.Open;
        d.openedAt = uint48(block.timestamp);
        d.evidenceDeadline = evidenceDeadline;
        d.rulingDeadline = evidenceDeadline + rulingPeriod;
        d.claimant = msg.sender;
        d.respondent = respondent;
        d.evidenceHash = evidenceHash;
        _open[jobId][splitId] = disputeId;
        _frozen[jobId] |= uint256(1) << splitId;
        _claimed[jobId][splitId][msg.sender] = true;
    }

    /// @dev Fixes the ruling from the votes, closes the dispute, then has the Settlement
    /// apply it (which tells the JobBoard the split is closed).
    function _rule(uint256 disputeId, Dispute storage d) private {
        uint256 jobId = d.jobId;
        uint256 splitId = d.splitId;
        uint32 share = _median(_shares[disputeId]);
        Fault fault = _majority(_faultVotes[disputeId], d.votes);
        (, uint256 amount) = _settlement.payee(jobId, splitId);
        uint128 payout = uint128((amount * share) / Ppm.SCALE);
        uint128 refund = uint128(amount) - payout;
        d.status = DisputeStatus.Ruled;
        d.payoutPpm = share;
        d.fault = fault;
        d.payout = payout;
        d.refund = refund;
        _unfreeze(d);
        emit DisputeRuled(disputeId, jobId, splitId, share, payout, refund, fault, d.votes);
        _settlement.applyRuling(jobId, splitId, payout);
    }

    function _unfreeze(Dispute storage d) private {
        delete _open[d.jobId][d.splitId];
        _frozen[d.jobId] &= ~(uint256(1) << d.splitId);
    }

    /// @dev The median of `shares`; with an even count, the mean of the two middle values
    /// rounded down. Insertion sort: at most {MAX_QUORUM} values.
    function _median(uint32[] storage shares) private view returns (uint32) {
        uint256 n = shares.length;
        uint32[] memory s = new uint32[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint32 v = shares[i];
            uint256 k = i;
            while (k > 0 && s[k - 1] > v) {
                s[k] = s[k - 1];
                --k;
            }
            s[k] = v;
        }
        if (n % 2 == 1) return s[n / 2];
        return uint32((uint256(s[n / 2 - 1]) + s[n / 2]) / 2);
    }

    /// @dev The fault named by more than half of `votes` votes, else {Fault-None}.
    function _majority(uint16[3] storage counts, uint16 votes) private view returns (Fault) {
        if (uint256(counts[uint8(Fault.Buyer)]) * 2 > votes) return Fault.Buyer;
        if (uint256(counts[uint8(Fault.Factory)]) * 2 > votes) return Fault.Factory;
        return Fault.None;
    }

    function _dispute(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status == DisputeStatus.None) revert UnknownDispute(disputeId);
    }

    function _openDispute(uint256 disputeId) private view returns (Dispute storage d) {
        d = _dispute(disputeId);
        if (d.status != DisputeStatus.Open) revert DisputeNotOpen(disputeId, d.status);
    }

    function _checkText(uint256 length) private pure {
        if (length > MAX_TEXT_BYTES) revert TextTooLong(length, MAX_TEXT_BYTES);
    }
}
