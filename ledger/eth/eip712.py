"""EIP-712 typed data: the one domain shape, hashing, signing and recovery.

Typed data here is the `eth_signTypedData_v4` JSON (types with EIP712Domain, primaryType,
domain, message) so a wallet signs it unchanged; eth-account hashes, signs and recovers it.
The domain is name "cofab", version "1", the chain id and the verifying contract's address,
so a signature is good for one contract on one chain only.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from ledger.core.errors import InvalidInput
from ledger.core.settings import EIP712_DOMAIN_NAME, EIP712_DOMAIN_VERSION

DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": EIP712_DOMAIN_NAME,
        "version": EIP712_DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def digest(typed_data: dict[str, Any]) -> bytes:
    """The 32-byte EIP-712 hash a wallet signs (what `JobBoard.hashAcceptance` returns)."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data)))


def sign(account: LocalAccount, typed_data: dict[str, Any]) -> bytes:
    return bytes(account.sign_message(encode_typed_data(full_message=typed_data)).signature)


def recover(typed_data: dict[str, Any], signature: bytes | str) -> str:
    """The address that signed `typed_data`; a malformed signature is an InvalidInput."""
    try:
        return str(
            Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)
        )
    except Exception:  # noqa: BLE001 - any decoding failure is the caller's input
        raise InvalidInput(
            "the signature is not a valid 65-byte ECDSA signature", field="signature"
        ) from None


def signature_bytes(value: str | bytes | None, what: str = "signature") -> bytes:
    """A 65-byte signature from hex (empty when None or '')."""
    if value in (None, "", b""):
        return b""
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidInput(f"{what} is not hex", field=what) from None
    if len(raw) != 65:
        raise InvalidInput(f"{what} must be 65 bytes (r, s, v), got {len(raw)}", field=what)
    return raw
