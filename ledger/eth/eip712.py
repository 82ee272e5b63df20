"""EIP-712 typed data: the one domain shape, hashing, signing and recovery.

Typed data here is the `eth_signTypedData_v4` JSON (types with EIP712Domain, primaryType,
domain, message) so a wallet signs it unchanged; eth-account hashes, signs and recovers it.
ethers v6 `signTypedData(domain, types, message)` refuses that `types` (it derives the
domain's type from `domain` and takes EIP712Domain inside `types` for an ambiguous second
primary type), so `served` adds the same record in ethers' shape. Both shapes sign the
same digest. The domain is name "cofab", version "1", the chain id and the verifying
contract's address, so a signature is good for one contract on one chain only.
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


def ethers_types(types: dict[str, Any]) -> dict[str, Any]:
    """`types` as ethers v6 takes them: without EIP712Domain."""
    return {name: fields for name, fields in types.items() if name != "EIP712Domain"}


def for_ethers(typed_data: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ethers v6 `signer.signTypedData(domain, types, message)` (plus the
    primaryType, for `TypedDataEncoder`), from the eth_signTypedData_v4 JSON."""
    return {
        "domain": typed_data["domain"],
        "types": ethers_types(typed_data["types"]),
        "primaryType": typed_data["primaryType"],
        "message": typed_data["message"],
    }


def served(typed_data: dict[str, Any]) -> dict[str, Any]:
    """What the API serves for a record to sign: the eth_signTypedData_v4 JSON (types,
    primaryType, domain, message) at the top level, for a wallet, and `ethers`, the same
    record for ethers v6. Wallets ignore the extra member (eth-account and MetaMask's
    eth-sig-util read only the four EIP-712 defines)."""
    return {**typed_data, "ethers": for_ethers(typed_data)}


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
    if not value:  # None, "" or b""
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
