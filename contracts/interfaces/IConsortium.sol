// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICofabErrors} from "../common/Common.sol";

/**
 * @title IConsortium
 * @notice The membership register of a cofab consortium: its types, events and errors, and
 * what the other cofab contracts ask it. Implemented by Consortium.
 */
interface IConsortium is ICofabErrors {
    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /// @notice Lifecycle of a membership. `None` means "never admitted".
    enum MemberStatus {
        None,
        Active,
        Suspended
    }

    /// @notice What a council proposal does when executed.
    enum ProposalKind {
        Admit,
        SetRoles,
        Suspend,
        Readmit,
        SetQuorum,
        UnbindDevice
    }

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /**
     * @notice `member` was admitted as an active member.
     * @param member The new member.
     * @param roles Its roles bitmask.
     * @param metadataHash Hash of its off-chain profile document.
     * @param encryptionKey Its X25519 public encryption key.
     * @param proposalId The executed proposal, or 0 for the founding council.
     */
    event MemberAdmitted(
        address indexed member,
        uint32 roles,
        bytes32 metadataHash,
        bytes32 encryptionKey,
        uint256 indexed proposalId
    );

    /**
     * @notice The roles of `member` were replaced.
     * @param member The member concerned (active or suspended).
     * @param previousRoles Its roles before.
     * @param roles Its roles now.
     * @param proposalId The executed proposal.
     */
    event MemberRolesChanged(
        address indexed member, uint32 previousRoles, uint32 roles, uint256 indexed proposalId
    );

    /**
     * @notice `member` was suspended: it keeps its roles but can no longer exercise them.
     * @param member The member concerned.
     * @param proposalId The executed proposal.
     */
    event MemberSuspended(address indexed member, uint256 indexed proposalId);

    /**
     * @notice `member` was readmitted with the roles it had.
     * @param member The member concerned.
     * @param proposalId The executed proposal.
     */
    event MemberReadmitted(address indexed member, uint256 indexed proposalId);

    /**
     * @notice `member` replaced its profile hash and encryption key.
     * @param member The member concerned.
     * @param metadataHash Hash of its new off-chain profile document.
     * @param encryptionKey Its new X25519 public encryption key.
     */
    event MemberProfileUpdated(address indexed member, bytes32 metadataHash, bytes32 encryptionKey);

    /**
     * @notice Proposal `id` was opened by `proposer`.
     * @param id The new proposal id.
     * @param kind What it does.
     * @param target The account concerned (zero for a quorum change, the device key for an
     * unbinding).
     * @param roles Roles to grant (Admit, SetRoles), else zero.
     * @param quorumValue New quorum (SetQuorum), else zero.
     * @param proposer The council member who opened it (its approval is counted at once).
     * @param expiresAt Last timestamp at which it can be approved.
     */
    event ProposalCreated(
        uint256 indexed id,
        ProposalKind kind,
        address indexed target,
        uint32 roles,
        uint16 quorumValue,
        address indexed proposer,
        uint48 expiresAt
    );

    /**
     * @notice `approver` approved proposal `id`.
     * @param id The proposal.
     * @param approver The approving council member.
     * @param approvals Approvals collected so far, this one included.
     * @param required The {effectiveQuorum} when this approval was counted.
     */
    event ProposalApproved(
        uint256 indexed id, address indexed approver, uint16 approvals, uint16 required
    );

    /// @notice Proposal `id` was executed; the kind-specific event is emitted alongside.
    event ProposalExecuted(uint256 indexed id);

    /// @notice Proposal `id` was cancelled by its proposer.
    event ProposalCancelled(uint256 indexed id);

    /**
     * @notice The configured quorum changed.
     * @param previousQuorum The quorum before.
     * @param newQuorum The quorum now.
     * @param proposalId The executed proposal.
     */
    event QuorumChanged(uint16 previousQuorum, uint16 newQuorum, uint256 indexed proposalId);

