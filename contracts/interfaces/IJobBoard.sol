// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {ICofabErrors} from "../common/Common.sol";
import {ISplits} from "./ISplits.sol";

/**
 * @title IJobBoard
 * @notice The orders of a cofab consortium: their types, events and errors, and what the
 * dispute process reads of them. Implemented by JobBoard.
 */
interface IJobBoard is ISplits, ICofabErrors {
    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /// @notice Lifecycle of an order. `Accepted` is passed through in the transaction that
    /// accepts the last delivery, which also settles the order.
    enum JobStatus {
        None,
        Created,
        Funded,
        Split,
        InProduction,
        Delivered,
        Accepted,
        Settled,
        Cancelled,
        Expired
    }

    /// @notice Lifecycle of a split: assigned to a factory, accepted by it, delivered, then
    /// paid (the buyer accepted the delivery), ruled on (a dispute ruling closed it) or
    /// refunded (the order was cancelled or expired before delivery).
    enum SplitStatus {
        None,
        Assigned,
        Accepted,
        Delivered,
        Paid,
        Ruled,
        Refunded
    }

    /**
     * @notice An order.
     * @param buyer Who placed, paid and accepts it.
     * @param deadline Delivery deadline (unix time).
     * @param status Lifecycle status.
     * @param splitCount Number of splits.
     * @param acceptedCount Splits accepted by their factory.
     * @param deliveredCount Splits delivered.
     * @param closedCount Splits paid, ruled on or refunded.
     * @param token The ERC-20 it is paid in.
     * @param quantity Units ordered.
     * @param royaltyPpm The designer's royalty, read from the licence when the order was placed.
     * @param designer The design's registrant, who receives the royalty.
     * @param reviewPeriod Seconds the buyer has, after a split is delivered, to accept or
     * dispute it; after them anyone may finalise the delivery as accepted.
     * @param price The price, in token units.
     * @param splitBlock The block in which the order was split (0 before): its
     * {SplitAssigned} events, one per split, carry the splits' step labels.
     * @param designId The licensed design (SHA-256 of the design file).
     */
    struct Job {
        address buyer;
        uint48 deadline;
        JobStatus status;
        uint8 splitCount;
        uint8 acceptedCount;
        uint8 deliveredCount;
        uint8 closedCount;
        IERC20 token;
        uint64 quantity;
        uint32 royaltyPpm;
        address designer;
        uint32 reviewPeriod;
        uint128 price;
        uint64 splitBlock;
        bytes32 designId;
    }

    /**
     * @notice A split of an order.
     * @param factory The factory doing it.
     * @param status Lifecycle status.
     * @param dependsOn Bit `i` set: needs the output of split `i`.
     * @param quantity Units of this step or lot.
     * @param received Bit `i` set: the output lots of split `i` were handed over to this split.
     * @param sharePpm The factory's share of the price.
     * @param deliveredAt When it was delivered (0: never). Kept when a ruling closes the split,
     * so a split delivered and then ruled on still counts as delivered for its dependents.
     * @param handedTo Bit `j` set: this split's output lots were handed over to split `j`.
     * @param handedQuantity Units of its output handed over so far, to all its dependents
     * (at most `quantity`).
     * @dev What {splitOf} and {splits} return. The split's step label is not part of it:
     * it is in the split's {SplitAssigned} event, in the block the order's `splitBlock`
     * gives.
     */
    struct Split {
        address factory;
        SplitStatus status;
        uint64 dependsOn;
        uint64 quantity;
        uint64 received;
        uint32 sharePpm;
        uint48 deliveredAt;
        uint64 handedTo;
        uint64 handedQuantity;
    }

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /**
     * @notice `buyer` placed order `jobId` for `quantity` units of design `designId`
     * (licensed to it with `royaltyPpm` for `designer`) at `price` in `token`, to be
     * delivered by `deadline`; `specHash` is the hash of the off-chain order document.
     */
    event JobCreated(
        uint256 indexed jobId,
        address indexed buyer,
        bytes32 indexed designId,
        address designer,
        uint32 royaltyPpm,
        IERC20 token,
        uint64 quantity,
        uint128 price,
        uint48 deadline,
        bytes32 specHash
    );

    /// @notice Order `jobId` gives its buyer `reviewPeriod` seconds after each delivery to
    /// accept or dispute it.
    event ReviewPeriodSet(uint256 indexed jobId, uint32 reviewPeriod);

    /// @notice Order `jobId` moved to `status`.
    event JobStatusChanged(uint256 indexed jobId, JobStatus status);

    /// @notice Split `splitId` of order `jobId`: `factory` does `quantity` of `step` for
    /// `sharePpm` of the price, after the splits in the `dependsOn` mask.
    /// @dev The only record of the step label (contract storage does not keep it): query
    /// it by `jobId` at the block `job(jobId).splitBlock` gives.
    event SplitAssigned(
        uint256 indexed jobId,
        uint256 splitId,
        address indexed factory,
        bytes32 step,
        uint64 quantity,
        uint32 sharePpm,
        uint64 dependsOn
    );

    /// @notice `factory` accepted split `splitId` of order `jobId`; `relayer` sent the
    /// transaction (the factory itself, or whoever relayed its signed acceptance).
    event SplitAccepted(uint256 indexed jobId, uint256 splitId, address indexed factory, address relayer);

    /// @notice Lot `lot` (`quantity` units) of split `fromSplit` passed to split `toSplit` of
    /// order `jobId`, signed by `fromSigner` and `toSigner` (the factories or their device keys).
    event CustodyHandedOver(
        uint256 indexed jobId,
        uint256 fromSplit,
        uint256 toSplit,
        bytes32 lot,
        uint64 quantity,
        address fromSigner,
        address toSigner
    );

