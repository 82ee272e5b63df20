// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {ICofabErrors} from "../common/Common.sol";

/**
 * @title ISettlement
 * @notice The escrow of cofab orders: its types, events and errors, and what the JobBoard
 * and the dispute process call. Implemented by Settlement. Shares are parts per million
 * ({Ppm-SCALE} = the whole price).
 */
interface ISettlement is ICofabErrors {
    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /// @notice Escrow of one order: `None` (never funded), `Held` (funded, not allocated),
    /// `Allocated` (shares fixed, splits open), `Closed` (nothing left to release or refund).
    enum EscrowStatus {
        None,
        Held,
        Allocated,
        Closed
    }

    /**
     * @notice A factory's claim on an order.
     * @param factory The split's factory.
     * @param sharePpm Its share of the price.
     * @param closed Whether the amount was released, refunded or ruled on.
     */
    struct Payee {
        address factory;
        uint32 sharePpm;
        bool closed;
    }

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /// @notice The deployer linked `jobBoard`, the only contract that moves escrow.
    event JobBoardLinked(address indexed jobBoard);

    /// @notice The deployer set `disputes`, the only contract that applies rulings.
    event DisputesLinked(address indexed disputes);

    /// @notice `buyer` paid `amount` of `token` into escrow for job `jobId`.
    event Deposited(uint256 indexed jobId, IERC20 indexed token, address indexed buyer, uint256 amount);

    /// @notice Split `splitId` of job `jobId` gives `factory` `sharePpm` of the price: `amount`.
    event ShareAllocated(
        uint256 indexed jobId, uint256 splitId, address indexed factory, uint32 sharePpm, uint256 amount
    );

    /// @notice The designer's royalty and the platform fee of job `jobId` (the fee includes
    /// the rounding remainder, so all amounts sum to the price).
    event FeesAllocated(
        uint256 indexed jobId,
        address indexed designer,
        uint32 royaltyPpm,
        uint256 royaltyAmount,
        address indexed platform,
        uint32 feePpm,
        uint256 feeAmount
    );

    /// @notice `amount` was credited to `factory` for split `splitId` of job `jobId`.
    event SplitReleased(uint256 indexed jobId, uint256 splitId, address indexed factory, uint256 amount);

    /// @notice The last split of job `jobId` closed: `royaltyAmount` credited to `designer`
    /// and `feeAmount` to `platform` (zero when they were refunded).
    event FeesReleased(
        uint256 indexed jobId,
        address indexed designer,
        uint256 royaltyAmount,
        address indexed platform,
        uint256 feeAmount
    );

    /// @notice `amount` of job `jobId` was credited back to `buyer`.
    event Refunded(uint256 indexed jobId, address indexed buyer, uint256 amount);

    /// @notice A ruling closed split `splitId` of job `jobId`: `payout` of its `amount`
    /// credited to `factory`, `refund` credited to the buyer.
    event RulingApplied(
        uint256 indexed jobId,
        uint256 splitId,
        address indexed factory,
        uint256 amount,
        uint256 payout,
        uint256 refund
    );

    /// @notice `account` withdrew `amount` of `token`.
    event Withdrawn(IERC20 indexed token, address indexed account, uint256 amount);

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    /// @notice `caller` is not the deployer of the Settlement.
    error NotDeployer(address caller);
    /// @notice Already linked to `current`.
    error AlreadyLinked(address current);
    /// @notice `caller` is not the JobBoard.
    error NotJobBoard(address caller);
    /// @notice `caller` may not apply dispute rulings.
    error NotDisputes(address caller);
    /// @notice Platform fee `feePpm` ppm must be below 1000000.
    error InvalidFee(uint32 feePpm);
    /// @notice Job `jobId` is already funded.
    error EscrowExists(uint256 jobId);
    /// @notice The escrow of job `jobId` is `status`, which does not allow this.
    error EscrowNotInStatus(uint256 jobId, EscrowStatus status);
    /// @notice The deposit of job `jobId` brought `received` instead of `expected` (fee-on-transfer
    /// tokens are not supported).
    error DepositShortfall(uint256 jobId, uint256 expected, uint256 received);
    /// @notice Split `splitId` needs a factory and a positive share.
    error InvalidShare(uint256 splitId);
    /// @notice The shares sum to `total` ppm: the splits, the designer royalty and the platform fee
    /// must sum to exactly 1000000.
    error SharesDoNotSum(uint256 total);
    /// @notice Split `splitId` of job `jobId` is already paid, refunded or ruled on.
    error SplitClosed(uint256 jobId, uint256 splitId);
    /// @notice Job `jobId` has no split `splitId`.
    error NoSuchPayee(uint256 jobId, uint256 splitId);
    /// @notice Payout `payout` exceeds the split's amount `amount`.
    error PayoutTooHigh(uint256 payout, uint256 amount);
    /// @notice The amount must be positive.
    error ZeroAmount();
    /// @notice `account` has `available` to withdraw, less than the `requested` asked for.
    error InsufficientCredit(address account, uint256 available, uint256 requested);
    /// @notice Split `splitId` of job `jobId` is under an open dispute: its payout is frozen until
    /// the dispute is ruled on or lapses.
    error SplitFrozen(uint256 jobId, uint256 splitId);

    // ------------------------------------------------------------------------------------
    // Functions
    // ------------------------------------------------------------------------------------

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

    /// @notice The JobBoard allowed to move escrow (zero until linked).
    function jobBoard() external view returns (address);

    /// @notice The payee of split `splitId` of job `jobId` and the amount it is owed.
    function payee(uint256 jobId, uint256 splitId) external view returns (Payee memory p, uint256 amount);
}

/**
 * @title ISettlementHooks
 * @notice What the Settlement tells the JobBoard when a ruling closes a split.
 */
interface ISettlementHooks {
    /// @notice A ruling closed split `splitId` of job `jobId`, paying `payout` to its factory.
    function onSplitRuled(uint256 jobId, uint256 splitId, uint128 payout) external;
}
