"""Typed access to the Consortium contract: members, council proposals, device keys.

A device key is bound to a factory only with its own consent: an EIP-712 `DeviceBinding`
(factory, device, expiresAt, nonce) signed by the device key under the Consortium's domain
(name "cofab", version "1", chain id, Consortium address). `DeviceBinding.typed_data` is the
`eth_signTypedData_v4` JSON, so a device or wallet elsewhere can sign it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from pydantic import Field, PlainSerializer, computed_field
from web3.contract import Contract
from web3.logs import DISCARD

from ledger.core.abi import SolidityEnum, bytes32, checksum, solidity_enum
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.types import Hex, Label, Record
from ledger.eth import eip712
from ledger.eth.chain import block_head
from ledger.eth.contract import View, call
from ledger.eth.tx import Sender
from ledger.membership.roles import role_names


@solidity_enum
class MemberStatus(SolidityEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


@solidity_enum
class ProposalKind(SolidityEnum):
    """What a council proposal does. Its label (`set_roles`) is the one name of a kind;
    `parse` also takes the CLI's hyphenated spelling (`set-roles`) and `quorum`."""

    ADMIT = 0
    SET_ROLES = 1
    SUSPEND = 2
    READMIT = 3
    SET_QUORUM = 4
    UNBIND_DEVICE = 5

    @classmethod
    def parse(cls, text: str | ProposalKind) -> ProposalKind:
        if isinstance(text, ProposalKind):
            return text
        name = text.strip().lower().replace("-", "_")
        name = "set_quorum" if name == "quorum" else name
        try:
            return cls[name.upper()]
        except KeyError:
            kinds = ", ".join(k.label for k in cls)
            raise InvalidInput(
                f"unknown proposal kind {text!r}: use {kinds}", field="kind"
            ) from None


class Member(Record):
    address: str
    roles: Annotated[int, Field(serialization_alias="roles_mask")]  # role bits
    status: Label[MemberStatus]
    since: int
    metadata_hash: Hex
    encryption_key: Hex

    @computed_field(alias="roles")
    @property
    def role_list(self) -> list[str]:
        return role_names(self.roles)


class Proposal(Record):
    id: int
    kind: Label[ProposalKind]
    target: str
    roles: Annotated[int, PlainSerializer(role_names, return_type=list[str])]
    quorum_value: int
    proposer: str
    expires_at: int
    approvals: int
    executed: bool = Field(exclude=True)
    cancelled: bool = Field(exclude=True)
    metadata_hash: Hex
    encryption_key: Hex

    @computed_field
    @property
    def state(self) -> str:
        """open | executed | cancelled."""
        if self.executed:
            return "executed"
        if self.cancelled:
            return "cancelled"
        return "open"


class Device(Record):
    address: str
    owner: str  # the zero address once unbound
    expires_at: int
    active: bool
    authorized_at_block: int
    nonce: int  # the nonce the device's next binding signature must carry


DEVICE_BINDING_TYPE = [
    {"name": "factory", "type": "address"},
    {"name": "device", "type": "address"},
    {"name": "expiresAt", "type": "uint48"},
    {"name": "nonce", "type": "uint256"},
]
MAX_EXPIRY = 2**48 - 1


@dataclass(frozen=True)
class DeviceBinding:
    """A device key's consent to sign for `factory` until `expires_at` (0 = never)."""

    factory: str
    device: str
    expires_at: int
    nonce: int

    def message(self) -> dict[str, Any]:
        return {
            "factory": to_checksum_address(self.factory),
            "device": to_checksum_address(self.device),
            "expiresAt": self.expires_at,
            "nonce": self.nonce,
        }

    def typed_data(self, chain_id: int, consortium: str) -> dict[str, Any]:
        return {
            "types": {
                "EIP712Domain": eip712.DOMAIN_TYPE,
                "DeviceBinding": DEVICE_BINDING_TYPE,
            },
            "primaryType": "DeviceBinding",
            "domain": eip712.domain(chain_id, consortium),
            "message": self.message(),
        }


