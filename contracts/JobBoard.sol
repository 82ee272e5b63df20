// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Ppm, Roles} from "./common/Common.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDesignLicences} from "./interfaces/IDesignLicences.sol";
import {IJobBoard} from "./interfaces/IJobBoard.sol";
import {ISettlement, ISettlementHooks} from "./interfaces/ISettlement.sol";
import {ISplits} from "./interfaces/ISplits.sol";

/**
 * @title JobBoard
 * @notice Orders of a cofab consortium, split by process step across factories.
 *
 * A buyer (an active BUYER member) places an order for a design licensed to it: design,
 * quantity, price, delivery deadline, review period and payment token. The buyer funds it (the price goes
 * into escrow in the {Settlement}) and splits it: one split per process step or lot, each
 * with a factory (an active FACTORY member), a step label, a quantity, a share of the price
 * (parts per million; with the designer's royalty and the platform fee they sum to exactly
 * 1e6) and dependencies on earlier splits, which makes the splits a DAG.
 *
 * Each factory accepts its split, by transaction ({acceptSplit}) or by an EIP-712 signed
 * acceptance anyone may relay ({acceptSplitWithSig}). When every split is accepted the
 * order is in production. The output lots of a split pass to a split that depends on it
 * only when both factories sign the hand-over ({handover}); a split hands over at most
 * the quantity it was assigned, in total over its dependents. A split is delivered
 * ({deliver}) only after each of its dependencies was delivered (a later ruling on it does
 * not undo that) and handed over to it. The buyer accepts each delivery
 * ({acceptDelivery}), which releases that split's amount to its factory; the last one also
 * releases the royalty and the fee: the order is then accepted and settled. A buyer who
 * neither accepts nor disputes a delivery within the order's review period does not keep
 * the money in escrow: after it anyone may finalise the delivery as accepted
 * ({finalizeDelivery}), unless a dispute on the split is open.
 *
 * Order lifecycle: Created → Funded → Split → InProduction → Delivered → Accepted →
 * Settled; the buyer may cancel (full refund) until production starts, and anyone may
 * expire an order whose deadline passed before it was fully delivered (refund of what was
 * not delivered). Every transition emits {JobStatusChanged}.
 *
 * @dev EIP-712 domain: name "cofab", version "1", the chain id and this contract. Replayed
 * acceptances are refused by unordered nonces ({nonceBitmap}, as Permit2 does: any unused
 * 256-bit value, one bit each, so acceptances signed for different orders never invalidate
 * one another) and a deadline; a hand-over happens once per dependency edge, carries a
 * deadline and always needs both signatures (an empty one is refused: the transaction's
 * sender never stands in for a factory's consent). Membership comes from the
 * Consortium, licences and royalties from the design registry, money from the Settlement.
 * State changes precede the calls to the Settlement (checks-effects-interactions) and every
 * mutating function is non-reentrant.
 */