    /// @notice `factory` delivered split `splitId` of order `jobId`; `evidenceHash` is the
    /// hash of its delivery note or QC evidence (zero if none).
    event SplitDelivered(uint256 indexed jobId, uint256 splitId, address indexed factory, bytes32 evidenceHash);

    /// @notice The buyer accepted the delivery of split `splitId` of order `jobId`.
    event DeliveryAccepted(uint256 indexed jobId, uint256 splitId, address indexed buyer);

    /// @notice The review period of the delivery of split `splitId` of order `jobId` passed
    /// without acceptance or an open dispute: `caller` finalised it as accepted.
    event DeliveryFinalized(uint256 indexed jobId, uint256 splitId, address indexed caller);

    /// @notice `factory` revoked the acceptance nonces set in `mask` of word `wordPos`.
    event NoncesInvalidated(address indexed factory, uint256 wordPos, uint256 mask);

    /// @notice A dispute ruling closed split `splitId` of order `jobId`, paying `payout`.
    event SplitRuled(uint256 indexed jobId, uint256 splitId, uint128 payout);

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    /// @notice Design `designId` is not licensed to `licensee`.
    error DesignNotLicensed(bytes32 designId, address licensee);
    /// @notice The royalty (`royaltyPpm` ppm) and the platform fee (`feePpm` ppm) leave nothing for
    /// the factories.
    error FeesTooHigh(uint32 royaltyPpm, uint32 feePpm);
    /// @notice Token `token` is not a contract (name an ERC-20 with --token).
    error InvalidToken(address token);
    /// @notice Quantity and price must be positive.
    error ZeroQuantityOrPrice();
    /// @notice Deadline `deadline` is not in the future.
    error InvalidDeadline(uint256 deadline);
    /// @notice There is no job `jobId`.
    error UnknownJob(uint256 jobId);
    /// @notice `caller` is not the buyer of job `jobId`.
    error NotJobBuyer(uint256 jobId, address caller);
    /// @notice Job `jobId` is `status`, which does not allow this.
    error JobNotInStatus(uint256 jobId, JobStatus status);
    /// @notice Split `splitId` of job `jobId` is `status`, which does not allow this.
    error SplitNotInStatus(uint256 jobId, uint256 splitId, SplitStatus status);
    /// @notice The deadline of job `jobId` (`deadline`) has passed.
    error JobDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice Job `jobId` cannot expire before its deadline (`deadline`).
    error NotYetExpired(uint256 jobId, uint256 deadline);
    /// @notice Split `splitId` has a zero quantity.
    error ZeroSplitQuantity(uint256 splitId);
    /// @notice Split `splitId` may depend only on earlier splits (mask `dependsOn`).
    error InvalidDependencies(uint256 splitId, uint64 dependsOn);
    /// @notice Split `splitId` of job `jobId` needs split `dependency` delivered first.
    error DependencyNotDelivered(uint256 jobId, uint256 splitId, uint256 dependency);
    /// @notice Split `splitId` of job `jobId` has not received the lots of split `dependency`: hand
    /// them over first.
    error LotsNotReceived(uint256 jobId, uint256 splitId, uint256 dependency);
    /// @notice Split `toSplit` of job `jobId` does not depend on split `fromSplit`.
    error NotADependency(uint256 jobId, uint256 fromSplit, uint256 toSplit);
    /// @notice The lots of split `fromSplit` of job `jobId` were already handed over to split
    /// `toSplit`.
    error AlreadyHandedOver(uint256 jobId, uint256 fromSplit, uint256 toSplit);
    /// @notice The signature expired at `deadline`.
    error SignatureExpired(uint256 deadline);
    /// @notice The acceptance of split `splitId` of job `jobId` is signed by `signer`, not by its
    /// factory.
    error InvalidAcceptanceSignature(uint256 jobId, uint256 splitId, address signer);
    /// @notice The hand-over lacks the signature of the factory of split `splitId` of job `jobId`.
    error HandoverNotSigned(uint256 jobId, uint256 splitId);
    /// @notice `signer` may not sign hand-overs for the factory of split `splitId` of job `jobId`.
    error InvalidHandoverSignature(uint256 jobId, uint256 splitId, address signer);
    /// @notice Nonce `nonce` of `factory` is already used or revoked: sign the acceptance again.
    error NonceAlreadyUsed(address factory, uint256 nonce);
    /// @notice Split `splitId` of job `jobId` has `available` units left to hand over, not
    /// `quantity`.
    error HandoverExceedsQuantity(uint256 jobId, uint256 splitId, uint256 quantity, uint256 available);
    /// @notice Review period `reviewPeriod` s exceeds 365 days.
    error InvalidReviewPeriod(uint256 reviewPeriod);
    /// @notice The buyer may review the delivery of split `splitId` of job `jobId` until
    /// `reviewEnds`.
    error ReviewPeriodNotOver(uint256 jobId, uint256 splitId, uint256 reviewEnds);
    /// @notice `caller` is not the Settlement.
    error NotSettlement(address caller);

    // ------------------------------------------------------------------------------------
    // Functions
    // ------------------------------------------------------------------------------------

    /// @notice Order `jobId`; reverts with {UnknownJob} if there is none.
    function job(uint256 jobId) external view returns (Job memory);

    /// @notice Every split of order `jobId`, by index; reverts with {UnknownJob}.
    function splits(uint256 jobId) external view returns (Split[] memory);

    /// @notice Split `splitId` of order `jobId`; reverts with {UnknownJob} or {UnknownSplit}.
    function splitOf(uint256 jobId, uint256 splitId) external view returns (Split memory);
}
