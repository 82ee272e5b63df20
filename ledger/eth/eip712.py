"""EIP-712 typed data: the one domain shape, hashing, signing and recovery.

Typed data here is the `eth_signTypedData_v4` JSON (types with EIP712Domain, primaryType,
domain, message) so a wallet signs it unchanged; eth-account hashes, signs and recovers it.
ethers v6 `signTypedData(domain, types, message)` refuses that `types` (it derives the
domain's type from `domain` and takes EIP712Domain inside `types` for an ambiguous second
primary type), so `served` adds the same record in ethers' shape. Both shapes sign the
same digest. The domain is name "cofab", version "1", the chain id and the verifying
contract's address, so a signature is good for one contract on one chain only.

Integers in served messages are decimal strings: JSON readers (browsers, wallets) hold
numbers as doubles and lose precision above 2^53, while every EIP-712 implementation
(ethers, eth-account, MetaMask) takes a decimal string for a uint256. Either form is
accepted back (`uint`).
"""

from __future__ import annotations

import re
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


_DECIMAL = re.compile(r"0|[1-9][0-9]*")
UINT256_MAX = 2**256 - 1


def uint(value: Any, name: str, bits: int = 256) -> int:
    """A uintN as a client sends it back: a JSON integer or its decimal string ("42"). Floats,
    booleans, hex, signs, spaces and leading zeros are refused rather than read as another
    number than the one signed."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        raise InvalidInput(
            f"{name} must be an integer or its decimal string, not {value!r}",
            errors=[{"field": name, "message": "must be an integer or a decimal string"}],
            field=name,
        )
    if not 0 <= number < 2**bits:
        raise InvalidInput(f"{name} is out of range for uint{bits}: {number}", field=name)
    return number


def decimal_strings(types: dict[str, Any], type_name: str, value: Any) -> Any:
    """`value` of EIP-712 type `type_name` with every integer as its decimal string."""
    if type_name.endswith("]"):
        inner = type_name[: type_name.rindex("[")]
        return [decimal_strings(types, inner, v) for v in value]
    if type_name in types:
        fields = {f["name"]: f["type"] for f in types[type_name]}
        return {k: decimal_strings(types, fields[k], v) if k in fields else v
                for k, v in value.items()}  # fmt: skip
    if type_name.startswith(("uint", "int")) and isinstance(value, int):
        return str(value)
    return value


def with_decimal_strings(typed_data: dict[str, Any]) -> dict[str, Any]:
    """The typed data with its message's integers as decimal strings (same digest)."""
    message = decimal_strings(typed_data["types"], typed_data["primaryType"], typed_data["message"])
    return {**typed_data, "message": message}


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
    eth-sig-util read only the four EIP-712 defines). Integers in the message are decimal
    strings."""
    typed_data = with_decimal_strings(typed_data)
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
