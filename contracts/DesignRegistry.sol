// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDesignLicences} from "./interfaces/IDesignLicences.sol";

/**
 * @title DesignRegistry
 * @notice Proof of authorship and priority for design files, their versions, licences and
 * encrypted shares.
 *
 * A design is identified by the SHA-256 of its file bytes (what `sha256sum` prints). The
 * first registrant of a content hash holds priority: registering the same content again,
 * by anyone, is refused with {DesignExists}, which names the existing registration.
 *
 * Designers register one file with {register} (one storage slot: designer, time, block,
 * flags; the parent version and metadata hash travel in the event), or many files in one
 * transaction with {registerBatch}, which stores only the root of an OpenZeppelin
 * StandardMerkleTree whose leaves are `abi.encode(bytes32 designId, bytes32 metadataHash,
 * bytes32 parentId)`. A batch member becomes a design record when anyone proves it with
 * {claim}; the claim carries the batch's block and time, so a later single registration of
 * the same content is refused from then on, and an earlier-unseen single registration made
 * after the batch is displaced ({DesignPreempted}): priority always goes to the earliest
 * block.
 *
 * The designer revokes ({revoke}) or supersedes ({supersede}) a design and licenses it to
 * members ({grantLicence}, {revokeLicence}) with a royalty on a 1e6 scale; licence history
 * is checkpointed by block ({licenceAt}). A designer records an encrypted share of the file
 * to a licensed member ({recordShare}): the hashes of the ciphertext and of the wrapped-key
 * envelope, so the recipient detects tampering.
 *
 * @dev Membership comes from the Consortium ({IConsortium-hasRole}). The only external
 * call is that view; every function follows checks-effects-events.
 */
