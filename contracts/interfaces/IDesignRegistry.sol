// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICofabErrors} from "../common/Common.sol";
import {IDesignLicences} from "./IDesignLicences.sol";

/**
 * @title IDesignRegistry
 * @notice The design registry of a cofab consortium: its events and errors. Implemented by
 * DesignRegistry; orders read licences through {IDesignLicences}.
 */
interface IDesignRegistry is IDesignLicences, ICofabErrors {
    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /// @notice `designer` committed to a design by `commitment` (see {commitmentOf}).
    event DesignCommitted(bytes32 indexed commitment, address indexed designer);

    /// @notice The commitment `commitment` of block `commitBlock` was revealed: `designer`
    /// holds `designId`, a version of `parentId` (zero: none), described by the off-chain
    /// document hashed to `metadataHash`.
    event DesignRegistered(
        bytes32 indexed designId,
        address indexed designer,
        bytes32 indexed parentId,
        bytes32 metadataHash,
        bytes32 commitment,
        uint256 commitBlock
    );

    /// @notice `designer` committed `count` designs under Merkle `root`; `manifestHash` is the
    /// SHA-256 of the off-chain tree document (OpenZeppelin StandardMerkleTree dump).
    event BatchRegistered(bytes32 indexed root, address indexed designer, uint256 count, bytes32 manifestHash);

    /// @notice Batch member `designId` of `root` was proven and recorded for `designer`, with
    /// the batch's block `batchBlock`.
    event DesignClaimed(
        bytes32 indexed designId,
        bytes32 indexed root,
        address indexed designer,
        bytes32 parentId,
        bytes32 metadataHash,
        uint256 batchBlock
    );

    /// @notice The record of `designId` by `displacedDesigner` at `displacedBlock` gave way to
    /// the earlier commitment `commitment` (a single commitment or a batch root).
    event DesignPreempted(
        bytes32 indexed designId,
        address indexed displacedDesigner,
        uint256 displacedBlock,
        bytes32 indexed commitment
    );

    /// @notice `designer` revoked `designId`.
    event DesignRevoked(bytes32 indexed designId, address indexed designer);

    /// @notice `designer` superseded `designId` with `successorId`.
    event DesignSuperseded(bytes32 indexed designId, bytes32 indexed successorId, address indexed designer);

    /// @notice `designer` licensed `designId` to `licensee` for `royaltyPpm` (1e6 scale).
    event LicenceGranted(
        bytes32 indexed designId, address indexed licensee, address indexed designer, uint32 royaltyPpm
    );

    /// @notice `designer` revoked the licence of `designId` to `licensee`.
    event LicenceRevoked(bytes32 indexed designId, address indexed licensee, address indexed designer);

    /// @notice `designId` was shared encrypted with `recipient`: ciphertext and wrapped-key
    /// envelope hashes (SHA-256).
    event DesignShared(
        bytes32 indexed designId, address indexed recipient, bytes32 ciphertextHash, bytes32 wrappedKeyHash
    );

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    /// @notice `caller` is not the registrant of design `designId`.
    error NotRegistrant(bytes32 designId, address caller);
    /// @notice Design `designId` is already registered by `designer` at block `blockNumber`.
    error DesignExists(bytes32 designId, address designer, uint256 blockNumber);
    /// @notice Design `designId` is not recorded on chain: it is not registered, or not revealed
    /// yet (`cofab design reveal`).
    error UnknownDesign(bytes32 designId);
    /// @notice Parent design `parentId` is not registered.
    error UnknownParent(bytes32 parentId);
    /// @notice Parent design `parentId` is revoked.
    error ParentRevoked(bytes32 parentId);
    /// @notice Design `designId` is revoked.
    error DesignIsRevoked(bytes32 designId);
    /// @notice Design `designId` is superseded: license its newer version.
    error DesignIsSuperseded(bytes32 designId);
    /// @notice Commitment `commitment` is already recorded for `designer` at block `blockNumber`.
    error CommitmentExists(bytes32 commitment, address designer, uint256 blockNumber);
    /// @notice `designer` never committed `commitment`: the design, metadata, parent or salt differ
    /// from the commitment.
    error UnknownCommitment(bytes32 commitment, address designer);
    /// @notice A batch needs at least one design.
    error EmptyBatch();
    /// @notice Batch `root` is already registered by `designer` at block `blockNumber`.
    error BatchExists(bytes32 root, address designer, uint256 blockNumber);
    /// @notice `designer` registered no batch with root `root`.
    error UnknownBatch(bytes32 root, address designer);
    /// @notice The Merkle proof does not place design `designId` in batch `root`.
    error InvalidProof(bytes32 root, bytes32 designId);
    /// @notice `account` is not an active member of the consortium.
    error LicenseeNotMember(address account);
    /// @notice Royalty `royaltyPpm` ppm exceeds 1000000 (100%).
    error InvalidRoyalty(uint32 royaltyPpm);
    /// @notice `licensee` holds no active licence of design `designId`.
    error NoLicence(bytes32 designId, address licensee);
    /// @notice Design `successorId` cannot supersede design `designId`: it must be another
    /// unrevoked design of the same designer.
    error InvalidSuccessor(bytes32 designId, bytes32 successorId);
}
