// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {Roles} from "./common/Common.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";

/**
 * @title Consortium
 * @notice Membership registry of a cofab manufacturing consortium.
 *
 * Members are addresses with a roles bitmask ({COUNCIL}, {FACTORY}, {DESIGNER}, {AUDITOR},
 * {BUYER}), a status, a metadata hash (off-chain profile document) and an X25519 public
 * encryption key. Admissions, role changes, suspensions, readmissions and quorum changes
 * are decided by the council: any active council member opens a proposal (which counts
 * as its first approval) and it executes as soon as {effectiveQuorum} approvals are
 * collected, within {proposalTtl} seconds of its creation.
 *
 * Factories delegate signing to shop-floor device keys with {authorizeDevice}. The device
 * key proves possession by signing an EIP-712 `DeviceBinding` ({DEVICE_BINDING_TYPEHASH})
 * naming the factory, the expiry and a per-device nonce (the domain fixes the chain and
 * this contract), so no factory can bind a key it does not hold, and a binding transaction
 * copied by another factory is worthless to it. A device key stays bound to its factory, which may revoke
 * it at any time; the binding is released when the council unbinds the key
 * ({proposeUnbindDevice}), when the key is admitted as a member, or when another factory
 * binds it (with a fresh signature of the key) after its owner stopped being an active
 * factory.
 *
 * Every membership and device change is checkpointed by block number, so an auditor can
 * ask what a member (or a device key) was allowed to do at the block where a signed
 * record was anchored: see {rolesAt}, {deviceAt} and {isAuthorizedSigner}.
 *
 * @dev The contract makes no external calls; every function follows checks-effects-events.
 * History uses OpenZeppelin checkpoints keyed by `block.number` ({Checkpoints-Trace208} for
 * members, {Checkpoints-Trace224} for devices, whose value packs owner, expiry and state in
 * one slot); a block with several changes keeps only the last one, so lookups return the
 * state at the end of the block.
 */
