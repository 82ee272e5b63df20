"""Reading contracts: one `call` that turns a revert into the project's typed error."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import collapse_if_tuple, function_abi_to_4byte_selector, to_checksum_address
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3._utils.rpc_abi import RPC
from web3._utils.validation import validate_address

from ledger.eth.tx import revert_from, reverts


def call(fn: Any, block: int | str = "latest") -> Any:
    """`fn.call()` at `block`; a revert raises the decoded custom error (ledger.core.errors)."""
    try:
        return fn.call(block_identifier=block)
    except reverts() as exc:
        raise revert_from(exc) from None


class View:
    """One view function of a contract, called many times: the ABI lookup, selector and
    types are worked out once, where `contract.functions.f(...).call()` repeats them on
    every call (most of its tens of milliseconds of CPU). Arguments are checked as web3
    checks them (addresses in checksum form); outputs are decoded as web3 decodes them
    (addresses checksummed, those inside a struct left as decoded; one output alone,
    several as a list). The request goes to the
    node as `eth_call` does, without web3's per-call formatting; a revert raises as web3
    raises it."""

    def __init__(self, contract: Any, name: str) -> None:
        abi = contract.get_function_by_name(name).abi
        self.w3, self.address = contract.w3, contract.address
        self.inputs = [collapse_if_tuple(dict(i)) for i in abi["inputs"]]
        self.outputs = [collapse_if_tuple(dict(o)) for o in abi["outputs"]]
        self.selector = function_abi_to_4byte_selector(abi)

    def __call__(self, *args: Any, block: int | str = "latest") -> Any:
        for kind, value in zip(self.inputs, args, strict=True):
            if kind == "address":
                validate_address(value)
        data = self.selector + abi_encode(self.inputs, args)
        at = hex(block) if isinstance(block, int) else block
        result = self.w3.manager.request_blocking(
            RPC.eth_call,
            [{"to": self.address, "data": "0x" + data.hex()}, at],
            error_formatters=raise_contract_logic_error_on_revert,
        )
        raw = bytes(result) if isinstance(result, bytes) else bytes.fromhex(result[2:])
        out = [
            to_checksum_address(v) if kind == "address" else v
            for kind, v in zip(self.outputs, abi_decode(self.outputs, raw), strict=True)
        ]
        return out[0] if len(out) == 1 else out
