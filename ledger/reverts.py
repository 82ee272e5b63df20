"""Turn a contract's custom-error revert data into a sentence a user can act on."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from ledger.compiler import artifacts
from ledger.errors import ContractRevert

# One sentence per custom error; positional fields are the error's arguments.
MESSAGES: dict[str, str] = {
    "NotCouncil": "{0} is not an active council member",
    "NotMember": "{0} is not a member of the consortium",
    "MemberNotActive": "member {0} is suspended",
    "MissingRole": "member {0} does not hold the {1} role",
    "AlreadyMember": "{0} is already a member",
    "MemberNotSuspended": "member {0} is not suspended",
    "InvalidRoles": "roles bitmask {0} is invalid (use council, factory, designer, auditor, buyer)",
    "ZeroAddress": "the zero address cannot be used here",
    "DuplicateMember": "{0} is listed twice",
    "UnknownProposal": "there is no proposal {0}",
    "ProposalClosed": "proposal {0} is already executed or cancelled",
    "ProposalExpired": "proposal {0} expired at {1}",
    "AlreadyApproved": "proposal {0} was already approved by {1}",
    "NotProposer": "only the proposer may cancel proposal {0} ({1} is not)",
    "InvalidQuorum": "quorum {0} is invalid for a council of {1}",
    "InvalidTtl": "proposal lifetime must be positive",
    "LastCouncilMember": "{0} is the last active council member",
    "DeviceIsMember": "{0} is a member and cannot be a device key",
    "AccountIsDevice": "{0} is a device key and cannot become a member",
    "DeviceTaken": "device key {0} belongs to {1}",
    "DeviceNotAuthorized": "device key {0} is not authorised",
    "NotDeviceOwner": "device key {0} does not belong to {1}",
    "InvalidExpiry": "expiry {0} is not in the future",
    "FutureBlock": "block {0} is in the future",
}

ROLE_NAMES = {1: "council", 2: "factory", 4: "designer", 8: "auditor", 16: "buyer"}


@cache
def _registry() -> dict[bytes, tuple[str, list[str]]]:
    found: dict[bytes, tuple[str, list[str]]] = {}
    for art in artifacts().values():
        for item in art.abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            found[function_signature_to_4byte_selector(signature)] = (item["name"], types)
    return found


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


# Refusals that are really "no such thing" or "bad argument" rather than a rule conflict.
STATUS: dict[str, int] = {"UnknownProposal": 404, "FutureBlock": 422, "InvalidRoles": 422}


def _format(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_revert(data: str | bytes | None, fallback: str = "") -> ContractRevert:
    """Build the ContractRevert for raw revert data (custom error, Error(string) or Panic)."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else (data or b"")
    )
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):
        (reason,) = decode(["string"], body)
        return ContractRevert(reason, error="Error", args=(reason,))
    if selector == bytes.fromhex("4e487b71"):
        (code,) = decode(["uint256"], body)
        return ContractRevert(f"the contract panicked (code {hex(code)})", "Panic", (code,))
    known = _registry().get(selector)
    if known is None:
        text = fallback or (f"reverted with unknown data 0x{raw.hex()}" if raw else "reverted")
        return ContractRevert(text)
    name, types = known
    values = tuple(_format(v, t) for v, t in zip(decode(types, body), types, strict=True))
    shown = [
        ROLE_NAMES.get(v, str(v)) if name == "MissingRole" and i == 1 else str(v)
        for i, v in enumerate(values)
    ]
    template = MESSAGES.get(name)
    text = template.format(*shown) if template else f"{name}({', '.join(shown)})"
    revert = ContractRevert(text, error=name, args=values)
    revert.status = STATUS.get(name, ContractRevert.status)
    return revert