class ConsortiumClient:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._member = View.named(contract, "member")
        # members as of one block (its hash), for checks repeated on every request
        self._at_head: tuple[bytes, dict[str, Member | None]] = (b"", {})

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @property
    def chain_id(self) -> int:
        return int(self.contract.w3.eth.chain_id)

    # --- reads -----------------------------------------------------------------------
    def member(self, address: str, block: int | str = "latest") -> Member:
        addr = checksum(address)
        raw = self._member(addr, block=block)
        if raw[1] == MemberStatus.NONE:
            raise NotFound(f"{addr} is not a member of the consortium")
        return Member(
            address=addr,
            roles=raw[0],
            status=MemberStatus(raw[1]),
            since=raw[2],
            metadata_hash=raw[3],
            encryption_key=raw[4],
        )

    def member_now(self, address: str) -> Member | None:
        """The member at `address` as of the chain's latest block, None if there is none.

        The API checks the caller's membership on every request; answers are kept for the
        block they were read at (by hash, so a chain moved back to an earlier block is
        never answered from a later one), and a request in the same block costs a block
        header instead of a contract call."""
        head = block_head(self.contract.w3, "latest")
        if head is None:  # a node without its latest block: read without keeping
            return self._member_or_none(address, "latest")
        number, digest, _ = head
        addr = checksum(address)
        seen, found = self._at_head
        if seen != digest:
            found = {}
            self._at_head = (digest, found)
        if addr not in found:
            found[addr] = self._member_or_none(addr, number)
        return found[addr]

    def _member_or_none(self, address: str, block: int | str) -> Member | None:
        try:
            return self.member(address, block=block)
        except NotFound:
            return None

    def members(self) -> list[Member]:
        count = call(self.contract.functions.memberCount())
        addresses = [call(self.contract.functions.memberAt(i)) for i in range(count)]
        return [self.member(a) for a in addresses]

    def has_role(self, address: str, role: int) -> bool:
        return bool(call(self.contract.functions.hasRole(checksum(address), int(role))))

    def roles_at(self, address: str, block_number: int) -> tuple[int, MemberStatus]:
        roles, status = call(self.contract.functions.rolesAt(checksum(address), block_number))
        return int(roles), MemberStatus(status)

    def governance(self) -> dict[str, int]:
        fns = self.contract.functions
        return {
            "council_size": int(call(fns.councilSize())),
            "quorum": int(call(fns.quorum())),
            "effective_quorum": int(call(fns.effectiveQuorum())),
            "proposal_ttl": int(call(fns.proposalTtl())),
            "proposal_count": int(call(fns.proposalCount())),
        }

    def proposal(self, proposal_id: int) -> Proposal:
        raw = call(self.contract.functions.proposal(proposal_id))
        fields: tuple[str, ...] = (
            "target",
            "roles",
            "quorum_value",
            "proposer",
            "expires_at",
            "approvals",
        )
        fields += ("executed", "cancelled", "metadata_hash", "encryption_key")
        return Proposal(
            id=proposal_id, kind=ProposalKind(raw[0]), **dict(zip(fields, raw[1:], strict=True))
        )

    def proposals(self) -> list[Proposal]:
        count = call(self.contract.functions.proposalCount())
        return [self.proposal(i) for i in range(1, count + 1)]

    def _device_record(self, addr: str) -> Device:
        owner, expires_at, active, authorized_at, nonce = call(self.contract.functions.device(addr))
        return Device(
            address=addr,
            owner=owner,
            expires_at=expires_at,
            active=active,
            authorized_at_block=authorized_at,
            nonce=nonce,
        )

    def device(self, address: str) -> Device:
        """A device key bound now, or once bound and since unbound (owner zero)."""
        addr = checksum(address, "device")
        record = self._device_record(addr)
        if int(record.owner, 16) == 0 and record.nonce == 0:
            raise NotFound(f"{addr} is not a device key")
        return record

    def devices_of(self, factory: str) -> list[Device]:
        """Every device key `factory` ever authorised, in order, as the chain holds it now
        (a revoked or unbound one has the zero owner); one since bound to another factory
        is left out."""
        owner = checksum(factory, "factory")
        logs = self.contract.events.DeviceAuthorized().get_logs(
            from_block=0, argument_filters={"owner": owner}
        )
        found = dict.fromkeys(str(e["args"]["device"]) for e in logs)
        records = [self._device_record(a) for a in found]
        return [r for r in records if r.owner == owner or int(r.owner, 16) == 0]

    def device_binding(self, factory: str, device: str, expires_at: int = 0) -> DeviceBinding:
        """What `device` must sign to be bound to `factory` next (its current nonce)."""
        if not 0 <= expires_at <= MAX_EXPIRY:
            raise InvalidInput("expiry must be a unix time or 0 for none", field="expires_at")
        addr = checksum(device, "device")
        nonce = self._device_record(addr).nonce
        return DeviceBinding(checksum(factory, "factory"), addr, expires_at, nonce)

    def binding_typed_data(self, binding: DeviceBinding) -> dict[str, Any]:
        return binding.typed_data(self.chain_id, self.address)

    def sign_binding(self, device: LocalAccount, factory: str, expires_at: int = 0) -> bytes:
        """The device key's consent to be bound to `factory` (proof that it holds the key)."""
        binding = self.device_binding(factory, device.address, expires_at)
        return eip712.sign(device, self.binding_typed_data(binding))

    def is_authorized_signer(
        self, member: str, signer: str, role: int, block_number: int, timestamp: int
    ) -> bool:
        fn = self.contract.functions.isAuthorizedSigner(
            checksum(member), checksum(signer), int(role), block_number, timestamp
        )
        return bool(call(fn))

    # --- writes ----------------------------------------------------------------------
    def _proposal_id(self, receipt: Any) -> int:
        events = self.contract.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["id"])

    def propose_admit(
        self,
        sender: Sender,
        account: str,
        roles: int,
        metadata_hash: str | bytes | None = None,
        encryption_key: str | bytes | None = None,
    ) -> tuple[int, Any]:
        fn = self.contract.functions.proposeAdmit(
            checksum(account),
            int(roles),
            bytes32(metadata_hash, "metadata hash"),
            bytes32(encryption_key, "encryption key"),
        )
        receipt = sender.transact(fn)
        return self._proposal_id(receipt), receipt

    def propose_set_roles(self, sender: Sender, account: str, roles: int) -> tuple[int, Any]:
        receipt = sender.transact(
            self.contract.functions.proposeSetRoles(checksum(account), int(roles))
        )
        return self._proposal_id(receipt), receipt

    def propose_suspend(self, sender: Sender, account: str) -> tuple[int, Any]:
        receipt = sender.transact(self.contract.functions.proposeSuspend(checksum(account)))
        return self._proposal_id(receipt), receipt

    def propose_readmit(self, sender: Sender, account: str) -> tuple[int, Any]:
        receipt = sender.transact(self.contract.functions.proposeReadmit(checksum(account)))
        return self._proposal_id(receipt), receipt

    def propose_quorum(self, sender: Sender, quorum: int) -> tuple[int, Any]:
        if not 1 <= quorum <= 0xFFFF:
            raise InvalidInput(f"quorum {quorum} is out of range", field="quorum")
        receipt = sender.transact(self.contract.functions.proposeQuorum(quorum))
        return self._proposal_id(receipt), receipt

    def propose(
        self,
        sender: Sender,
        kind: str | ProposalKind,
        *,
        target: str | None = None,
        roles: int | None = None,
        quorum: int | None = None,
        metadata_hash: str | bytes | None = None,
        encryption_key: str | bytes | None = None,
    ) -> int:
        """Open a proposal of any `kind` (see `ProposalKind.parse`), checking that it names
        what that kind needs; returns its id. Every adapter proposes through this."""
        kind = ProposalKind.parse(kind)
        if kind is ProposalKind.SET_QUORUM:
            if quorum is None:
                raise InvalidInput("set_quorum proposals need a quorum", field="quorum")
            return self.propose_quorum(sender, quorum)[0]
        if not target:
            raise InvalidInput(f"{kind.label} proposals need a target address", field="target")
        if kind in (ProposalKind.ADMIT, ProposalKind.SET_ROLES) and not roles:
            raise InvalidInput(f"{kind.label} proposals need at least one role", field="roles")
        if kind is ProposalKind.ADMIT:
            assert roles is not None
            return self.propose_admit(sender, target, roles, metadata_hash, encryption_key)[0]
        if kind is ProposalKind.SET_ROLES:
            assert roles is not None
            return self.propose_set_roles(sender, target, roles)[0]
        single = {
            ProposalKind.SUSPEND: self.propose_suspend,
            ProposalKind.READMIT: self.propose_readmit,
            ProposalKind.UNBIND_DEVICE: self.propose_unbind_device,
        }
        return single[kind](sender, target)[0]

    def approve(self, sender: Sender, proposal_id: int) -> Any:
        return sender.transact(self.contract.functions.approve(proposal_id))

    def cancel(self, sender: Sender, proposal_id: int) -> Any:
        return sender.transact(self.contract.functions.cancel(proposal_id))

    def update_profile(
        self, sender: Sender, metadata_hash: str | bytes | None, encryption_key: str | bytes | None
    ) -> Any:
        fn = self.contract.functions.updateProfile(
            bytes32(metadata_hash, "metadata hash"), bytes32(encryption_key, "encryption key")
        )
        return sender.transact(fn)

    def authorize_device(
        self,
        sender: Sender,
        device: str | LocalAccount,
        expires_at: int = 0,
        signature: str | bytes | None = None,
    ) -> Any:
        """Bind `device` to the sender's factory with the device key's binding signature:
        given, or made here when `device` is the key itself."""
        if not 0 <= expires_at <= MAX_EXPIRY:
            raise InvalidInput("expiry must be a unix time or 0 for none", field="expires_at")
        if isinstance(device, LocalAccount):
            address = device.address
            if signature is None:
                signature = self.sign_binding(device, sender.address, expires_at)
        else:
            address = checksum(device, "device")
        proof = eip712.signature_bytes(signature, "device signature")
        if not proof:
            raise InvalidInput(
                f"the device key {address} must sign its binding to {sender.address} "
                "(an EIP-712 DeviceBinding signature)",
                field="signature",
            )
        fn = self.contract.functions.authorizeDevice(address, expires_at, proof)
        return sender.transact(fn)

    def propose_unbind_device(self, sender: Sender, device: str) -> tuple[int, Any]:
        receipt = sender.transact(
            self.contract.functions.proposeUnbindDevice(checksum(device, "device"))
        )
        return self._proposal_id(receipt), receipt

    def revoke_device(self, sender: Sender, device: str) -> Any:
        return sender.transact(self.contract.functions.revokeDevice(checksum(device, "device")))
