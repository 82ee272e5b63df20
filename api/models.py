"""Request and response bodies of the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.eip4361 import MAX_MESSAGE_BYTES
from api.params import Uint16, Uint48

Address = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="Ethereum address")
Hash32 = Field(default=None, pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="32 bytes, hex")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    chain_id: int
    block_number: int
    contracts: dict[str, str]


class NonceOut(BaseModel):
    nonce: str
    domain: str = Field(description="the EIP-4361 `domain` the message must name")
    uri: str = Field(description="the node's public URL; the message's `URI` must be under it")
    chain_id: int


class LoginIn(BaseModel):
    message: str = Field(max_length=MAX_MESSAGE_BYTES, description="EIP-4361 message text")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class LoginOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    address: str
    expires_at: int


class RolesAtOut(BaseModel):
    address: str
    block_number: int
    roles: list[str]
    status: str


class ProfileIn(BaseModel):
    metadata_hash: str | None = Hash32
    encryption_key: str | None = Hash32


class ProposalIn(BaseModel):
    kind: Literal["admit", "set_roles", "suspend", "readmit", "set_quorum", "unbind_device"]
    target: str | None = Field(
        default=None, pattern=r"^0x[0-9a-fA-F]{40}$", description="member, or device key to unbind"
    )
    roles: list[str] = Field(default_factory=list, description="for admit and set_roles")
    metadata_hash: str | None = Hash32
    encryption_key: str | None = Hash32
    quorum: Uint16 | None = Field(default=None, ge=1, description="for set_quorum")


class DeviceIn(BaseModel):
    device: str = Address
    expires_at: Uint48 = Field(default=0, description="unix time; 0 for no expiry")
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="the device key's EIP-712 DeviceBinding signature (from "
        "GET /devices/{address}/binding): proof that the factory holds the device key",
    )


class DeviceBindingOut(BaseModel):
    typed_data: dict[str, Any] = Field(description="EIP-712 typed data (eth_signTypedData_v4)")
    digest: str = Field(description="the 32-byte hash the device key signs")


class TxOut(BaseModel):
    tx_hash: str
    block_number: int
    status: int


class RelayedOut(TxOut):
    events: list[dict[str, Any]] = Field(
        description="the consortium contracts' events it emitted: contract, event, args"
    )


class RawTxIn(BaseModel):
    raw: str = Field(pattern=r"^0x[0-9a-fA-F]+$", description="signed raw transaction")
