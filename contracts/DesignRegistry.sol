// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Ppm, Roles} from "./common/Common.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDesignLicences} from "./interfaces/IDesignLicences.sol";
import {IDesignRegistry} from "./interfaces/IDesignRegistry.sol";

/**
 * @title DesignRegistry
 * @notice Proof of authorship and priority for design files, their versions, licences and
 * encrypted shares.
 *
 * A design is identified by the SHA-256 of its file bytes (what `sha256sum` prints).
 * Priority is bound to the author *before* the content hash is public, by commit and
 * reveal:
 *
 * - {commit} records a commitment `keccak256(abi.encode(designId, metadataHash, parentId,
 *   designer, salt))` under the committing designer, with its block and time. The same
 *   bytes sent by another account (a copy of the pending transaction) are that account's
 *   own record, which can never be revealed: the commitment names its author.
 * - {registerBatch} does the same for many files at once: a StandardMerkleTree root whose
 *   leaves `abi.encode(bytes32 designId, bytes32 metadataHash, bytes32 parentId, address
 *   designer)` name the designer, recorded under the committing designer.
 * - {reveal} (single) or {claim} (batch member) turns a commitment into the design record,
 *   dated at the *commitment's* block and attributed to the designer it names, whoever
 *   sends it. It is needed before the design is licensed, shared, superseded, revoked or
 *   used as a parent; the node does it when it first needs to.
 *
 * The earliest commitment wins: revealing content already recorded at an earlier (or the
 * same) block is refused with {DesignExists}; a record from a later block is displaced
 * ({DesignPreempted}) and the licences its registrant granted lapse. So whoever learns a
 * content hash from a pending reveal and commits and reveals it ahead of that reveal holds
 * it only until the reveal is mined: its commitment is later.
 *
 * The designer revokes ({revoke}) or supersedes ({supersede}) a design and licenses it to
 * members ({grantLicence}, {revokeLicence}) with a royalty on a 1e6 scale; licence history
 * is checkpointed by block ({licenceAt}). A designer records an encrypted share of the file
 * to a licensed member ({recordShare}): the hashes of the ciphertext and of the wrapped-key
 * envelope, so the recipient detects tampering.
 *
 * @dev Membership comes from the Consortium ({IConsortium-hasRole}). The only external
 * call is that view; every function follows checks-effects-events.
 * Gas: {commit} and {registerBatch} write one new slot (time and block) keyed by
 * `(commitment or root, msg.sender)` and emit one event (about 52,000 gas each, whatever a
 * batch's size); the content hash, metadata and parent travel only at reveal, which is
 * paid once, when the design is first used. Keying by the sender costs one keccak and
 * makes a copied commitment a separate, worthless record instead of a block on the
 * author's own.
 */