contract Consortium is IConsortium, EIP712 {
    using Checkpoints for Checkpoints.Trace208;
    using Checkpoints for Checkpoints.Trace224;

    // ------------------------------------------------------------------------------------
    // Roles
    // ------------------------------------------------------------------------------------

    /// @notice Role bit of council members: they propose and approve membership decisions.
    uint32 public constant COUNCIL = Roles.COUNCIL;
    /// @notice Role bit of factories: they accept splits, record production steps and own devices.
    uint32 public constant FACTORY = Roles.FACTORY;
    /// @notice Role bit of designers: they register and licence designs.
    uint32 public constant DESIGNER = Roles.DESIGNER;
    /// @notice Role bit of auditors: they audit jobs and rule on disputes.
    uint32 public constant AUDITOR = Roles.AUDITOR;
    /// @notice Role bit of buyers: they place and pay orders.
    uint32 public constant BUYER = Roles.BUYER;
    /// @notice Union of every defined role bit; a roles mask must be a nonzero subset of it.
    uint32 public constant ALL_ROLES = Roles.ALL;

    /// @notice EIP-712 type a device key signs to consent to being bound to `factory` until
    /// `expiresAt` (0 = no expiry); `nonce` is the device's {Device-nonce}, so a signature
    /// binds once.
    bytes32 public constant DEVICE_BINDING_TYPEHASH = keccak256(
        "DeviceBinding(address factory,address device,uint48 expiresAt,uint256 nonce)"
    );

    // ------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------

    /**
     * @notice A member record.
     * @param roles Roles bitmask (see {COUNCIL} .. {BUYER}).
     * @param status Current status.
     * @param since `block.timestamp` of the admission (unchanged by suspension and readmission).
     * @param metadataHash Hash of the member's off-chain profile document.
     * @param encryptionKey The member's X25519 public key, used to wrap design-file keys.
     */
    struct Member {
        uint32 roles;
        MemberStatus status;
        uint48 since;
        bytes32 metadataHash;
        bytes32 encryptionKey;
    }

    /**
     * @notice A council proposal.
     * @param kind What the proposal does.
     * @param target The account concerned (zero for {ProposalKind-SetQuorum}, the device key
     * for {ProposalKind-UnbindDevice}).
     * @param roles Roles for {ProposalKind-Admit} and {ProposalKind-SetRoles}, else zero.
     * @param quorumValue New quorum for {ProposalKind-SetQuorum}, else zero.
     * @param proposer The council member who opened it.
     * @param expiresAt Last timestamp at which it can still be approved.
     * @param approvals Number of distinct council approvals, the proposer's included.
     * @param executed Whether it has been executed.
     * @param cancelled Whether the proposer cancelled it.
     * @param metadataHash Profile hash of the member to admit ({ProposalKind-Admit} only).
     * @param encryptionKey Encryption key of the member to admit ({ProposalKind-Admit} only).
     */
    struct Proposal {
        ProposalKind kind;
        address target;
        uint32 roles;
        uint16 quorumValue;
        address proposer;
        uint48 expiresAt;
        uint16 approvals;
        bool executed;
        bool cancelled;
        bytes32 metadataHash;
        bytes32 encryptionKey;
    }

    /**
     * @notice A delegated signing key of a factory.
     * @param owner The factory the key is bound to (zero if unbound).
     * @param expiresAt Timestamp from which signatures are no longer valid; 0 means never.
     * @param active Whether the key is currently authorised (false once revoked or unbound).
     * @param authorizedAt `block.number` of the latest authorisation (0 once unbound).
     * @param nonce Number of bindings and unbindings so far: the nonce the next
     * {DEVICE_BINDING_TYPEHASH} signature of the key must carry.
     */
    struct Device {
        address owner;
        uint48 expiresAt;
        bool active;
        uint48 authorizedAt;
        uint64 nonce;
    }

    // ------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------

    uint48 private immutable _proposalTtl;

    uint16 private _quorum;
    uint256 private _councilSize;
    uint256 private _proposalCount;

    mapping(address account => Member) private _members;
    address[] private _memberList;
    mapping(address account => Checkpoints.Trace208) private _memberHistory;

    mapping(uint256 id => Proposal) private _proposals;
    mapping(uint256 id => mapping(address approver => bool)) private _approved;

    mapping(address device => Device) private _devices;
    mapping(address device => Checkpoints.Trace224) private _deviceHistory;

    // ------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------

    /// @dev Reverts with {MissingRole} unless the caller is an active council member.
    modifier onlyCouncil() {
        _checkCouncil(msg.sender);
        _;
    }

    // ------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------

    /**
     * @notice Founds the consortium.
     * @param council The founding council: each becomes an active member with the COUNCIL role.
     * @param quorum_ Approvals needed to execute a proposal, 1..`council.length`.
     * @param proposalTtl_ Seconds a proposal stays open for approval, > 0.
     * @dev Reverts with {ZeroAddress}, {DuplicateMember}, {InvalidQuorum} (also for an empty
     * `council`: no quorum fits) or {InvalidTtl}.
     */
    constructor(
        address[] memory council,
        uint16 quorum_,
        uint48 proposalTtl_
    ) EIP712("cofab", "1") {
        uint256 n = council.length;
        for (uint256 i = 0; i < n; ++i) {
            address account = council[i];
            if (account == address(0)) revert ZeroAddress();
            if (_members[account].status != MemberStatus.None) revert DuplicateMember(account);
            _admit(account, COUNCIL, bytes32(0), bytes32(0), 0);
        }
        if (quorum_ == 0 || quorum_ > n) revert InvalidQuorum(quorum_, n);
        if (proposalTtl_ == 0) revert InvalidTtl();
        _quorum = quorum_;
        _proposalTtl = proposalTtl_;
    }

    // ------------------------------------------------------------------------------------
    // Council proposals
    // ------------------------------------------------------------------------------------

    /**
     * @notice Proposes to admit `account` with `roles` and the given profile.
     * @dev Caller must be an active council member. Reverts with {ZeroAddress},
     * {InvalidRoles}, {AlreadyMember} or {AccountIsDevice} (a device key not yet revoked)
     * for an ineligible target.
     * Executes at once if the caller's approval reaches the quorum.
     * @return id The new proposal id.
     */
    function proposeAdmit(
        address account,
        uint32 roles,
        bytes32 metadataHash,
        bytes32 encryptionKey
    ) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.Admit, account, roles, 0, metadataHash, encryptionKey);
    }

    /**
     * @notice Proposes to replace the roles of member `account` with `roles`.
     * @dev Reverts with {InvalidRoles}, {NotMember}, or {LastCouncilMember} if it would
     * remove the COUNCIL role from the only active council member.
     * @return id The new proposal id.
     */
    function proposeSetRoles(
        address account,
        uint32 roles
    ) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.SetRoles, account, roles, 0, bytes32(0), bytes32(0));
    }

    /**
     * @notice Proposes to suspend the active member `account`.
     * @dev Reverts with {NotMember}, {MemberNotActive}, or {LastCouncilMember} if `account`
     * is the only active council member.
     * @return id The new proposal id.
     */
    function proposeSuspend(address account) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.Suspend, account, 0, 0, bytes32(0), bytes32(0));
    }

    /**
     * @notice Proposes to readmit the suspended member `account` with its previous roles.
     * @dev Reverts with {NotMember} or {MemberNotSuspended}.
     * @return id The new proposal id.
     */
    function proposeReadmit(address account) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.Readmit, account, 0, 0, bytes32(0), bytes32(0));
    }

    /**
     * @notice Proposes to release device key `device` from its factory: it stops signing
     * for it at once and may then be admitted as a member or bound to another factory.
     * @dev Reverts with {DeviceNotBound} if `device` is bound to no factory (also when the
     * proposal executes). Unbinding also spends the device's nonce, so binding signatures
     * it gave before are void.
     * @return id The new proposal id.
     */
    function proposeUnbindDevice(address device) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.UnbindDevice, device, 0, 0, bytes32(0), bytes32(0));
    }

    /**
     * @notice Proposes to set the quorum to `newQuorum`.
     * @dev Reverts with {InvalidQuorum} unless 1 <= `newQuorum` <= {councilSize}.
     * @return id The new proposal id.
     */
    function proposeQuorum(uint16 newQuorum) external onlyCouncil returns (uint256 id) {
        return _propose(ProposalKind.SetQuorum, address(0), 0, newQuorum, bytes32(0), bytes32(0));
    }

    /**
     * @notice Approves proposal `id`; executes it when approvals reach {effectiveQuorum}.
     * @dev Caller must be an active council member. Reverts with {UnknownProposal},
     * {ProposalClosed}, {ProposalExpired} or {AlreadyApproved}. Execution re-validates the
     * proposal against the current state and reverts the whole call if it no longer applies
     * (e.g. {AlreadyMember} when the target was admitted meanwhile).
     *
     * Approvals count when given: suspending an approver later does not withdraw them. If the
     * council shrinks so that {effectiveQuorum} falls to or below the approvals already
     * collected, the next approval executes the proposal (if every remaining council member
     * has approved already, a new proposal is needed).
     */
    function approve(uint256 id) external onlyCouncil {
        Proposal storage p = _openProposal(id);
        if (_approved[id][msg.sender]) revert AlreadyApproved(id, msg.sender);
        _approve(id, p, msg.sender);
    }

    /**
     * @notice Cancels the open proposal `id`.
     * @dev Only its proposer. Reverts with {UnknownProposal}, {NotProposer},
     * {ProposalClosed} or {ProposalExpired}.
     */
    function cancel(uint256 id) external {
        Proposal storage p = _existingProposal(id);
        if (p.proposer != msg.sender) revert NotProposer(id, msg.sender);
        _openProposal(id);
        p.cancelled = true;
        emit ProposalCancelled(id);
    }

    // ------------------------------------------------------------------------------------
    // Members
    // ------------------------------------------------------------------------------------

    /**
     * @notice Replaces the caller's profile hash and encryption key.
     * @dev Caller must be an active member ({NotMember}, {MemberNotActive}).
     */
    function updateProfile(bytes32 metadataHash, bytes32 encryptionKey) external {
        _checkActive(msg.sender);
        Member storage m = _members[msg.sender];
        m.metadataHash = metadataHash;
        m.encryptionKey = encryptionKey;
        emit MemberProfileUpdated(msg.sender, metadataHash, encryptionKey);
    }

    // ------------------------------------------------------------------------------------
    // Devices
    // ------------------------------------------------------------------------------------

    /**
     * @notice Authorises `device` to sign for the caller until `expiresAt` (0 = no expiry),
     * or renews it, with the device key's consent `signature`: an EIP-712
     * {DEVICE_BINDING_TYPEHASH} record (caller, `device`, `expiresAt`, the device's
     * {Device-nonce}) signed by `device` under this contract's domain.
     * @dev Caller must be an active member with the FACTORY role ({NotMember},
     * {MemberNotActive}, {MissingRole}). `device` must not be zero ({ZeroAddress}), a member
     * ({DeviceIsMember}) or bound to another owner that is still an active factory
     * ({DeviceTaken}); `expiresAt` must be 0 or in the future ({InvalidExpiry});
     * `signature` must recover to `device` ({InvalidDeviceSignature}). A binding left by an
     * owner that is no longer an active factory is released ({DeviceUnbound}, proposal 0).
     * The signature names the caller, so a copy sent by another factory fails, and the
     * nonce makes it single-use, so a revoked or unbound key cannot be re-bound with it.
     * Gas: one ECDSA recovery (~4k) on top of two storage slots and one checkpoint.
     */
    function authorizeDevice(address device, uint48 expiresAt, bytes calldata signature) external {
        _checkRole(msg.sender, FACTORY);
        if (device == address(0)) revert ZeroAddress();
        if (_members[device].status != MemberStatus.None) revert DeviceIsMember(device);
        Device storage d = _devices[device];
        address owner = d.owner;
        if (owner != address(0) && owner != msg.sender && hasRole(owner, FACTORY)) {
            revert DeviceTaken(device, owner);
        }
        if (expiresAt != 0 && expiresAt <= block.timestamp) revert InvalidExpiry(expiresAt);
        uint64 nonce = d.nonce;
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(DEVICE_BINDING_TYPEHASH, msg.sender, device, expiresAt, nonce))
        );
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != device) {
            revert InvalidDeviceSignature(device, signer);
        }

        if (owner != address(0) && owner != msg.sender) emit DeviceUnbound(owner, device, 0);
        d.owner = msg.sender;
        d.expiresAt = expiresAt;
        d.active = true;
        d.authorizedAt = SafeCast.toUint48(block.number);
        d.nonce = nonce + 1;
        _checkpointDevice(device, msg.sender, true, expiresAt);
        emit DeviceAuthorized(msg.sender, device, expiresAt);
    }

    /**
     * @notice Revokes the caller's active `device`.
     * @dev Only its owner, even while suspended ({NotDeviceOwner}); reverts with
     * {DeviceNotAuthorized} if already revoked. The key stays bound to the caller, who may
     * authorise it again.
     */
    function revokeDevice(address device) external {
        Device storage d = _devices[device];
        if (d.owner != msg.sender) revert NotDeviceOwner(device, msg.sender);
        if (!d.active) revert DeviceNotAuthorized(device);

        d.active = false;
        _checkpointDevice(device, msg.sender, false, d.expiresAt);
        emit DeviceRevoked(msg.sender, device);
    }

    // ------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------

    /// @notice The record of `account` (all zero if never admitted).
    function member(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @notice Whether `account` was ever admitted (active or suspended).
    function isMember(address account) external view returns (bool) {
        return _members[account].status != MemberStatus.None;
    }

    /// @notice Whether `account` is active and holds every bit of `role`.
    function hasRole(address account, uint32 role) public view returns (bool) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active && m.roles & role == role;
    }

    /// @notice Number of accounts ever admitted.
    function memberCount() external view returns (uint256) {
        return _memberList.length;
    }

    /// @notice The `index`-th admitted account, in admission order.
    function memberAt(uint256 index) external view returns (address) {
        return _memberList[index];
    }

    /// @notice Number of active members holding the COUNCIL role.
    function councilSize() external view returns (uint256) {
        return _councilSize;
    }

    /// @notice The configured quorum (see {effectiveQuorum} for the one applied).
    function quorum() external view returns (uint16) {
        return _quorum;
    }

    /// @notice Approvals a proposal needs now: the lesser of {quorum} and {councilSize}.
    function effectiveQuorum() public view returns (uint16) {
        uint256 size = _councilSize;
        return size < _quorum ? uint16(size) : _quorum;
    }

    /// @notice Seconds a proposal stays open for approval.
    function proposalTtl() external view returns (uint48) {
        return _proposalTtl;
    }

    /// @notice Proposal `id`; reverts with {UnknownProposal} if there is none.
    function proposal(uint256 id) external view returns (Proposal memory) {
        return _existingProposal(id);
    }

    /// @notice Number of proposals ever created (ids are 1..proposalCount).
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @notice Whether `account` approved proposal `id`.
    function hasApproved(uint256 id, address account) external view returns (bool) {
        return _approved[id][account];
    }

    /**
     * @notice Roles and status of `account` at the end of block `blockNumber`.
     * @dev Reverts with {FutureBlock} if `blockNumber` is after the current block.
     */
    function rolesAt(
        address account,
        uint256 blockNumber
    ) public view returns (uint32 roles, MemberStatus status) {
        uint208 packed = _memberHistory[account].upperLookupRecent(_pastKey(blockNumber));
        return (uint32(packed), MemberStatus(uint8(packed >> 32)));
    }

    /// @notice The current record of `device` (all zero if never authorised).
    function device(address account) external view returns (Device memory) {
        return _devices[account];
    }

    /**
     * @notice The EIP-712 digest `device` signs to consent to being bound to `factory`
     * until `expiresAt` with the device's nonce `nonce` (see {authorizeDevice}).
     */
    function deviceBindingDigest(
        address factory,
        address device,
        uint48 expiresAt,
        uint256 nonce
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(DEVICE_BINDING_TYPEHASH, factory, device, expiresAt, nonce))
        );
    }

    /**
     * @notice Authorisation of `device` at the end of block `blockNumber`.
     * @dev `owner` is zero before the device's first authorisation and while it is unbound.
     * Reverts with {FutureBlock} if `blockNumber` is after the current block.
     */
    function deviceAt(
        address device,
        uint256 blockNumber
    ) public view returns (address owner, bool active, uint48 expiresAt) {
        uint224 packed = _deviceHistory[device].upperLookupRecent(
            SafeCast.toUint32(_pastKey(blockNumber))
        );
        return (address(uint160(packed)), (packed >> 208) & 1 == 1, uint48(packed >> 160));
    }

    /**
     * @notice Whether `signer` could sign for `member` with `role` at block `blockNumber`
     * for a record dated `timestamp`.
     * @dev True iff `member` was active with every bit of `role` at the end of
     * `blockNumber`, and `signer` is either `member` itself or a device key owned by
     * `member`, active at that block, with no expiry or `timestamp` before its expiry.
     * A `role` of 0 only requires `member` to have been active.
     * Reverts with {FutureBlock} if `blockNumber` is after the current block.
     */
    function isAuthorizedSigner(
        address member,
        address signer,
        uint32 role,
        uint256 blockNumber,
        uint256 timestamp
    ) external view returns (bool) {
        (uint32 roles, MemberStatus status) = rolesAt(member, blockNumber);
        if (status != MemberStatus.Active || roles & role != role) return false;
        if (signer == member) return true;
        (address owner, bool active, uint48 expiresAt) = deviceAt(signer, blockNumber);
        return owner == member && active && (expiresAt == 0 || timestamp < expiresAt);
    }

    // ------------------------------------------------------------------------------------
    // Internal: proposals
    // ------------------------------------------------------------------------------------

    /// @dev Validates, stores and self-approves a proposal (which may execute it).
    function _propose(
        ProposalKind kind,
        address target,
        uint32 roles,
        uint16 quorumValue,
        bytes32 metadataHash,
        bytes32 encryptionKey
    ) private returns (uint256 id) {
        _validate(kind, target, roles, quorumValue);

        id = ++_proposalCount;
        uint48 expiresAt = SafeCast.toUint48(block.timestamp + _proposalTtl);
        Proposal storage p = _proposals[id];
        p.kind = kind;
        p.target = target;
        p.roles = roles;
        p.quorumValue = quorumValue;
        p.proposer = msg.sender;
        p.expiresAt = expiresAt;
        p.metadataHash = metadataHash;
        p.encryptionKey = encryptionKey;
        emit ProposalCreated(id, kind, target, roles, quorumValue, msg.sender, expiresAt);

        _approve(id, p, msg.sender);
    }

    /// @dev Records `approver`'s approval and executes the proposal once the quorum is met.
    function _approve(uint256 id, Proposal storage p, address approver) private {
        _approved[id][approver] = true;
        uint16 approvals = p.approvals + 1;
        p.approvals = approvals;
        uint16 required = effectiveQuorum();
        emit ProposalApproved(id, approver, approvals, required);
        if (approvals >= required) _execute(id, p);
    }

    /// @dev Re-validates then applies proposal `id`.
    function _execute(uint256 id, Proposal storage p) private {
        ProposalKind kind = p.kind;
        address target = p.target;
        _validate(kind, target, p.roles, p.quorumValue);

        p.executed = true;
        if (kind == ProposalKind.Admit) {
            _admit(target, p.roles, p.metadataHash, p.encryptionKey, id);
        } else if (kind == ProposalKind.SetRoles) {
            _setRoles(target, p.roles, id);
        } else if (kind == ProposalKind.Suspend) {
            _setStatus(target, MemberStatus.Suspended);
            emit MemberSuspended(target, id);
        } else if (kind == ProposalKind.Readmit) {
            _setStatus(target, MemberStatus.Active);
            emit MemberReadmitted(target, id);
        } else if (kind == ProposalKind.UnbindDevice) {
            _unbindDevice(target, id);
        } else {
            uint16 previous = _quorum;
            _quorum = p.quorumValue;
            emit QuorumChanged(previous, p.quorumValue, id);
        }
        emit ProposalExecuted(id);
    }

    /// @dev Reverts unless a proposal of `kind` on `target` applies to the current state.
    function _validate(
        ProposalKind kind,
        address target,
        uint32 roles,
        uint16 quorumValue
    ) private view {
        if (kind == ProposalKind.SetQuorum) {
            if (quorumValue == 0 || quorumValue > _councilSize) {
                revert InvalidQuorum(quorumValue, _councilSize);
            }
            return;
        }
        if (kind == ProposalKind.UnbindDevice) {
            if (_devices[target].owner == address(0)) revert DeviceNotBound(target);
            return;
        }
        Member storage m = _members[target];
        MemberStatus status = m.status;
        if (kind == ProposalKind.Admit) {
            if (target == address(0)) revert ZeroAddress();
            _checkRoles(roles);
            if (status != MemberStatus.None) revert AlreadyMember(target);
            Device storage d = _devices[target];
            if (d.active && hasRole(d.owner, FACTORY)) revert AccountIsDevice(target);
            return;
        }
        if (status == MemberStatus.None) revert NotMember(target);
        if (kind == ProposalKind.SetRoles) {
            _checkRoles(roles);
            if (roles & COUNCIL == 0) _checkNotLastCouncil(target, m);
        } else if (kind == ProposalKind.Suspend) {
            if (status != MemberStatus.Active) revert MemberNotActive(target);
            _checkNotLastCouncil(target, m);
        } else {
            // ProposalKind.Readmit
            if (status != MemberStatus.Suspended) revert MemberNotSuspended(target);
        }
    }

    /// @dev Returns proposal `id`, reverting with {UnknownProposal} if it does not exist.
    function _existingProposal(uint256 id) private view returns (Proposal storage p) {
        if (id == 0 || id > _proposalCount) revert UnknownProposal(id);
        return _proposals[id];
    }

    /// @dev Returns proposal `id` if it exists, is neither executed nor cancelled, and has
    /// not expired.
    function _openProposal(uint256 id) private view returns (Proposal storage p) {
        p = _existingProposal(id);
        if (p.executed || p.cancelled) revert ProposalClosed(id);
        if (block.timestamp > p.expiresAt) revert ProposalExpired(id, p.expiresAt);
    }

    // ------------------------------------------------------------------------------------
    // Internal: membership state
    // ------------------------------------------------------------------------------------

    /// @dev Creates an active member (the caller validated `account` and `roles`), first
    /// releasing a binding of `account` as a device key (revoked, or left by a factory that
    /// is no longer active) so that a member is never also a device key.
    function _admit(
        address account,
        uint32 roles,
        bytes32 metadataHash,
        bytes32 encryptionKey,
        uint256 proposalId
    ) private {
        if (_devices[account].owner != address(0)) _unbindDevice(account, proposalId);
        _members[account] = Member({
            roles: roles,
            status: MemberStatus.Active,
            since: SafeCast.toUint48(block.timestamp),
            metadataHash: metadataHash,
            encryptionKey: encryptionKey
        });
        _memberList.push(account);
        if (roles & COUNCIL != 0) ++_councilSize;
        _checkpointMember(account, roles, MemberStatus.Active);
        emit MemberAdmitted(account, roles, metadataHash, encryptionKey, proposalId);
    }

    /// @dev Replaces the roles of an existing member, keeping {councilSize} in step.
    function _setRoles(address account, uint32 roles, uint256 proposalId) private {
        Member storage m = _members[account];
        uint32 previous = m.roles;
        m.roles = roles;
        if (m.status == MemberStatus.Active) {
            bool wasCouncil = previous & COUNCIL != 0;
            bool isCouncil = roles & COUNCIL != 0;
            if (isCouncil && !wasCouncil) ++_councilSize;
            else if (wasCouncil && !isCouncil) --_councilSize;
        }
        _checkpointMember(account, roles, m.status);
        emit MemberRolesChanged(account, previous, roles, proposalId);
    }

    /// @dev Moves an existing member between Active and Suspended, keeping {councilSize}
    /// in step.
    function _setStatus(address account, MemberStatus status) private {
        Member storage m = _members[account];
        m.status = status;
        if (m.roles & COUNCIL != 0) {
            if (status == MemberStatus.Active) ++_councilSize;
            else --_councilSize;
        }
        _checkpointMember(account, m.roles, status);
    }

    /// @dev Records `account`'s roles and status at the current block (the last write of a
    /// block wins): `roles | uint208(status) << 32`.
    function _checkpointMember(address account, uint32 roles, MemberStatus status) private {
        _memberHistory[account].push(_clock(), uint208(roles) | (uint208(uint8(status)) << 32));
    }

    /// @dev Clears the binding of `device` (the caller checked it has an owner), keeping and
    /// advancing its nonce so that binding signatures given before are void.
    function _unbindDevice(address device, uint256 proposalId) private {
        Device storage d = _devices[device];
        address owner = d.owner;
        d.owner = address(0);
        d.expiresAt = 0;
        d.active = false;
        d.authorizedAt = 0;
        ++d.nonce;
        _checkpointDevice(device, address(0), false, 0);
        emit DeviceUnbound(owner, device, proposalId);
    }

    /// @dev Records device `account`'s state at the current block (the last write of a block
    /// wins) in one slot: `owner | expiresAt << 160 | (active ? 1 : 0) << 208`, keyed by the
    /// block number as uint32 (good for 2^32 blocks).
    function _checkpointDevice(
        address account,
        address owner,
        bool active,
        uint48 expiresAt
    ) private {
        _deviceHistory[account].push(
            SafeCast.toUint32(block.number),
            uint224(uint160(owner)) | (uint224(expiresAt) << 160) | (uint224(active ? 1 : 0) << 208)
        );
    }

    // ------------------------------------------------------------------------------------
    // Internal: checks
    // ------------------------------------------------------------------------------------

    /// @dev Reverts with {MissingRole} unless `account` is an active council member.
    function _checkCouncil(address account) private view {
        if (!hasRole(account, COUNCIL)) revert MissingRole(account, COUNCIL);
    }

    /// @dev Reverts with {NotMember} or {MemberNotActive} unless `account` is an active member.
    function _checkActive(address account) private view {
        MemberStatus status = _members[account].status;
        if (status == MemberStatus.None) revert NotMember(account);
        if (status != MemberStatus.Active) revert MemberNotActive(account);
    }

    /// @dev Reverts unless `account` is an active member with every bit of `role` ({MissingRole}).
    function _checkRole(address account, uint32 role) private view {
        _checkActive(account);
        if (_members[account].roles & role != role) revert MissingRole(account, role);
    }

    /// @dev Reverts with {InvalidRoles} unless `roles` is a nonzero subset of {ALL_ROLES}.
    function _checkRoles(uint32 roles) private pure {
        if (roles == 0 || roles & ~ALL_ROLES != 0) revert InvalidRoles(roles);
    }

    /// @dev Reverts if `account` is the only active council member (`m` is its record).
    function _checkNotLastCouncil(address account, Member storage m) private view {
        if (
            m.status == MemberStatus.Active && m.roles & COUNCIL != 0 && _councilSize == 1
        ) revert LastCouncilMember(account);
    }

    // ------------------------------------------------------------------------------------
    // Internal: clock
    // ------------------------------------------------------------------------------------

    /// @dev The checkpoint key of the current block.
    function _clock() private view returns (uint48) {
        return SafeCast.toUint48(block.number);
    }

    /// @dev The checkpoint key of `blockNumber`, reverting with {FutureBlock} if it is
    /// after the current block.
    function _pastKey(uint256 blockNumber) private view returns (uint48) {
        if (blockNumber > block.number) revert FutureBlock(blockNumber);
        return uint48(blockNumber);
    }
}