    /**
     * @notice `owner` authorised (or renewed) `device` as a signing key.
     * @param owner The factory the key signs for.
     * @param device The key's address.
     * @param expiresAt Timestamp from which its signatures are no longer valid; 0 = never.
     */
    event DeviceAuthorized(address indexed owner, address indexed device, uint48 expiresAt);

    /**
     * @notice `owner` revoked `device`; it stays bound to `owner`.
     * @param owner The factory the key was authorised for.
     * @param device The key's address.
     */
    event DeviceRevoked(address indexed owner, address indexed device);

    /**
     * @notice `device` is no longer bound to `owner`: it may be bound anew or admitted.
     * @param owner The factory the key was bound to.
     * @param device The key's address.
     * @param proposalId The executed {ProposalKind-UnbindDevice} or {ProposalKind-Admit}
     * proposal, or 0 when another factory bound the key after `owner` stopped being an
     * active factory.
     */
    event DeviceUnbound(address indexed owner, address indexed device, uint256 indexed proposalId);

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    /// @notice `account` is not a member of the consortium.
    error NotMember(address account);
    /// @notice Member `account` is suspended.
    error MemberNotActive(address account);
    /// @notice `account` is already a member.
    error AlreadyMember(address account);
    /// @notice Member `account` is not suspended.
    error MemberNotSuspended(address account);
    /// @notice Roles bitmask `roles` is invalid (use council, factory, designer, auditor, buyer).
    error InvalidRoles(uint32 roles);
    /// @notice `account` is listed twice.
    error DuplicateMember(address account);
    /// @notice There is no proposal `id`.
    error UnknownProposal(uint256 id);
    /// @notice Proposal `id` is already executed or cancelled.
    error ProposalClosed(uint256 id);
    /// @notice Proposal `id` expired at `expiresAt`.
    error ProposalExpired(uint256 id, uint48 expiresAt);
    /// @notice Proposal `id` was already approved by `approver`.
    error AlreadyApproved(uint256 id, address approver);
    /// @notice Only the proposer may cancel proposal `id` (`caller` is not).
    error NotProposer(uint256 id, address caller);
    /// @notice Quorum `quorum` is invalid for a council of `councilSize`.
    error InvalidQuorum(uint16 quorum, uint256 councilSize);
    /// @notice Proposal lifetime must be positive.
    error InvalidTtl();
    /// @notice `account` is the last active council member.
    error LastCouncilMember(address account);
    /// @notice `account` is a member and cannot be a device key.
    error DeviceIsMember(address account);
    /// @notice `account` is a device key and cannot become a member.
    /// @dev `account` is a device key of an active factory that has not been revoked (expired or
    /// not), so it cannot be admitted; its owner must revoke it or the council unbind it first.
    error AccountIsDevice(address account);
    /// @notice Device key `device` belongs to `owner`.
    error DeviceTaken(address device, address owner);
    /// @notice The binding is not signed by device key `device` (the signature recovers to
    /// `signer`): only the device key itself can consent to its binding.
    error InvalidDeviceSignature(address device, address signer);
    /// @notice Device key `device` is not bound to any factory.
    error DeviceNotBound(address device);
    /// @notice Device key `device` is not authorised.
    error DeviceNotAuthorized(address device);
    /// @notice Device key `device` does not belong to `caller`.
    error NotDeviceOwner(address device, address caller);
    /// @notice Expiry `expiresAt` is not in the future.
    error InvalidExpiry(uint48 expiresAt);

    // ------------------------------------------------------------------------------------
    // Functions
    // ------------------------------------------------------------------------------------

    /// @notice Whether `account` is an active member holding every bit of `role`.
    function hasRole(address account, uint32 role) external view returns (bool);

    /// @notice Whether `signer` could sign for `member` acting as `role` at `blockNumber`/`timestamp`
    /// (the member itself, or one of its device keys authorised and unexpired then).
    function isAuthorizedSigner(address member, address signer, uint32 role, uint256 blockNumber, uint256 timestamp)
        external
        view
        returns (bool);
}
