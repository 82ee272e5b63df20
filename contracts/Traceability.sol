// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Roles} from "./common/Common.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {ISplits} from "./interfaces/ISplits.sol";
import {ITraceability} from "./interfaces/ITraceability.sol";

/**
 * @title Traceability
 * @notice Anchors of signed production steps, per split of an order.
 *
 * Factories sign every production step off-chain as an EIP-712 `ProductionStep` whose
 * domain names this contract as verifying contract. The steps of one split form a hash
 * chain (each names the hash of the previous one) and are numbered 0, 1, 2, ... A node
 * anchors a contiguous range of them at a time: the Merkle root of the range
 * (OpenZeppelin StandardMerkleTree, leaves `(uint64 seq, bytes32 stepHash)`), the range,
 * and the hash of its last step (the new head of the chain).
 *
 * The contract refuses a range that does not start right after the last anchored step
 * (no gap, no overlap) and a range whose first step does not continue the anchored head,
 * so a dropped, reordered or replaced step is detectable by anyone holding the bundle.
 *
 * @dev Gas: an anchor writes one new storage slot, the commitment
 * `keccak256(abi.encode(root, head))`, and updates one packed slot per split; the root,
 * range and heads travel in the {StepsAnchored} event. The caller names the previous
 * anchor's root and head, which the contract checks against the stored commitment. The
 * split's factory is asked of the JobBoard once, by the split's first anchor, and kept in
 * the split's slot (it never changes once the order is split): later anchors skip that
 * call (about 7,000 gas). When the factory anchors itself, its membership is checked with
 * {IConsortium-hasRole} (the same answer as `isAuthorizedSigner` for the member itself, as
 * of this block) instead of the history lookup that a device key needs. At 1,024 steps per
 * anchor a split's first anchor costs about 83 gas per step, each later one about 64.
 */
contract Traceability is ITraceability {
    /// @notice State of one split's step chain.
    struct Trace {
        uint64 nextSeq; // first sequence number not yet anchored
        uint64 anchorCount; // anchors so far (index of the next one)
    }

    /// @dev {Trace} as stored, with the split's factory: one slot.
    struct TraceState {
        uint64 nextSeq;
        uint32 anchorCount;
        address factory;
    }

    /// @notice The membership register asked who may anchor.
    IConsortium public immutable consortium;
    /// @notice The job board asked which factory a split belongs to.
    ISplits public immutable splits;

    mapping(uint256 jobId => mapping(uint256 splitId => TraceState)) private _traces;
    mapping(uint256 jobId => mapping(uint256 splitId => mapping(uint256 index => bytes32))) private
        _commitments;

    constructor(IConsortium consortium_, ISplits splits_) {
        consortium = consortium_;
        splits = splits_;
    }

    /**
     * @notice Anchor steps `fromSeq`..`toSeq` of split `splitId` of job `jobId`.
     * @param previousRoot the root of the split's previous anchor (zero for the first)
     * @param previousHead the head of the previous anchor, which step `fromSeq` names as its
     * predecessor (zero for the first)
     * @param head the hash of step `toSeq`
     * @param root the StandardMerkleTree root over `(uint64 seq, bytes32 stepHash)` of the range
     * @return index the index of this anchor for the split
     */
    function anchor(
        uint256 jobId,
        uint256 splitId,
        uint64 fromSeq,
        uint64 toSeq,
        bytes32 previousRoot,
        bytes32 previousHead,
        bytes32 head,
        bytes32 root
    ) external returns (uint256 index) {
        TraceState memory t = _traces[jobId][splitId];
        address factory = t.factory;
        if (factory == address(0)) {
            factory = splits.splitFactory(jobId, splitId);
            if (factory == address(0)) revert ISplits.UnknownSplit(jobId, splitId);
        }
        if (
            msg.sender == factory
                ? !consortium.hasRole(factory, Roles.FACTORY)
                : !consortium.isAuthorizedSigner(factory, msg.sender, Roles.FACTORY, block.number, block.timestamp)
        ) revert ISplits.NotSplitFactory(jobId, splitId, msg.sender);
        if (fromSeq > t.nextSeq) revert SequenceGap(t.nextSeq, fromSeq);
        if (fromSeq < t.nextSeq) revert RangeOverlap(t.nextSeq, fromSeq);
        if (toSeq < fromSeq) revert EmptyRange(fromSeq, toSeq);
        if (root == bytes32(0) || head == bytes32(0)) revert ZeroHash();
        index = t.anchorCount;
        if (index == 0) {
            if (previousRoot != bytes32(0) || previousHead != bytes32(0)) {
                revert HeadMismatch(previousRoot, previousHead);
            }
        } else if (_commitments[jobId][splitId][index - 1] != _commit(previousRoot, previousHead)) {
            revert HeadMismatch(previousRoot, previousHead);
        }

        _traces[jobId][splitId] =
            TraceState({nextSeq: toSeq + 1, anchorCount: SafeCast.toUint32(index + 1), factory: factory});
        _commitments[jobId][splitId][index] = _commit(root, head);
        emit StepsAnchored(jobId, splitId, index, fromSeq, toSeq, root, previousHead, head, msg.sender);
    }

    /// @notice The anchoring state of a split: next sequence number and anchors so far.
    function trace(uint256 jobId, uint256 splitId) external view returns (Trace memory) {
        TraceState memory t = _traces[jobId][splitId];
        return Trace({nextSeq: t.nextSeq, anchorCount: t.anchorCount});
    }

    /// @notice The stored commitment `keccak256(abi.encode(root, head))` of anchor `index`.
    function commitment(uint256 jobId, uint256 splitId, uint256 index) public view returns (bytes32 c) {
        c = _commitments[jobId][splitId][index];
        if (c == bytes32(0)) revert UnknownAnchor(jobId, splitId, index);
    }

    /// @notice Whether anchor `index` of the split has this root and head.
    function isAnchor(uint256 jobId, uint256 splitId, uint256 index, bytes32 root, bytes32 head)
        public
        view
        returns (bool)
    {
        return _commitments[jobId][splitId][index] == _commit(root, head) && root != bytes32(0);
    }

    /**
     * @notice Whether step `seq` with hash `stepHash` is included in anchor `index` of the
     * split, whose root and head are `root` and `head`.
     * @param proof the StandardMerkleTree proof of the leaf `(seq, stepHash)`
     */
    function verifyStep(
        uint256 jobId,
        uint256 splitId,
        uint256 index,
        bytes32 root,
        bytes32 head,
        uint64 seq,
        bytes32 stepHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (!isAnchor(jobId, splitId, index, root, head)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(seq, stepHash))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    function _commit(bytes32 root, bytes32 head) private pure returns (bytes32) {
        return keccak256(abi.encode(root, head));
    }
}