contract DesignRegistry is IDesignRegistry {
    using Checkpoints for Checkpoints.Trace208;


    /// @notice Flag bit: the designer revoked the design.
    uint8 public constant FLAG_REVOKED = 1;
    /// @notice Flag bit: the designer superseded the design with a newer version.
    uint8 public constant FLAG_SUPERSEDED = 2;
    /// @notice Flag bit: the design was committed in a batch and materialised by {claim}.
    uint8 public constant FLAG_BATCH = 4;

    /**
     * @notice A revealed design (one storage slot).
     * @param designer The author named by the commitment, who holds priority.
     * @param registeredAt `block.timestamp` of the commitment (of the batch, for a claim).
     * @param blockNumber `block.number` of the commitment (of the batch, for a claim).
     * @param flags {FLAG_REVOKED} | {FLAG_SUPERSEDED} | {FLAG_BATCH}.
     */
    struct Design {
        address designer;
        uint40 registeredAt;
        uint40 blockNumber;
        uint8 flags;
    }

    /**
     * @notice When a commitment or a batch root was recorded by one designer (one slot).
     * @param registeredAt `block.timestamp` of the {commit} or {registerBatch}.
     * @param blockNumber `block.number` of the {commit} or {registerBatch}: the priority.
     */
    struct Stamp {
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
    mapping(bytes32 commitment => mapping(address designer => Stamp)) private _commits;
    mapping(bytes32 root => mapping(address designer => Stamp)) private _batches;
    mapping(bytes32 designId => mapping(address licensee => Checkpoints.Trace208)) private
        _licences;
    mapping(bytes32 designId => mapping(address recipient => Share)) private _shares;

    /// @param consortium_ The Consortium contract that says who is an active designer.
    constructor(address consortium_) {
        _consortium = IConsortium(consortium_);
    }

    // ------------------------------------------------------------------------------------
    // Commitments and reveals
    // ------------------------------------------------------------------------------------

    /**
     * @notice Records, for the caller, a commitment to one design (see {commitmentOf}); its
     * block is the design's priority once revealed with {reveal}.
     * @dev One new slot, keyed by `(commitment, msg.sender)`: the same bytes sent by
     * another account (a copy of a pending transaction) make that account's own record,
     * which never reveals because the commitment names its author. Reverts with
     * {MissingRole}, {ZeroHash} or {CommitmentExists}.
     */
    function commit(bytes32 commitment) external {
        _checkDesigner(msg.sender);
        if (commitment == 0) revert ZeroHash();
        Stamp storage s = _commits[commitment][msg.sender];
        uint256 committed = s.blockNumber;
        if (committed != 0) revert CommitmentExists(commitment, msg.sender, committed);
        _commits[commitment][msg.sender] = Stamp(uint40(block.timestamp), uint40(block.number));
        emit DesignCommitted(commitment, msg.sender);
    }

    /**
     * @notice Reveals `designer`'s commitment to `designId`: records the design for
     * `designer`, dated at the commitment's block. Anyone may send it (it is the
     * designer's certificate); the record goes to the designer the commitment names.
     * @param parentId The design this one is a version of (zero: none): recorded, and not
     * revoked, at the commitment's block.
     * @param metadataHash Hash of the off-chain metadata document (title, format, size).
     * @param salt The designer's secret that kept the commitment unguessable.
     * @dev Membership was checked at {commit}: a later suspension does not forfeit the
     * priority. Reverts with {ZeroHash}, {UnknownCommitment}, {UnknownParent},
     * {ParentRevoked} or {DesignExists} (content recorded at an earlier or the same block).
     */
    function reveal(
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        address designer,
        bytes32 salt
    ) external {
        bytes32 commitment = commitmentOf(designId, metadataHash, parentId, designer, salt);
        Stamp memory s = _commits[commitment][designer];
        if (s.blockNumber == 0) revert UnknownCommitment(commitment, designer);
        _record(designId, designer, parentId, s, commitment, 0);
        emit DesignRegistered(designId, designer, parentId, metadataHash, commitment, s.blockNumber);
    }

    /**
     * @notice Commits `count` designs of the caller under a StandardMerkleTree `root`
     * whose leaves name the caller (see {leafHash}).
     * @param manifestHash SHA-256 of the tree document (kept off-chain).
     * @dev One slot keyed by `(root, msg.sender)`, whatever `count`; members become design
     * records with {claim}. A copied root is its copier's record, under which no leaf
     * (they name the author) proves. Reverts with {MissingRole}, {ZeroHash}, {EmptyBatch}
     * or {BatchExists}.
     */
    function registerBatch(bytes32 root, uint256 count, bytes32 manifestHash) external {
        _checkDesigner(msg.sender);
        if (root == 0) revert ZeroHash();
        if (count == 0) revert EmptyBatch();
        Stamp storage b = _batches[root][msg.sender];
        uint256 registered = b.blockNumber;
        if (registered != 0) revert BatchExists(root, msg.sender, registered);
        _batches[root][msg.sender] = Stamp(uint40(block.timestamp), uint40(block.number));
        emit BatchRegistered(root, msg.sender, count, manifestHash);
    }

    /**
     * @notice Records batch member `designId` of `designer`'s batch `root` as `designer`'s
     * design, dated at the batch's block. Anyone may claim; the proof is the evidence.
     * @dev Priority as in {reveal}: an earlier or same-block record refuses it
     * ({DesignExists}), a later one is displaced ({DesignPreempted}). Reverts with
     * {UnknownBatch}, {ZeroHash}, {InvalidProof}, {UnknownParent},
     * {ParentRevoked} or {DesignExists}.
     */
    function claim(
        bytes32 root,
        address designer,
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        bytes32[] calldata proof
    ) external {
        Stamp memory b = _batches[root][designer];
        if (b.blockNumber == 0) revert UnknownBatch(root, designer);
        bytes32 leaf = leafHash(designId, metadataHash, parentId, designer);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(root, designId);
        _record(designId, designer, parentId, b, root, FLAG_BATCH);
        emit DesignClaimed(designId, root, designer, parentId, metadataHash, b.blockNumber);
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
     * @dev Reverts with {MissingRole}, {UnknownDesign}, {NotRegistrant}, {DesignIsRevoked},
     * {DesignIsSuperseded}, {LicenseeNotMember} or {InvalidRoyalty}.
     */
    function grantLicence(bytes32 designId, address licensee, uint32 royaltyPpm) external {
        _checkDesigner(msg.sender);
        Design storage d = _ownDesign(designId);
        if (d.flags & FLAG_SUPERSEDED != 0) revert DesignIsSuperseded(designId);
        if (!_consortium.hasRole(licensee, 0)) revert LicenseeNotMember(licensee);
        if (royaltyPpm > Ppm.SCALE) revert InvalidRoyalty(royaltyPpm);
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
     * @dev Reverts with {MissingRole}, {UnknownDesign}, {NotRegistrant}, {DesignIsRevoked},
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

    /// @notice The record of `designId` (all zero until its commitment is revealed).
    function design(bytes32 designId) external view returns (Design memory) {
        return _designs[designId];
    }

    /// @notice The block at which `designId` was revoked (0 if it is not).
    function revokedAt(bytes32 designId) external view returns (uint256) {
        return _revokedAt[designId];
    }

    /// @notice When `designer` committed `commitment` (all zero if it did not).
    function commitmentStamp(bytes32 commitment, address designer) external view returns (Stamp memory) {
        return _commits[commitment][designer];
    }

    /// @notice When `designer` registered the batch `root` (all zero if it did not).
    function batch(bytes32 root, address designer) external view returns (Stamp memory) {
        return _batches[root][designer];
    }

    /// @notice The commitment to one design: `keccak256(abi.encode(designId, metadataHash,
    /// parentId, designer, salt))`. It names the designer, so it is worthless to anyone else.
    function commitmentOf(
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        address designer,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(designId, metadataHash, parentId, designer, salt));
    }

    /// @notice The StandardMerkleTree leaf of a batch member: the double keccak of
    /// `abi.encode(designId, metadataHash, parentId, designer)`.
    function leafHash(bytes32 designId, bytes32 metadataHash, bytes32 parentId, address designer)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(designId, metadataHash, parentId, designer))));
    }

    /// @notice Whether `proof` places the member (`designId`, `metadataHash`, `parentId`,
    /// `designer`) under the batch `root` that `designer` registered.
    function verifyMember(
        bytes32 root,
        address designer,
        bytes32 designId,
        bytes32 metadataHash,
        bytes32 parentId,
        bytes32[] calldata proof
    ) external view returns (bool) {
        return _batches[root][designer].blockNumber != 0
            && MerkleProof.verifyCalldata(proof, root, leafHash(designId, metadataHash, parentId, designer));
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
        if (!_consortium.hasRole(account, Roles.DESIGNER)) revert MissingRole(account, Roles.DESIGNER);
    }

    /// @dev Reverts unless `parentId` was registered at or before `atBlock` and not revoked
    /// by then.
    function _checkParent(bytes32 parentId, uint256 atBlock) private view {
        Design storage p = _designs[parentId];
        if (p.designer == address(0) || p.blockNumber > atBlock) revert UnknownParent(parentId);
        uint256 revokedBlock = _revokedAt[parentId];
        if (revokedBlock != 0 && revokedBlock <= atBlock) revert ParentRevoked(parentId);
    }

    /**
     * @dev Records `designId` for `designer` with the priority `s` of the commitment (or
     * batch root) `commitment`: refused if recorded at an earlier or the same block, a
     * later record is displaced (its licences lapse: they were granted by another
     * registrant; its revocation goes with it).
     */
    function _record(
        bytes32 designId,
        address designer,
        bytes32 parentId,
        Stamp memory s,
        bytes32 commitment,
        uint8 flags
    ) private {
        if (designId == 0) revert ZeroHash();
        if (parentId != 0) _checkParent(parentId, s.blockNumber);
        Design memory d = _designs[designId];
        if (d.designer != address(0)) {
            if (d.blockNumber <= s.blockNumber) {
                revert DesignExists(designId, d.designer, d.blockNumber);
            }
            delete _revokedAt[designId];
            emit DesignPreempted(designId, d.designer, d.blockNumber, commitment);
        }
        _designs[designId] = Design(designer, s.registeredAt, s.blockNumber, flags);
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
