// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Ppm} from "./common/Common.sol";
import {IDisputes} from "./interfaces/IDisputes.sol";
import {ISettlement, ISettlementHooks} from "./interfaces/ISettlement.sol";
import {ISplits} from "./interfaces/ISplits.sol";

/**
 * @title Settlement
 * @notice Escrow and revenue sharing of cofab orders.
 *
 * The buyer's payment for an order is held here in an ERC-20 token. When the order is
 * split, its price is divided into contribution shares on a 1e6 scale (like 0xSplits):
 * one share per split for its factory, the designer's royalty (from the design licence)
 * and the platform fee, which together must sum to exactly 1,000,000. Each split's amount
 * is `price * share / 1e6` (rounded down); the royalty likewise; the platform fee takes
 * what is left, so the amounts sum to the price exactly.
 *
 * A split's amount is credited to its factory when the buyer accepts its delivery; the
 * royalty and the fee when the last split closes. Cancellation and expiry credit the
 * buyer with a refund. A dispute ruling closes one split, paying its factory any part of
 * its amount and refunding the rest. Credits are withdrawn by their owners (pull
 * payments) with {withdraw}.
 *
 * Conservation, per token, holds after every transaction:
 * `deposited == released + refunded + held` (see {totals}), the token balance of this
 * contract is at least `held + released + refunded - withdrawn`, and no account withdraws
 * more than it was credited (see {accountOf}).
 *
 * @dev Only the JobBoard (set once by the deployer with {setJobBoard}) moves escrow, and
 * only the disputes address (set once with {setDisputes}) applies rulings. While the
 * disputes contract reports a split frozen ({IDisputes-isFrozen}: a dispute on it is open),
 * its amount is neither released nor refunded ({SplitFrozen}); a disputes address without
 * code (an arbiter account) freezes nothing. Token
 * transfers use SafeERC20, so a token that returns false is refused, and a deposit must
 * arrive in full (fee-on-transfer tokens are refused). Functions that call the token are
 * non-reentrant and follow checks-effects-interactions.
 *
 * Gas: a split's factory and share are stored once, by the JobBoard, which fixes them
 * when the order is split; this contract checks that they sum to 1e6 in that same
 * transaction, keeps one bit per split (closed or not) in the escrow's buyer slot, and
 * reads the factory and share back from the JobBoard ({ISplits-payeeOf}) when it pays or
 * refunds a split: one call (about 1,500 gas; 2,600 more when the transaction has not
 * touched the JobBoard yet, as a ruling's has not) instead of a slot of its own per split
 * (22,100 gas when the order is split).
 */
