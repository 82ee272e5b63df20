"""Turn a contract's custom-error revert data into a sentence a user can act on.

The sentence is the error's NatSpec `@notice` in the Solidity source (the compiler's
`userdoc`): `SplitClosed(uint256 jobId, uint256 splitId)` documented as
"Split `splitId` of job `jobId` is already paid, refunded or ruled on." reads
"split 2 of job 7 is already paid, refunded or ruled on". Enum arguments are shown by
their label (the Python enum declared with `ledger.core.abi.solidity_enum`), role masks
by role name. `reverts()` names what a revert raises, whichever backend runs the chain, and
`revert_from` turns it into that ContractRevert: the one place calls and transactions
(`ledger.eth.contract`, `ledger.eth.tx`) read reverts from.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3.exceptions import ContractLogicError

from ledger.core.abi import ALL_ROLES, enum_label, role_names
from ledger.core.errors import ContractRevert
from ledger.eth.compiler import artifacts

# Errors of OpenZeppelin code the contracts use: its NatSpec is written for developers.
FOREIGN_MESSAGES: dict[str, str] = {
    "SafeERC20FailedOperation": "token {0} refused the transfer (it returned false or reverted)",
    "ERC20InsufficientBalance": "{0} holds {1} of the token, {2} is needed",
    "ERC20InsufficientAllowance": "{0} may spend {1} of the token, {2} is needed: approve it first",
    "ERC20InvalidSender": "{0} cannot send tokens",
    "ERC20InvalidReceiver": "{0} cannot receive tokens",
    "ERC20InvalidApprover": "{0} cannot approve a spender",
    "ERC20InvalidSpender": "{0} cannot be approved as a spender",
    "ReentrancyGuardReentrantCall": "the contract was re-entered during a call, which it refuses",
    "SafeCastOverflowedUintDowncast": "the value {1} does not fit in {0} bits",
    "CheckpointUnorderedInsertion": "a checkpoint was written out of block order",
    "InvalidShortString": "the EIP-712 name or version is not a short string",
    "StringTooLong": "the string {0} is too long",
}

_PARAM = re.compile(r"`(\w+)`")


def template(notice: str, params: list[str]) -> str:
    """The message template of an error's `@notice`: each `param` named in backticks
    becomes its positional field, the sentence starts lower-case and loses its full stop
    (it is shown after "error: " or inside a longer text)."""
    text = " ".join(notice.split()).replace("{", "{{").replace("}", "}}")
    text = _PARAM.sub(
        lambda m: f"{{{params.index(m.group(1))}}}" if m.group(1) in params else m.group(0), text
    )
    first = text.split(" ", 1)[0]
    if first[:1].isupper() and first[1:] == first[1:].lower():  # not "JobBoard", "ERC-20"
        text = text[0].lower() + text[1:]
    return text.removesuffix(".")


@cache
def messages() -> dict[str, str]:
    """One template per custom error of every contract, from its NatSpec `@notice`; the
    errors of OpenZeppelin code come from FOREIGN_MESSAGES."""
    found = dict(FOREIGN_MESSAGES)
    for art in artifacts().values():
        params = {
            _signature(item): [i["name"] for i in item["inputs"]]
            for item in art.abi
            if item.get("type") == "error"
        }
        for signature, doc in art.userdoc.get("errors", {}).items():
            notice = doc[0].get("notice") if doc else None
            if notice and signature in params:
                found[signature.split("(")[0]] = template(notice, params[signature])
    return found


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"


@cache
def _registry() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """selector -> (error name, ABI types, Solidity types) of every custom error."""
    found: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for art in artifacts().values():
        for item in art.abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            internal = [str(i.get("internalType", i["type"])) for i in item["inputs"]]
            selector = function_signature_to_4byte_selector(_signature(item))
            found[selector] = (item["name"], types, internal)
    return found


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


# Refusals that are really "no such thing" or "bad argument" rather than a rule conflict.
STATUS: dict[str, int] = {"UnknownProposal": 404, "FutureBlock": 422, "InvalidRoles": 422}
STATUS.update({"UnknownDesign": 404, "UnknownBatch": 404, "InvalidRoyalty": 422})
STATUS.update({"UnknownCommitment": 404})
STATUS.update({"UnknownJob": 404, "UnknownSplit": 404, "NoSuchPayee": 404})
STATUS.update({"SharesDoNotSum": 422, "InvalidDependencies": 422, "ZeroSplitQuantity": 422})
STATUS.update({"InvalidDeadline": 422, "ZeroQuantityOrPrice": 422, "InvalidSplitCount": 422})
STATUS.update({"InvalidReviewPeriod": 422})
STATUS.update({"UnknownDispute": 404, "InvalidPayoutShare": 422, "EmptyReason": 422})
STATUS.update({"TextTooLong": 422})
STATUS.update({"InvalidDeviceSignature": 403})


# Arguments that are a roles mask, shown by role name: (error, argument index).
ROLE_ARGUMENTS = {("MissingRole", 1)}


def _format(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def _shown(error: str, index: int, value: Any, solidity_type: str) -> str:
    """An argument as the message shows it: an enum by label, a role mask by name."""
    if solidity_type.startswith("enum "):
        return enum_label(solidity_type, value) or str(value)
    if (error, index) in ROLE_ARGUMENTS and value and not value & ~ALL_ROLES:
        return ",".join(role_names(value))
    return str(value)


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
    name, types, internal = known
    values = tuple(_format(v, t) for v, t in zip(decode(types, body), types, strict=True))
    shown = [_shown(name, i, v, s) for i, (v, s) in enumerate(zip(values, internal, strict=True))]
    message = messages().get(name)
    text = message.format(*shown) if message else f"{name}({', '.join(shown)})"
    revert = ContractRevert(text, error=name, args=values)
    revert.status = STATUS.get(name, ContractRevert.status)  # type: ignore[misc]  # per error
    return revert


def reverts() -> tuple[type[Exception], ...]:
    """What a revert raises: web3's ContractLogicError, and eth-tester's TransactionFailed
    once the embedded backend has loaded eth-tester (importing it up front would cost every
    CLI command about a second; no other backend raises it)."""
    tester = sys.modules.get("eth_tester.exceptions")
    return (ContractLogicError, tester.TransactionFailed) if tester else (ContractLogicError,)


def revert_from(exc: Exception) -> ContractRevert:
    """The ContractRevert for a web3 ContractLogicError or an eth-tester TransactionFailed."""
    data = getattr(exc, "data", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(data, (str, bytes)) and len(data) >= 10:
        return decode_revert(data, fallback=message)
    reason = message.removeprefix("execution reverted: ")
    if reason[:2] in ("b'", 'b"'):  # eth-tester puts the raw revert bytes' repr here
        try:
            return decode_revert(ast.literal_eval(reason))
        except (ValueError, SyntaxError):
            pass
    return ContractRevert(reason or "reverted")