contract JobBoard is IJobBoard, ISettlementHooks, EIP712, ReentrancyGuardTransient {
    /// @notice Most splits per order (dependencies are a 64-bit mask).
    uint256 public constant MAX_SPLITS = 64;
    /// @notice Review period of an order placed with none (0): 14 days.
    uint32 public constant DEFAULT_REVIEW_PERIOD = 14 days;
    /// @notice Longest review period an order may set.
    uint32 public constant MAX_REVIEW_PERIOD = 365 days;

    /// @notice EIP-712 type of a factory's acceptance of its split.
    bytes32 public constant ACCEPT_SPLIT_TYPEHASH = keccak256(
        "AcceptSplit(uint256 jobId,uint256 splitId,address factory,uint32 sharePpm,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type of a custody hand-over, signed by both factories.
    bytes32 public constant HANDOVER_TYPEHASH = keccak256(
        "Handover(uint256 jobId,uint256 fromSplit,uint256 toSplit,bytes32 lot,uint64 quantity,uint256 deadline)"
    );

    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /**
     * @notice What the buyer asks of one split.
     * @param factory The factory to do it.
     * @param step The process step or lot, as a short label (e.g. "machining").
     * @param quantity Units of this step or lot.
     * @param sharePpm The factory's share of the price, parts per million.
     * @param dependsOn Bit `i` set: this split needs the output of split `i` (`i` < its own index).
     */
    struct SplitSpec {
        address factory;
        bytes32 step;
        uint64 quantity;
        uint32 sharePpm;
        uint64 dependsOn;
    }

    /**
     * @notice A custody hand-over, the EIP-712 message both factories sign.
     * @param jobId The order.
     * @param fromSplit The split whose output lots pass on.
     * @param toSplit The split that depends on it and receives them.
     * @param lot Identifier of the lot (e.g. the hash of its GS1 SSCC or lot number).
     * @param quantity Units handed over.
     * @param deadline Last unix time at which the signatures are valid.
     */
    struct Handover {
        uint256 jobId;
        uint256 fromSplit;
        uint256 toSplit;
        bytes32 lot;
        uint64 quantity;
        uint256 deadline;
    }

    // ------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------

    IConsortium private immutable _consortium;
    IDesignLicences private immutable _licences;
    ISettlement private immutable _settlement;

    /**
     * @dev A split as stored: slot 0, written once by {split}, holds what every later call
     * reads (factory, status, quantity, share: at most 1e6, so 24 bits); slot 1 holds what
     * hand-overs and the delivery write. The dependency masks are kept apart, four to a
     * word (`_dependsOn`). The step label is not stored: it is in the {SplitAssigned}
     * event, which nothing on chain needs to read back.
     */
    struct SplitState {
        address factory;
        SplitStatus status;
        uint64 quantity;
        uint24 sharePpm;
        uint64 received;
        uint48 deliveredAt;
        uint64 handedTo;
        uint64 handedQuantity;
    }

    uint256 private _jobCount;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => mapping(uint256 splitId => SplitState)) private _splits;
    /// @dev Dependency masks, four 64-bit masks per word (split `i` in word `i / 4`), so
    /// an order of `n` splits pays for at most `ceil(n / 4)` slots, and none without
    /// dependencies.
    mapping(uint256 jobId => mapping(uint256 word => uint256 masks)) private _dependsOn;
    /// @notice Used acceptance nonces: bit `nonce & 255` of word `nonce >> 8` of a factory.
    mapping(address factory => mapping(uint256 wordPos => uint256 bits)) public nonceBitmap;

    // ------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------

    /**
     * @param consortium_ Who is an active buyer or factory.
     * @param licences_ The design registry: licences and royalties.
     * @param settlement_ The escrow.
     */
    constructor(IConsortium consortium_, IDesignLicences licences_, ISettlement settlement_)
        EIP712("cofab", "1")
    {
        _consortium = consortium_;
        _licences = licences_;
        _settlement = settlement_;
    }

    // ------------------------------------------------------------------------------------
    // Orders
    // ------------------------------------------------------------------------------------

    /**
     * @notice Places an order as the caller, an active buyer holding a licence of `designId`.
     * @param token The payment token; zero for the Settlement's default token.
     * @param specHash Hash of the off-chain order document (drawings list, tolerances, …).
     * @param reviewPeriod Seconds the buyer has after each delivery to accept or dispute it
     * before anyone may finalise it as accepted; 0 for {DEFAULT_REVIEW_PERIOD}. Factories see
     * it before they accept their splits.
     * @dev Reverts with {MissingRole}, {InvalidToken}, {ZeroQuantityOrPrice},
     * {InvalidDeadline}, {InvalidReviewPeriod}, {DesignNotLicensed} or {FeesTooHigh}. The
     * period shares a storage slot with the designer: no extra SSTORE.
     * @return jobId The new order's id (from 1).
     */
    function createJob(
        bytes32 designId,
        IERC20 token,
        uint64 quantity,
        uint128 price,
        uint48 deadline,
        bytes32 specHash,
        uint32 reviewPeriod
    ) external nonReentrant returns (uint256 jobId) {
        if (!_consortium.hasRole(msg.sender, Roles.BUYER)) revert MissingRole(msg.sender, Roles.BUYER);
        if (address(token) == address(0)) token = _settlement.defaultToken();
        if (address(token).code.length == 0) revert InvalidToken(address(token));
        if (quantity == 0 || price == 0) revert ZeroQuantityOrPrice();
        if (deadline <= block.timestamp) revert InvalidDeadline(deadline);
        if (reviewPeriod > MAX_REVIEW_PERIOD) revert InvalidReviewPeriod(reviewPeriod);
        if (reviewPeriod == 0) reviewPeriod = DEFAULT_REVIEW_PERIOD;
        jobId = ++_jobCount;
        Job storage j = _jobs[jobId];
        j.buyer = msg.sender;
        j.deadline = deadline;
        j.status = JobStatus.Created;
        j.token = token;
        j.quantity = quantity;
        j.price = price;
        j.designId = designId;
        j.reviewPeriod = reviewPeriod;
        _license(j, designId);
        emit JobCreated(
            jobId, msg.sender, designId, j.designer, j.royaltyPpm, token, quantity, price, deadline, specHash
        );
        emit ReviewPeriodSet(jobId, reviewPeriod);
        emit JobStatusChanged(jobId, JobStatus.Created);
    }

    /**
     * @notice Pays the price of order `jobId` into escrow. The caller, its buyer, must have
     * approved the Settlement for the price in the order's token.
     * @dev Reverts with {UnknownJob}, {NotJobBuyer}, {JobNotInStatus}, {JobDeadlinePassed},
     * or the Settlement's refusal (e.g. SafeERC20FailedOperation for a token returning false).
     */
    function fund(uint256 jobId) external nonReentrant {
        Job storage j = _buyerJob(jobId);
        _checkStatus(jobId, j, JobStatus.Created);
        _checkDeadline(jobId, j);
        _setStatus(jobId, j, JobStatus.Funded);
        _settlement.deposit(jobId, j.token, msg.sender, j.price);
    }

    /**
     * @notice Splits funded order `jobId` into `specs`, one per process step or lot.
     * @dev Shares with the royalty and the platform fee must sum to 1e6 (checked by the
     * Settlement: {Settlement-SharesDoNotSum}). Reverts with {UnknownJob}, {NotJobBuyer},
     * {JobNotInStatus}, {JobDeadlinePassed}, {InvalidSplitCount}, {MissingRole},
     * {ZeroSplitQuantity}, the Settlement's `InvalidShare` (a share above 1e6) or
     * {InvalidDependencies}. Gas: one fresh slot per split (about
     * 36,700 per split in all, with its membership check and events), a word of dependency
     * masks per four splits that have any, and no slot in the Settlement; the step label
     * travels only in {SplitAssigned}.
     */
    function split(uint256 jobId, SplitSpec[] calldata specs) external nonReentrant {
        Job storage j = _buyerJob(jobId);
        _checkStatus(jobId, j, JobStatus.Funded);
        _checkDeadline(jobId, j);
        uint256 n = specs.length;
        if (n == 0 || n > MAX_SPLITS) revert InvalidSplitCount(n);

        address[] memory factories = new address[](n);
        uint32[] memory shares = new uint32[](n);
        uint256 masks = 0;
        for (uint256 i = 0; i < n; ++i) {
            SplitSpec calldata s = specs[i];
            if (!_consortium.hasRole(s.factory, Roles.FACTORY)) revert MissingRole(s.factory, Roles.FACTORY);
            if (s.quantity == 0) revert ZeroSplitQuantity(i);
            if (s.sharePpm > Ppm.SCALE) revert ISettlement.InvalidShare(i);
            if (s.dependsOn >> i != 0) revert InvalidDependencies(i, s.dependsOn);
            // Field by field: a struct literal would also store the all-zero second slot.
            SplitState storage sp = _splits[jobId][i];
            sp.factory = s.factory;
            sp.status = SplitStatus.Assigned;
            sp.quantity = s.quantity;
            sp.sharePpm = uint24(s.sharePpm); // at most 1e6, checked above
            masks |= uint256(s.dependsOn) << (64 * (i & 3));
            if (i & 3 == 3 || i == n - 1) {
                if (masks != 0) _dependsOn[jobId][i >> 2] = masks;
                masks = 0;
            }
            factories[i] = s.factory;
            shares[i] = s.sharePpm;
            emit SplitAssigned(jobId, i, s.factory, s.step, s.quantity, s.sharePpm, s.dependsOn);
        }
        j.splitCount = uint8(n);
        j.splitBlock = uint64(block.number);
        _setStatus(jobId, j, JobStatus.Split);
        _settlement.allocate(jobId, j.designer, j.royaltyPpm, factories, shares);
    }

    /**
     * @notice Accepts split `splitId` of order `jobId` as its factory.
     * @dev Reverts with {UnknownJob}, {UnknownSplit}, {NotSplitFactory}, {JobNotInStatus},
     * {SplitNotInStatus}, {JobDeadlinePassed} or {MissingRole}.
     */
    function acceptSplit(uint256 jobId, uint256 splitId) external nonReentrant {
        SplitState storage s = _split(jobId, splitId);
        if (msg.sender != s.factory) revert NotSplitFactory(jobId, splitId, msg.sender);
        _accept(jobId, splitId, s);
    }

    /**
     * @notice Accepts split `splitId` of order `jobId` with its factory's EIP-712
     * `AcceptSplit` signature; anyone may relay it.
     * @param nonce Any of the factory's unused nonces ({nonceBitmap}, {isNonceUsed}); each is
     * usable once and in any order, so signing acceptances for several orders, or cancelling
     * one of them, leaves the others valid.
     * @param deadline Last unix time at which the signature is valid.
     * @dev Reverts as {acceptSplit}, and with {SignatureExpired}, {InvalidAcceptanceSignature}
     * or {NonceAlreadyUsed} (a replayed or revoked signature). Unordered nonces trade gas for
     * independence: a sequential counter costs 5,000 gas per use but makes every signature
     * wait for the ones before it, so one order's unused acceptance blocks the next order's;
     * a bitmap bit costs 22,100 gas in a word the factory has not used before (cofab's
     * default nonce, `jobId * 256 + splitId`, shares one word per order) and 5,000 after.
     */
    function acceptSplitWithSig(
        uint256 jobId,
        uint256 splitId,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant {
        SplitState storage s = _split(jobId, splitId);
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        address factory = s.factory;
        bytes32 digest = hashAcceptance(jobId, splitId, factory, s.sharePpm, nonce, deadline);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != factory) {
            revert InvalidAcceptanceSignature(jobId, splitId, signer);
        }
        _useNonce(factory, nonce);
        _accept(jobId, splitId, s);
    }

    /**
     * @notice Revokes the caller's unused acceptance nonces set in `mask` of word `wordPos`
     * (nonces `wordPos * 256 + i` for each bit `i`): signed acceptances using them can no
     * longer be relayed.
     * @dev One SSTORE for up to 256 nonces (Permit2's `invalidateUnorderedNonces`).
     */
    function invalidateNonces(uint256 wordPos, uint256 mask) external {
        nonceBitmap[msg.sender][wordPos] |= mask;
        emit NoncesInvalidated(msg.sender, wordPos, mask);
    }

    /**
     * @notice Hands the output lots of split `h.fromSplit` over to split `h.toSplit`, which
     * depends on it. Both factories sign the EIP-712 `Handover` `h`, whoever sends the
     * transaction: an empty signature is refused, never read as the sender's consent. A
     * factory may sign with a device key it authorised in the Consortium. The units handed
     * over by a split, over all its dependents, never exceed its own quantity.
     * @dev Reverts with {UnknownJob}, {UnknownSplit}, {JobNotInStatus}, {NotADependency},
     * {SplitNotInStatus}, {AlreadyHandedOver}, {ZeroSplitQuantity},
     * {HandoverExceedsQuantity}, {SignatureExpired}, {HandoverNotSigned} or
     * {InvalidHandoverSignature}. Requiring both signatures costs one more `ecrecover`
     * (~3,000 gas) and 65 bytes of calldata when a factory sends it itself; in exchange the
     * chain holds a typed consent of each side, whoever relayed it. The running total shares
     * the giving split's last slot with its `handedTo` mask: one SSTORE for both.
     */
    function handover(Handover calldata h, bytes calldata fromSignature, bytes calldata toSignature)
        external
        nonReentrant
    {
        (SplitState storage from, SplitState storage to) = _checkHandover(h);
        bytes32 digest = hashHandover(h);
        address fromSigner = _handoverSigner(h.jobId, h.fromSplit, from.factory, digest, fromSignature);
        address toSigner = _handoverSigner(h.jobId, h.toSplit, to.factory, digest, toSignature);
        to.received |= uint64(1) << h.fromSplit;
        from.handedTo |= uint64(1) << h.toSplit;
        from.handedQuantity += h.quantity;
        emit CustodyHandedOver(h.jobId, h.fromSplit, h.toSplit, h.lot, h.quantity, fromSigner, toSigner);
    }

    /**
     * @notice Declares split `splitId` of order `jobId` delivered, as its factory, before
     * the order's deadline. Every dependency must have been delivered (whatever a ruling
     * decided on it since) and handed over to it. The buyer's review period starts now.
     * @param evidenceHash Hash of the delivery note or QC evidence (zero if none).
     * @dev Reverts with {UnknownJob}, {UnknownSplit}, {NotSplitFactory}, {JobNotInStatus},
     * {SplitNotInStatus}, {JobDeadlinePassed}, {MissingRole},
     * {DependencyNotDelivered} or {LotsNotReceived}.
     */
    function deliver(uint256 jobId, uint256 splitId, bytes32 evidenceHash) external nonReentrant {
        Job storage j = _job(jobId);
        SplitState storage s = _split(jobId, splitId);
        if (msg.sender != s.factory) revert NotSplitFactory(jobId, splitId, msg.sender);
        _checkStatus(jobId, j, JobStatus.InProduction);
        if (s.status != SplitStatus.Accepted) revert SplitNotInStatus(jobId, splitId, s.status);
        _checkDeadline(jobId, j);
        if (!_consortium.hasRole(msg.sender, Roles.FACTORY)) revert MissingRole(msg.sender, Roles.FACTORY);
        uint64 deps = _depsOf(jobId, splitId);
        for (uint256 d = 0; deps >> d != 0; ++d) {
            if ((deps >> d) & 1 == 0) continue;
            if (_splits[jobId][d].deliveredAt == 0) revert DependencyNotDelivered(jobId, splitId, d);
            if ((s.received >> d) & 1 == 0) revert LotsNotReceived(jobId, splitId, d);
        }
        s.status = SplitStatus.Delivered;
        s.deliveredAt = uint48(block.timestamp);
        emit SplitDelivered(jobId, splitId, msg.sender, evidenceHash);
        if (++j.deliveredCount == j.splitCount) _setStatus(jobId, j, JobStatus.Delivered);
    }

    /**
     * @notice Accepts the delivery of split `splitId` of order `jobId` as its buyer: the
     * split's amount is credited to its factory. Accepting the last open split also
     * credits the royalty and the fee, and the order is accepted and settled.
     * @dev Allowed while the order is in production, delivered or expired. Reverts with
     * {UnknownJob}, {UnknownSplit}, {NotJobBuyer}, {JobNotInStatus} or {SplitNotInStatus}.
     */
    function acceptDelivery(uint256 jobId, uint256 splitId) external nonReentrant {
        Job storage j = _buyerJob(jobId);
        SplitState storage s = _deliveredSplit(jobId, splitId, j);
        emit DeliveryAccepted(jobId, splitId, msg.sender);
        _pay(jobId, splitId, j, s);
    }

    /**
     * @notice Finalises the delivery of split `splitId` of order `jobId` as accepted once
     * the order's review period has passed since it was delivered and the buyer neither
     * accepted it nor has a dispute open on it; anyone may call it. The split's amount is
     * credited to its factory exactly as if the buyer had accepted (the last open split also
     * credits the royalty and the fee).
     * @dev Like an escrow's timeout (Kleros escrow, UMA's liveness): the paid party is never
     * held hostage by a silent buyer. An open dispute keeps the split frozen (the Settlement's
     * `SplitFrozen`); once it lapses the split can be finalised. Reverts with {UnknownJob},
     * {UnknownSplit}, {JobNotInStatus}, {SplitNotInStatus}, {ReviewPeriodNotOver} or the
     * Settlement's `SplitFrozen`.
     */
    function finalizeDelivery(uint256 jobId, uint256 splitId) external nonReentrant {
        Job storage j = _job(jobId);
        SplitState storage s = _deliveredSplit(jobId, splitId, j);
        uint256 reviewEnds = uint256(s.deliveredAt) + j.reviewPeriod;
        if (block.timestamp <= reviewEnds) revert ReviewPeriodNotOver(jobId, splitId, reviewEnds);
        emit DeliveryFinalized(jobId, splitId, msg.sender);
        _pay(jobId, splitId, j, s);
    }

    /**
     * @notice Cancels order `jobId` as its buyer before production starts; whatever was
     * paid is refunded to the buyer (withdraw it from the Settlement).
     * @dev Reverts with {UnknownJob}, {NotJobBuyer} or {JobNotInStatus}.
     */
    function cancel(uint256 jobId) external nonReentrant {
        Job storage j = _buyerJob(jobId);
        JobStatus st = j.status;
        if (st != JobStatus.Created && st != JobStatus.Funded && st != JobStatus.Split) {
            revert JobNotInStatus(jobId, st);
        }
        uint256 n = j.splitCount;
        for (uint256 i = 0; i < n; ++i) {
            _splits[jobId][i].status = SplitStatus.Refunded;
        }
        j.closedCount = uint8(n);
        _setStatus(jobId, j, JobStatus.Cancelled);
        if (st != JobStatus.Created) _settlement.refund(jobId, 0);
    }

    /**
     * @notice Expires order `jobId` after its deadline, if it was not fully delivered; anyone
     * may call it. Splits not yet delivered, the royalty and the fee are refunded to the
     * buyer; delivered splits stay in escrow until the buyer accepts them or a ruling.
     * @dev Reverts with {UnknownJob}, {JobNotInStatus} or {NotYetExpired}.
     */
    function expire(uint256 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        JobStatus st = j.status;
        if (
            st != JobStatus.Created && st != JobStatus.Funded && st != JobStatus.Split
                && st != JobStatus.InProduction
        ) revert JobNotInStatus(jobId, st);
        if (block.timestamp <= j.deadline) revert NotYetExpired(jobId, j.deadline);
        uint256 n = j.splitCount;
        uint256 keep = 0;
        uint8 closed = j.closedCount;
        for (uint256 i = 0; i < n; ++i) {
            SplitState storage s = _splits[jobId][i];
            SplitStatus ss = s.status;
            if (ss == SplitStatus.Assigned || ss == SplitStatus.Accepted) {
                s.status = SplitStatus.Refunded;
                ++closed;
            } else if (ss == SplitStatus.Delivered) {
                keep |= uint256(1) << i;
            }
        }
        j.closedCount = closed;
        _setStatus(jobId, j, JobStatus.Expired);
        if (st != JobStatus.Created) _settlement.refund(jobId, keep);
    }

    /// @inheritdoc ISettlementHooks
    /// @dev Settlement only. A ruling applies to a split of an order in production,
    /// delivered or expired that is not yet closed; reverts with {NotSettlement},
    /// {JobNotInStatus} or {SplitNotInStatus}, which undoes the ruling.
    function onSplitRuled(uint256 jobId, uint256 splitId, uint128 payout) external nonReentrant {
        if (msg.sender != address(_settlement)) revert NotSettlement(msg.sender);
        Job storage j = _job(jobId);
        JobStatus st = j.status;
        if (st != JobStatus.InProduction && st != JobStatus.Delivered && st != JobStatus.Expired) {
            revert JobNotInStatus(jobId, st);
        }
        SplitState storage s = _split(jobId, splitId);
        SplitStatus ss = s.status;
        if (ss != SplitStatus.Accepted && ss != SplitStatus.Delivered) {
            revert SplitNotInStatus(jobId, splitId, ss);
        }
        // `deliveredAt` stays: what was delivered before the ruling still feeds its dependents.
        s.status = SplitStatus.Ruled;
        emit SplitRuled(jobId, splitId, payout);
        if (++j.closedCount == j.splitCount && st != JobStatus.Expired) {
            _setStatus(jobId, j, JobStatus.Settled);
        }
    }

    // ------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------

    /// @notice Number of orders placed (ids run from 1).
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @notice Order `jobId`; reverts with {UnknownJob}.
    function job(uint256 jobId) external view returns (Job memory) {
        return _job(jobId);
    }

    /// @notice Split `splitId` of order `jobId`; reverts with {UnknownJob} or {UnknownSplit}.
    function splitOf(uint256 jobId, uint256 splitId) external view returns (Split memory) {
        _split(jobId, splitId);
        return _view(jobId, splitId);
    }

    /// @notice Every split of order `jobId`; reverts with {UnknownJob}.
    function splits(uint256 jobId) external view returns (Split[] memory out) {
        uint256 n = _job(jobId).splitCount;
        out = new Split[](n);
        for (uint256 i = 0; i < n; ++i) {
            out[i] = _view(jobId, i);
        }
    }

    /// @notice When the buyer's review of the delivery of split `splitId` of order `jobId`
    /// ends (0 if it was never delivered); reverts with {UnknownJob} or {UnknownSplit}.
    function reviewEnds(uint256 jobId, uint256 splitId) external view returns (uint256) {
        SplitState storage s = _split(jobId, splitId);
        if (s.deliveredAt == 0) return 0;
        return uint256(s.deliveredAt) + _jobs[jobId].reviewPeriod;
    }

    /// @notice Whether acceptance nonce `nonce` of `factory` was used or revoked.
    function isNonceUsed(address factory, uint256 nonce) external view returns (bool) {
        return (nonceBitmap[factory][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// @inheritdoc ISplits
    function splitFactory(uint256 jobId, uint256 splitId) external view returns (address) {
        return _splits[jobId][splitId].factory;
    }

    /// @inheritdoc ISplits
    function payeeOf(uint256 jobId, uint256 splitId) external view returns (address factory, uint32 sharePpm) {
        SplitState storage s = _splits[jobId][splitId];
        return (s.factory, s.sharePpm);
    }

    /// @inheritdoc ISplits
    function jobBuyer(uint256 jobId) external view returns (address) {
        return _jobs[jobId].buyer;
    }

    /// @notice The Consortium, design registry and Settlement this board uses.
    function links() external view returns (address consortium, address licences, address settlement) {
        return (address(_consortium), address(_licences), address(_settlement));
    }

    /// @notice The EIP-712 digest a factory signs to accept a split.
    function hashAcceptance(
        uint256 jobId,
        uint256 splitId,
        address factory,
        uint32 sharePpm,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(ACCEPT_SPLIT_TYPEHASH, jobId, splitId, factory, sharePpm, nonce, deadline))
        );
    }

    /// @notice The EIP-712 digest both factories sign for a hand-over.
    function hashHandover(Handover calldata h) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(HANDOVER_TYPEHASH, h.jobId, h.fromSplit, h.toSplit, h.lot, h.quantity, h.deadline)
            )
        );
    }

    /// @notice The EIP-712 domain separator (name "cofab", version "1").
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------

    /// @dev Records the buyer's licence of `designId`: designer and royalty.
    function _license(Job storage j, bytes32 designId) private {
        (bool active, address designer, uint32 royaltyPpm) = _licences.licenceOf(designId, msg.sender);
        if (!active) revert DesignNotLicensed(designId, msg.sender);
        uint32 feePpm = _settlement.platformFeePpm();
        if (uint256(royaltyPpm) + feePpm >= Ppm.SCALE) revert FeesTooHigh(royaltyPpm, feePpm);
        j.designer = designer;
        j.royaltyPpm = royaltyPpm;
    }

    function _accept(uint256 jobId, uint256 splitId, SplitState storage s) private {
        Job storage j = _jobs[jobId];
        _checkStatus(jobId, j, JobStatus.Split);
        if (s.status != SplitStatus.Assigned) revert SplitNotInStatus(jobId, splitId, s.status);
        _checkDeadline(jobId, j);
        address factory = s.factory;
        if (!_consortium.hasRole(factory, Roles.FACTORY)) revert MissingRole(factory, Roles.FACTORY);
        s.status = SplitStatus.Accepted;
        emit SplitAccepted(jobId, splitId, factory, msg.sender);
        if (++j.acceptedCount == j.splitCount) _setStatus(jobId, j, JobStatus.InProduction);
    }

    /// @dev Marks `nonce` of `factory` used: one bit of a 256-bit word, so nonces are used in
    /// any order (a cold word costs 22,100 gas the first time, 5,000 after).
    function _useNonce(address factory, uint256 nonce) private {
        uint256 bit = uint256(1) << (nonce & 0xff);
        uint256 word = nonceBitmap[factory][nonce >> 8];
        if (word & bit != 0) revert NonceAlreadyUsed(factory, nonce);
        nonceBitmap[factory][nonce >> 8] = word | bit;
    }

    /// @dev A delivered, still open split of an order that may still pay it (in production,
    /// delivered or expired).
    function _deliveredSplit(uint256 jobId, uint256 splitId, Job storage j)
        private
        view
        returns (SplitState storage s)
    {
        JobStatus st = j.status;
        if (st != JobStatus.InProduction && st != JobStatus.Delivered && st != JobStatus.Expired) {
            revert JobNotInStatus(jobId, st);
        }
        s = _split(jobId, splitId);
        if (s.status != SplitStatus.Delivered) revert SplitNotInStatus(jobId, splitId, s.status);
    }

    /// @dev Closes a delivered split as paid; the last open split settles the order (an
    /// expired order stays expired). The Settlement credits the factory.
    function _pay(uint256 jobId, uint256 splitId, Job storage j, SplitState storage s) private {
        s.status = SplitStatus.Paid;
        JobStatus st = j.status;
        if (++j.closedCount == j.splitCount && st != JobStatus.Expired) {
            _setStatus(jobId, j, JobStatus.Accepted);
            _setStatus(jobId, j, JobStatus.Settled);
        }
        _settlement.release(jobId, splitId);
    }

    /// @dev The checks of {handover} before its signatures.
    function _checkHandover(Handover calldata h) private view returns (SplitState storage from, SplitState storage to) {
        uint256 jobId = h.jobId;
        _checkStatus(jobId, _job(jobId), JobStatus.InProduction);
        from = _split(jobId, h.fromSplit);
        to = _split(jobId, h.toSplit);
        if ((_depsOf(jobId, h.toSplit) >> h.fromSplit) & 1 == 0) revert NotADependency(jobId, h.fromSplit, h.toSplit);
        if (from.deliveredAt == 0) revert SplitNotInStatus(jobId, h.fromSplit, from.status);
        if (to.status != SplitStatus.Accepted) revert SplitNotInStatus(jobId, h.toSplit, to.status);
        if ((to.received >> h.fromSplit) & 1 == 1) revert AlreadyHandedOver(jobId, h.fromSplit, h.toSplit);
        if (h.quantity == 0) revert ZeroSplitQuantity(h.fromSplit);
        uint256 available = from.quantity - from.handedQuantity;
        if (h.quantity > available) revert HandoverExceedsQuantity(jobId, h.fromSplit, h.quantity, available);
        if (block.timestamp > h.deadline) revert SignatureExpired(h.deadline);
    }

    /// @dev Who signed the hand-over for the factory of `splitId`: the recovered signer, which
    /// must be the factory or one of its authorised device keys, and the factory an active
    /// FACTORY member. An empty signature is no consent, whoever sends the transaction.
    function _handoverSigner(
        uint256 jobId,
        uint256 splitId,
        address factory,
        bytes32 digest,
        bytes calldata signature
    ) private view returns (address signer) {
        if (signature.length == 0) revert HandoverNotSigned(jobId, splitId);
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || !_mayHandover(factory, signer)) {
            revert InvalidHandoverSignature(jobId, splitId, signer);
        }
    }

    function _mayHandover(address factory, address signer) private view returns (bool) {
        return _consortium.isAuthorizedSigner(factory, signer, Roles.FACTORY, block.number, block.timestamp);
    }

    function _job(uint256 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _buyerJob(uint256 jobId) private view returns (Job storage j) {
        j = _job(jobId);
        if (msg.sender != j.buyer) revert NotJobBuyer(jobId, msg.sender);
    }

    /// @dev The dependency mask of split `splitId`.
    function _depsOf(uint256 jobId, uint256 splitId) private view returns (uint64) {
        return uint64(_dependsOn[jobId][splitId >> 2] >> (64 * (splitId & 3)));
    }

    function _view(uint256 jobId, uint256 splitId) private view returns (Split memory) {
        SplitState storage s = _splits[jobId][splitId];
        return Split({
            factory: s.factory,
            status: s.status,
            dependsOn: _depsOf(jobId, splitId),
            quantity: s.quantity,
            received: s.received,
            sharePpm: s.sharePpm,
            deliveredAt: s.deliveredAt,
            handedTo: s.handedTo,
            handedQuantity: s.handedQuantity
        });
    }

    function _split(uint256 jobId, uint256 splitId) private view returns (SplitState storage s) {
        Job storage j = _job(jobId);
        if (splitId >= j.splitCount) revert UnknownSplit(jobId, splitId);
        s = _splits[jobId][splitId];
    }

    function _checkStatus(uint256 jobId, Job storage j, JobStatus expected) private view {
        if (j.status != expected) revert JobNotInStatus(jobId, j.status);
    }

    function _checkDeadline(uint256 jobId, Job storage j) private view {
        if (block.timestamp > j.deadline) revert JobDeadlinePassed(jobId, j.deadline);
    }

    function _setStatus(uint256 jobId, Job storage j, JobStatus status) private {
        j.status = status;
        emit JobStatusChanged(jobId, status);
    }
}