contract Settlement is ISettlement, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The whole of a price in parts per million.
    uint32 public constant SCALE = Ppm.SCALE;
    /// @notice Most splits per order (a split's dependencies are a 64-bit mask).
    uint256 public constant MAX_SPLITS = 64;

    /**
     * @notice The escrow of an order.
     * @param token The payment token.
     * @param status Lifecycle of the escrow.
     * @param splitCount Number of splits (payees besides the designer and the platform).
     * @param openSplits Splits neither released, refunded nor ruled yet.
     * @param royaltyPpm The designer's share.
     * @param feePpm The platform's share (fixed when the order was funded).
     * @param buyer Who paid and receives refunds.
     * @param closedSplits Bit `i` set: split `i`'s amount was released, refunded or ruled on.
     * @param designer Who receives the royalty.
     * @param deposited Amount paid in.
     * @param held Amount still in escrow for this order.
     * @param royaltyAmount Royalty credited when the last split closes (zeroed if refunded).
     * @param feeAmount Fee credited when the last split closes (zeroed if refunded).
     */
    struct Escrow {
        IERC20 token;
        EscrowStatus status;
        uint8 splitCount;
        uint8 openSplits;
        uint32 royaltyPpm;
        uint32 feePpm;
        address buyer;
        uint64 closedSplits;
        address designer;
        uint128 deposited;
        uint128 held;
        uint128 royaltyAmount;
        uint128 feeAmount;
    }

    /**
     * @notice Escrow figures of one token.
     * @param deposited Paid in by buyers.
     * @param released Credited to factories, designers and the platform.
     * @param refunded Credited back to buyers.
     * @param held Still in escrow.
     * @param withdrawn Paid out of the contract by {withdraw}.
     */
    struct Totals {
        uint256 deposited;
        uint256 released;
        uint256 refunded;
        uint256 held;
        uint256 withdrawn;
    }

    /// @notice The account that deployed this contract; it links the JobBoard and the disputes.
    address public immutable deployer;
    /// @inheritdoc ISettlement
    IERC20 public immutable defaultToken;
    /// @notice Who receives the platform fee.
    address public immutable platform;
    /// @inheritdoc ISettlement
    uint32 public immutable platformFeePpm;

    /// @notice The JobBoard allowed to move escrow (zero until linked).
    address public jobBoard;
    /// @notice The contract allowed to apply dispute rulings (zero until set).
    address public disputes;

    mapping(uint256 jobId => Escrow) private _escrows;
    mapping(IERC20 token => Totals) private _totals;
    mapping(IERC20 token => mapping(address account => uint256)) private _credited;
    mapping(IERC20 token => mapping(address account => uint256)) private _withdrawn;

    // ------------------------------------------------------------------------------------
    // Set-up
    // ------------------------------------------------------------------------------------

    /**
     * @param defaultToken_ The token orders use when they name none (zero: orders must name one).
     * @param platform_ Who receives the platform fee.
     * @param platformFeePpm_ The platform fee in parts per million, below 1e6.
     */
    constructor(IERC20 defaultToken_, address platform_, uint32 platformFeePpm_) {
        if (platform_ == address(0)) revert ZeroAddress();
        if (platformFeePpm_ >= SCALE) revert InvalidFee(platformFeePpm_);
        deployer = msg.sender;
        defaultToken = defaultToken_;
        platform = platform_;
        platformFeePpm = platformFeePpm_;
    }

    /// @notice Links the JobBoard, once. Deployer only.
    function setJobBoard(address jobBoard_) external {
        _checkDeployer();
        if (jobBoard_ == address(0)) revert ZeroAddress();
        if (jobBoard != address(0)) revert AlreadyLinked(jobBoard);
        jobBoard = jobBoard_;
        emit JobBoardLinked(jobBoard_);
    }

    /// @notice Sets the contract that applies dispute rulings, once. Deployer only.
    function setDisputes(address disputes_) external {
        _checkDeployer();
        if (disputes_ == address(0)) revert ZeroAddress();
        if (disputes != address(0)) revert AlreadyLinked(disputes);
        disputes = disputes_;
        emit DisputesLinked(disputes_);
    }

    // ------------------------------------------------------------------------------------
    // Escrow, driven by the JobBoard
    // ------------------------------------------------------------------------------------

    /// @inheritdoc ISettlement
    /// @dev Reverts with {EscrowExists}, {ZeroAmount}, {DepositShortfall} or SafeERC20's
    /// `SafeERC20FailedOperation` (a token that returns false).
    function deposit(uint256 jobId, IERC20 token, address buyer, uint128 amount) external nonReentrant {
        _checkJobBoard();
        Escrow storage e = _escrows[jobId];
        if (e.status != EscrowStatus.None) revert EscrowExists(jobId);
        if (amount == 0) revert ZeroAmount();
        e.token = token;
        e.status = EscrowStatus.Held;
        e.feePpm = platformFeePpm;
        e.buyer = buyer;
        e.deposited = amount;
        e.held = amount;
        Totals storage t = _totals[token];
        t.deposited += amount;
        t.held += amount;
        emit Deposited(jobId, token, buyer, amount);

        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(buyer, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert DepositShortfall(jobId, amount, received);
    }

    /// @inheritdoc ISettlement
    /// @dev Reverts with {EscrowNotInStatus}, {InvalidSplitCount}, {InvalidShare} or
    /// {SharesDoNotSum}.
    function allocate(
        uint256 jobId,
        address designer,
        uint32 royaltyPpm,
        address[] calldata factories,
        uint32[] calldata sharesPpm
    ) external {
        _checkJobBoard();
        Escrow storage e = _escrows[jobId];
        if (e.status != EscrowStatus.Held) revert EscrowNotInStatus(jobId, e.status);
        uint256 n = factories.length;
        if (n == 0 || n > MAX_SPLITS || sharesPpm.length != n) revert InvalidSplitCount(n);

        uint256 price = e.deposited;
        (uint256 total, uint256 allocated) = _allocateShares(jobId, price, factories, sharesPpm);
        total += uint256(royaltyPpm) + e.feePpm;
        if (total != SCALE) revert SharesDoNotSum(total);
        if (royaltyPpm != 0 && designer == address(0)) revert ZeroAddress();

        uint256 royaltyAmount = (price * royaltyPpm) / SCALE;
        uint256 feeAmount = price - allocated - royaltyAmount;
        e.status = EscrowStatus.Allocated;
        e.splitCount = uint8(n);
        e.openSplits = uint8(n);
        e.royaltyPpm = royaltyPpm;
        e.designer = designer;
        e.royaltyAmount = uint128(royaltyAmount);
        e.feeAmount = uint128(feeAmount);
        emit FeesAllocated(jobId, designer, royaltyPpm, royaltyAmount, platform, e.feePpm, feeAmount);
    }

    /// @inheritdoc ISettlement
    /// @dev Reverts with {EscrowNotInStatus}, {NoSuchPayee}, {SplitClosed} or {SplitFrozen}.
    function release(uint256 jobId, uint256 splitId) external returns (bool jobClosed) {
        _checkJobBoard();
        (Escrow storage e, address factory, uint256 amount) = _openPayee(jobId, splitId);
        if ((_frozenSplits(jobId) >> splitId) & 1 == 1) revert SplitFrozen(jobId, splitId);
        e.closedSplits |= uint64(1) << splitId;
        e.held -= uint128(amount);
        Totals storage t = _totals[e.token];
        t.held -= amount;
        t.released += amount;
        _credited[e.token][factory] += amount;
        emit SplitReleased(jobId, splitId, factory, amount);
        return _closeSplit(jobId, e);
    }

    /// @inheritdoc ISettlement
    /// @dev A `Held` escrow is refunded in full. Reverts with {EscrowNotInStatus} for an
    /// escrow that is not held or allocated, and with {SplitFrozen} if a split it would
    /// refund is under an open dispute.
    function refund(uint256 jobId, uint256 keepMask) external returns (uint256 refunded) {
        _checkJobBoard();
        Escrow storage e = _escrows[jobId];
        if (e.status == EscrowStatus.Held) {
            refunded = e.held;
            e.status = EscrowStatus.Closed;
        } else if (e.status == EscrowStatus.Allocated) {
            uint256 n = e.splitCount;
            uint256 price = e.deposited;
            uint8 closedNow = 0;
            uint256 frozen = _frozenSplits(jobId);
            uint64 closed = e.closedSplits;
            for (uint256 i = 0; i < n; ++i) {
                if ((closed >> i) & 1 == 1 || (keepMask >> i) & 1 == 1) continue;
                if ((frozen >> i) & 1 == 1) revert SplitFrozen(jobId, i);
                closed |= uint64(1) << i;
                (, uint32 share) = ISplits(jobBoard).payeeOf(jobId, i);
                refunded += (price * share) / SCALE;
                ++closedNow;
            }
            e.closedSplits = closed;
            // The royalty and the fee are earned by a completed order only.
            refunded += uint256(e.royaltyAmount) + e.feeAmount;
            e.royaltyAmount = 0;
            e.feeAmount = 0;
            e.openSplits -= closedNow;
            if (e.openSplits == 0) e.status = EscrowStatus.Closed;
        } else {
            revert EscrowNotInStatus(jobId, e.status);
        }
        e.held -= uint128(refunded);
        _refund(jobId, e, refunded);
    }

    // ------------------------------------------------------------------------------------
    // Dispute rulings
    // ------------------------------------------------------------------------------------

    /// @inheritdoc ISettlement
    /// @dev Reverts with {NotDisputes}, {EscrowNotInStatus}, {NoSuchPayee}, {SplitClosed} or
    /// {PayoutTooHigh}; the JobBoard may refuse the ruling for the split's state.
    function applyRuling(uint256 jobId, uint256 splitId, uint128 payout) external nonReentrant {
        if (msg.sender != disputes || disputes == address(0)) revert NotDisputes(msg.sender);
        (Escrow storage e, address factory, uint256 amount) = _openPayee(jobId, splitId);
        if (payout > amount) revert PayoutTooHigh(payout, amount);
        uint256 back = amount - payout;
        e.closedSplits |= uint64(1) << splitId;
        e.held -= uint128(amount);
        Totals storage t = _totals[e.token];
        t.held -= payout;
        t.released += payout;
        _credited[e.token][factory] += payout;
        emit RulingApplied(jobId, splitId, factory, amount, payout, back);
        _refund(jobId, e, back);
        _closeSplit(jobId, e);

        ISettlementHooks(jobBoard).onSplitRuled(jobId, splitId, payout);
    }

    // ------------------------------------------------------------------------------------
    // Withdrawals
    // ------------------------------------------------------------------------------------

    /**
     * @notice Withdraws `amount` of `token` credited to the caller.
     * @dev Reverts with {ZeroAmount}, {InsufficientCredit} or SafeERC20's
     * `SafeERC20FailedOperation` (then nothing changes).
     */
    function withdraw(IERC20 token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 available = _credited[token][msg.sender] - _withdrawn[token][msg.sender];
        if (amount > available) revert InsufficientCredit(msg.sender, available, amount);
        _withdrawn[token][msg.sender] += amount;
        _totals[token].withdrawn += amount;
        emit Withdrawn(token, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------

    /// @notice What `account` may withdraw of `token` now.
    function balanceOf(IERC20 token, address account) external view returns (uint256) {
        return _credited[token][account] - _withdrawn[token][account];
    }

    /// @notice Everything ever credited to `account` in `token`, and what it withdrew.
    function accountOf(IERC20 token, address account)
        external
        view
        returns (uint256 credited, uint256 withdrawn)
    {
        return (_credited[token][account], _withdrawn[token][account]);
    }

    /// @notice The escrow figures of `token` (see the conservation rule above).
    function totals(IERC20 token) external view returns (Totals memory) {
        return _totals[token];
    }

    /// @notice The escrow of job `jobId` (all zero if never funded).
    function escrow(uint256 jobId) external view returns (Escrow memory) {
        return _escrows[jobId];
    }

    /// @notice The payee of split `splitId` of job `jobId` and its amount.
    function payee(uint256 jobId, uint256 splitId)
        external
        view
        returns (Payee memory p, uint256 amount)
    {
        Escrow storage e = _escrows[jobId];
        if (e.status < EscrowStatus.Allocated || splitId >= e.splitCount) return (p, 0);
        (address factory, uint32 share) = ISplits(jobBoard).payeeOf(jobId, splitId);
        p = Payee(factory, share, (e.closedSplits >> splitId) & 1 == 1);
        amount = (uint256(e.deposited) * share) / SCALE;
    }

    // ------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------

    function _checkDeployer() private view {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
    }

    /// @dev The splits of job `jobId` the disputes contract holds frozen (none without one).
    function _frozenSplits(uint256 jobId) private view returns (uint256) {
        address d = disputes;
        if (d == address(0) || d.code.length == 0) return 0;
        return IDisputes(d).frozenSplits(jobId);
    }

    function _checkJobBoard() private view {
        if (msg.sender != jobBoard || jobBoard == address(0)) revert NotJobBoard(msg.sender);
    }

    /// @dev The escrow, factory and amount of an open split of an allocated escrow.
    function _openPayee(uint256 jobId, uint256 splitId)
        private
        view
        returns (Escrow storage e, address factory, uint256 amount)
    {
        e = _escrows[jobId];
        if (e.status != EscrowStatus.Allocated) revert EscrowNotInStatus(jobId, e.status);
        if (splitId >= e.splitCount) revert NoSuchPayee(jobId, splitId);
        if ((e.closedSplits >> splitId) & 1 == 1) revert SplitClosed(jobId, splitId);
        uint32 share;
        (factory, share) = ISplits(jobBoard).payeeOf(jobId, splitId);
        amount = (uint256(e.deposited) * share) / SCALE;
    }

    /// @dev Checks and announces one payee per split (the JobBoard stores them); returns
    /// the sum of the shares and of the amounts.
    function _allocateShares(
        uint256 jobId,
        uint256 price,
        address[] calldata factories,
        uint32[] calldata sharesPpm
    ) private returns (uint256 total, uint256 allocated) {
        uint256 n = factories.length;
        for (uint256 i = 0; i < n; ++i) {
            uint32 share = sharesPpm[i];
            address factory = factories[i];
            if (share == 0 || factory == address(0)) revert InvalidShare(i);
            total += share;
            uint256 amount = (price * share) / SCALE;
            allocated += amount;
            emit ShareAllocated(jobId, i, factory, share, amount);
        }
    }

    /// @dev Credits `amount` back to the buyer (the escrow's `held` is already reduced).
    function _refund(uint256 jobId, Escrow storage e, uint256 amount) private {
        if (amount == 0) return;
        Totals storage t = _totals[e.token];
        t.held -= amount;
        t.refunded += amount;
        _credited[e.token][e.buyer] += amount;
        emit Refunded(jobId, e.buyer, amount);
    }

    /// @dev One more split closed; the last one releases the royalty and the fee.
    function _closeSplit(uint256 jobId, Escrow storage e) private returns (bool jobClosed) {
        uint8 open = e.openSplits - 1;
        e.openSplits = open;
        if (open != 0) return false;
        uint256 royaltyAmount = e.royaltyAmount;
        uint256 feeAmount = e.feeAmount;
        IERC20 token = e.token;
        e.status = EscrowStatus.Closed;
        e.held -= uint128(royaltyAmount + feeAmount);
        Totals storage t = _totals[token];
        t.held -= royaltyAmount + feeAmount;
        t.released += royaltyAmount + feeAmount;
        if (royaltyAmount != 0) _credited[token][e.designer] += royaltyAmount;
        if (feeAmount != 0) _credited[token][platform] += feeAmount;
        emit FeesReleased(jobId, e.designer, royaltyAmount, platform, feeAmount);
        return true;
    }
}