contract DesignRegistry is IDesignLicences {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice The Consortium role bit of designers.
    uint32 public constant DESIGNER = 4;
    /// @notice Royalties are parts per million of an order's price.
    uint32 public constant ROYALTY_SCALE = 1_000_000;

    /// @notice Flag bit: the designer revoked the design.
    uint8 public constant FLAG_REVOKED = 1;
    /// @notice Flag bit: the designer superseded the design with a newer version.
    uint8 public constant FLAG_SUPERSEDED = 2;
    /// @notice Flag bit: the design was registered in a batch and materialised by {claim}.
    uint8 public constant FLAG_BATCH = 4;

    /**
     * @notice A registered design (one storage slot).
     * @param designer The registrant, who holds priority.
     * @param registeredAt `block.timestamp` of the registration (of the batch, for a claim).
     * @param blockNumber `block.number` of the registration (of the batch, for a claim).
     * @param flags {FLAG_REVOKED} | {FLAG_SUPERSEDED} | {FLAG_BATCH}.
     */
    struct Design {
        address designer;
        uint40 registeredAt;
        uint40 blockNumber;
        uint8 flags;
    }

    /**
     * @notice A batch of designs committed by Merkle root (one storage slot).
     * @param designer The registrant of every member of the batch.
     * @param registeredAt `block.timestamp` of the batch registration.
     * @param blockNumber `block.number` of the batch registration.
     */
    struct Batch {
        address designer;
        uint40 registeredAt;
        uint40 blockNumber;
    }

    /**
     * @notice The latest encrypted share of a design to a recipient.
     * @param ciphertextHash SHA-256 of the AES-256-GCM ciphertext blob.
     * @param wrappedKeyHash SHA-256 of the envelope that wraps the file key to the recipient.
     * @param blockNumber `block.number` of the share.
     */
    struct Share {
        bytes32 ciphertextHash;
        bytes32 wrappedKeyHash;
        uint48 blockNumber;
    }

    IConsortium private immutable _consortium;

    mapping(bytes32 designId => Design) private _designs;
    mapping(bytes32 designId => uint256) private _revokedAt;
    mapping(bytes32 root => Batch) private _batches;
    mapping(bytes32 designId => mapping(address licensee => Checkpoints.Trace208)) private
        _licences;
    mapping(bytes32 designId => mapping(address recipient => Share)) private _shares;

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /// @notice `designer` registered `designId` as a version of `parentId` (zero: none),
    /// described by the off-chain document hashed to `metadataHash`.
    event DesignRegistered(
        bytes32 indexed designId, address indexed designer, bytes32 indexed parentId, bytes32 metadataHash
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
    /// the earlier batch `root`.
    event DesignPreempted(
        bytes32 indexed designId, address indexed displacedDesigner, uint256 displacedBlock, bytes32 indexed root
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

    /// @notice `account` is not an active member holding the DESIGNER role.
    error NotDesigner(address account);
    /// @notice `caller` is not the registrant of `designId`.
    error NotRegistrant(bytes32 designId, address caller);
    /// @notice `designId` is already registered by `designer` at block `blockNumber`.
    error DesignExists(bytes32 designId, address designer, uint256 blockNumber);
    /// @notice No design `designId` is registered (a batch member must be claimed first).
    error UnknownDesign(bytes32 designId);
    /// @notice The parent `parentId` is not registered (before the registration's block).
    error UnknownParent(bytes32 parentId);
    /// @notice The parent `parentId` is revoked.
    error ParentRevoked(bytes32 parentId);
    /// @notice `designId` is revoked.
    error DesignIsRevoked(bytes32 designId);
    /// @notice `designId` is superseded: license its successor instead.
    error DesignIsSuperseded(bytes32 designId);
    /// @notice A zero hash was given where a content hash, root or share hash is required.
    error ZeroHash();
    /// @notice A batch needs at least one member.
    error EmptyBatch();
    /// @notice The batch `root` is already registered by `designer` at block `blockNumber`.
    error BatchExists(bytes32 root, address designer, uint256 blockNumber);
    /// @notice No batch has root `root`.
    error UnknownBatch(bytes32 root);
    /// @notice The proof does not place `designId` under `root`.
    error InvalidProof(bytes32 root, bytes32 designId);
    /// @notice `account` is not an active member of the consortium.
    error LicenseeNotMember(address account);
    /// @notice `royaltyPpm` exceeds {ROYALTY_SCALE}.
    error InvalidRoyalty(uint32 royaltyPpm);
    /// @notice `licensee` holds no active licence of `designId`.
    error NoLicence(bytes32 designId, address licensee);
    /// @notice `successorId` cannot supersede `designId`.
    error InvalidSuccessor(bytes32 designId, bytes32 successorId);
    /// @notice `blockNumber` is after the current block.
    error FutureBlock(uint256 blockNumber);

    /// @param consortium_ The Consortium contract that says who is an active designer.
    constructor(address consortium_) {
        _consortium = IConsortium(consortium_);
    }

    // ------------------------------------------------------------------------------------
    // Registration
    // ------------------------------------------------------------------------------------

    /**
     * @notice Registers the file whose SHA-256 is `designId` for the caller.
     * @param parentId The design this one is a version of (zero: none); it must exist and
     * not be revoked.
     * @param metadataHash Hash of the off-chain metadata document (title, format, size).
     * @dev Reverts with {NotDesigner}, {ZeroHash}, {DesignExists}, {UnknownParent} or
     * {ParentRevoked}.
     */
    function register(bytes32 designId, bytes32 parentId, bytes32 metadataHash) external {
        _checkDesigner(msg.sender);
        if (designId == 0) revert ZeroHash();
        Design storage d = _designs[designId];
        address existing = d.designer;
        if (existing != address(0)) revert DesignExists(designId, existing, d.blockNumber);
        if (parentId != 0) _checkParent(parentId, block.number);
        _designs[designId] = Design(msg.sender, uint40(block.timestamp), uint40(block.number), 0);
        emit DesignRegistered(designId, msg.sender, parentId, metadataHash);
    }

    /**
     * @notice Commits `count` designs of the caller under a StandardMerkleTree `root`.
     * @param manifestHash SHA-256 of the tree document (kept off-chain).
     * @dev Stores only the root record; members become design records with {claim}.
     * Reverts with {NotDesigner}, {ZeroHash}, {EmptyBatch} or {BatchExists}.
     */
    function registerBatch(bytes32 root, uint256 count, bytes32 manifestHash) external {
        _checkDesigner(msg.sender);
        if (root == 0) revert ZeroHash();
        if (count == 0) revert EmptyBatch();
        Batch storage b = _batches[root];
        address existing = b.designer;
        if (existing != address(0)) revert BatchExists(root, existing, b.blockNumber);
        _batches[root] = Batch(msg.sender, uint40(block.timestamp), uint40(block.number));
        emit BatchRegistered(root, msg.sender, count, manifestHash);
    }

    /**
     * @notice Records batch member `designId` of `root` as a design of the batch's
     * designer, dated at the batch's block. Anyone may claim; the proof is the evidence.
     * @dev If `designId` is already recorded at an earlier or the same block, reverts with
     * {DesignExists}; a record from a later block is displaced ({DesignPreempted}) and the
     * licences its registrant granted lapse. The parent must have been registered, and not
     * revoked, at the batch's block. Reverts with {UnknownBatch}, {ZeroHash},
     * {InvalidProof}, {UnknownParent} or {ParentRevoked}.
     */
    function claim(
        bytes32 root,
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        bytes32[] calldata proof
    ) external {
        Batch memory b = _batches[root];
        if (b.designer == address(0)) revert UnknownBatch(root);
        if (designId == 0) revert ZeroHash();
        if (!MerkleProof.verifyCalldata(proof, root, leafHash(designId, metadataHash, parentId))) {
            revert InvalidProof(root, designId);
        }
        if (parentId != 0) _checkParent(parentId, b.blockNumber);
        Design memory d = _designs[designId];
        if (d.designer != address(0)) {
            if (d.blockNumber <= b.blockNumber) {
                revert DesignExists(designId, d.designer, d.blockNumber);
            }
            delete _revokedAt[designId];
            emit DesignPreempted(designId, d.designer, d.blockNumber, root);
        }
        _designs[designId] = Design(b.designer, b.registeredAt, b.blockNumber, FLAG_BATCH);
        emit DesignClaimed(designId, root, b.designer, parentId, metadataHash, b.blockNumber);
    }

    // ------------------------------------------------------------------------------------
    // Lifecycle
    // ------------------------------------------------------------------------------------

    /**
     * @notice Revokes the caller's design: it can no longer be a parent, be licensed or be
     * shared, and every licence of it turns inactive. Its priority record stays.
     * @dev Allowed to a suspended designer. Reverts with {UnknownDesign},
     * {NotRegistrant} or {DesignIsRevoked}.
     */
    function revoke(bytes32 designId) external {
        Design storage d = _ownDesign(designId);
        d.flags |= FLAG_REVOKED;
        _revokedAt[designId] = block.number;
        emit DesignRevoked(designId, msg.sender);
    }

    /**
     * @notice Marks the caller's design as superseded by its newer version `successorId`
     * (a registered, unrevoked design of the caller). Existing licences stay; new ones are
     * refused.
     * @dev Reverts with {UnknownDesign}, {NotRegistrant}, {DesignIsRevoked} or
     * {InvalidSuccessor}.
     */
    function supersede(bytes32 designId, bytes32 successorId) external {
        Design storage d = _ownDesign(designId);
        Design storage s = _designs[successorId];
        if (successorId == designId || s.designer != msg.sender || s.flags & FLAG_REVOKED != 0) {
            revert InvalidSuccessor(designId, successorId);
        }
        d.flags |= FLAG_SUPERSEDED;
        emit DesignSuperseded(designId, successorId, msg.sender);
    }

    // ------------------------------------------------------------------------------------
    // Licences and shares
    // ------------------------------------------------------------------------------------

    /**
     * @notice Licenses the caller's design to the active member `licensee` for `royaltyPpm`
     * (parts per million of an order's price); granting again replaces the royalty.
     * @dev Reverts with {NotDesigner}, {UnknownDesign}, {NotRegistrant}, {DesignIsRevoked},
     * {DesignIsSuperseded}, {LicenseeNotMember} or {InvalidRoyalty}.
     */
    function grantLicence(bytes32 designId, address licensee, uint32 royaltyPpm) external {
        _checkDesigner(msg.sender);
        Design storage d = _ownDesign(designId);
        if (d.flags & FLAG_SUPERSEDED != 0) revert DesignIsSuperseded(designId);
        if (!_consortium.hasRole(licensee, 0)) revert LicenseeNotMember(licensee);
        if (royaltyPpm > ROYALTY_SCALE) revert InvalidRoyalty(royaltyPpm);
        _licences[designId][licensee].push(_clock(), _packLicence(true, msg.sender, royaltyPpm));
        emit LicenceGranted(designId, licensee, msg.sender, royaltyPpm);
    }

    /**
     * @notice Revokes the licence of the caller's design to `licensee`.
     * @dev Allowed to a suspended designer and on a revoked design. Reverts with
     * {UnknownDesign}, {NotRegistrant} or {NoLicence}.
     */
    function revokeLicence(bytes32 designId, address licensee) external {
        Design storage d = _existing(designId);
        if (d.designer != msg.sender) revert NotRegistrant(designId, msg.sender);
        Checkpoints.Trace208 storage history = _licences[designId][licensee];
        (bool active, address grantor, uint32 royalty) = _unpackLicence(history.latest());
        if (!active || grantor != msg.sender) revert NoLicence(designId, licensee);
        history.push(_clock(), _packLicence(false, msg.sender, royalty));
        emit LicenceRevoked(designId, licensee, msg.sender);
    }

    /**
     * @notice Records that the caller shared `designId` encrypted with `recipient`, who must
     * be an active member holding an active licence.
     * @param ciphertextHash SHA-256 of the ciphertext blob.
     * @param wrappedKeyHash SHA-256 of the envelope wrapping the file key to the recipient.
     * @dev Reverts with {NotDesigner}, {UnknownDesign}, {NotRegistrant}, {DesignIsRevoked},
     * {ZeroHash}, {LicenseeNotMember} or {NoLicence}.
     */
    function recordShare(
        bytes32 designId,
        address recipient,
        bytes32 ciphertextHash,
        bytes32 wrappedKeyHash
    ) external {
        _checkDesigner(msg.sender);
        _ownDesign(designId);
        if (ciphertextHash == 0 || wrappedKeyHash == 0) revert ZeroHash();
        if (!_consortium.hasRole(recipient, 0)) revert LicenseeNotMember(recipient);
        (bool active,,) = licenceOf(designId, recipient);
        if (!active) revert NoLicence(designId, recipient);
        _shares[designId][recipient] = Share(ciphertextHash, wrappedKeyHash, _clock());
        emit DesignShared(designId, recipient, ciphertextHash, wrappedKeyHash);
    }

    // ------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------

    /// @notice The Consortium this registry asks about membership.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    /// @notice The record of `designId` (all zero if not registered or not yet claimed).
    function design(bytes32 designId) external view returns (Design memory) {
        return _designs[designId];
    }

    /// @notice The block at which `designId` was revoked (0 if it is not).
    function revokedAt(bytes32 designId) external view returns (uint256) {
        return _revokedAt[designId];
    }

    /// @notice The record of batch `root` (all zero if unknown).
    function batch(bytes32 root) external view returns (Batch memory) {
        return _batches[root];
    }

    /// @notice The StandardMerkleTree leaf of a batch member: the double keccak of
    /// `abi.encode(designId, metadataHash, parentId)`.
    function leafHash(bytes32 designId, bytes32 metadataHash, bytes32 parentId)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(designId, metadataHash, parentId))));
    }

    /// @notice Whether `proof` places the member (`designId`, `metadataHash`, `parentId`)
    /// under the registered batch `root`.
    function verifyMember(
        bytes32 root,
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        bytes32[] calldata proof
    ) external view returns (bool) {
        return _batches[root].designer != address(0)
            && MerkleProof.verifyCalldata(proof, root, leafHash(designId, metadataHash, parentId));
    }

    /// @inheritdoc IDesignLicences
    function licenceOf(bytes32 designId, address licensee)
        public
        view
        returns (bool active, address designer, uint32 royaltyPpm)
    {
        Design storage d = _designs[designId];
        designer = d.designer;
        address grantor;
        (active, grantor, royaltyPpm) = _unpackLicence(_licences[designId][licensee].latest());
        active = active && grantor == designer && d.flags & FLAG_REVOKED == 0;
    }

    /**
     * @notice The licence of `designId` to `licensee` at the end of block `blockNumber`.
     * @dev `active` also requires that the design was not revoked by then and that the
     * licence was granted by the design's (current) priority holder. Reverts with
     * {FutureBlock} if `blockNumber` is after the current block.
     */
    function licenceAt(bytes32 designId, address licensee, uint256 blockNumber)
        external
        view
        returns (bool active, address designer, uint32 royaltyPpm)
    {
        if (blockNumber > block.number) revert FutureBlock(blockNumber);
        designer = _designs[designId].designer;
        address grantor;
        (active, grantor, royaltyPpm) =
            _unpackLicence(_licences[designId][licensee].upperLookupRecent(uint48(blockNumber)));
        uint256 revokedBlock = _revokedAt[designId];
        active = active && grantor == designer && (revokedBlock == 0 || revokedBlock > blockNumber);
    }

    /// @notice The latest share of `designId` to `recipient` (all zero if none).
    function shareOf(bytes32 designId, address recipient) external view returns (Share memory) {
        return _shares[designId][recipient];
    }

    // ------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------

    function _checkDesigner(address account) private view {
        if (!_consortium.hasRole(account, DESIGNER)) revert NotDesigner(account);
    }

    /// @dev Reverts unless `parentId` was registered at or before `atBlock` and not revoked
    /// by then.
    function _checkParent(bytes32 parentId, uint256 atBlock) private view {
        Design storage p = _designs[parentId];
        if (p.designer == address(0) || p.blockNumber > atBlock) revert UnknownParent(parentId);
        uint256 revokedBlock = _revokedAt[parentId];
        if (revokedBlock != 0 && revokedBlock <= atBlock) revert ParentRevoked(parentId);
    }

    function _existing(bytes32 designId) private view returns (Design storage d) {
        d = _designs[designId];
        if (d.designer == address(0)) revert UnknownDesign(designId);
    }

    /// @dev The caller's unrevoked design `designId`.
    function _ownDesign(bytes32 designId) private view returns (Design storage d) {
        d = _existing(designId);
        if (d.designer != msg.sender) revert NotRegistrant(designId, msg.sender);
        if (d.flags & FLAG_REVOKED != 0) revert DesignIsRevoked(designId);
    }

    function _packLicence(bool active, address grantor, uint32 royaltyPpm) private pure returns (uint208) {
        return uint208(royaltyPpm) | (uint208(active ? 1 : 0) << 32) | (uint208(uint160(grantor)) << 33);
    }

    function _unpackLicence(uint208 packed)
        private
        pure
        returns (bool active, address grantor, uint32 royaltyPpm)
    {
        royaltyPpm = uint32(packed);
        active = (packed >> 32) & 1 == 1;
        grantor = address(uint160(packed >> 33));
    }

    function _clock() private view returns (uint48) {
        return SafeCast.toUint48(block.number);
    }
}
