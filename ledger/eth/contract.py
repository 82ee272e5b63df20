"""Reading contracts: one `call` that turns a revert into the project's typed error."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from eth_abi.exceptions import EncodingError
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from eth_typing import ABIFunction
from eth_utils import collapse_if_tuple, function_abi_to_4byte_selector, to_checksum_address
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3._utils.rpc_abi import RPC
from web3._utils.validation import validate_address
from web3.contract import Contract

from ledger.core.abi import checksummed
from ledger.eth.compiler import artifact
from ledger.eth.reverts import revert_from, reverts
from ledger.eth.static_abi import StaticCodec

_BOUND: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Contract]] = (
    weakref.WeakKeyDictionary()
)


_BOUND_PER_CONNECTION = 64  # a bundle names its own contracts: the oldest go first
_BINDING = threading.Lock()


def contract_at(w3: Any, name: str, address: str) -> Contract:
    """The compiled contract `name` at `address`, one object per connection: web3 turns the
    ABI into a new class each time it is asked (2-6 ms of CPU for one of ours), and an
    audit or a verification binds up to six contracts. The object holds no state of a
    call, so every caller and thread may share it."""
    key = (name, address.lower())
    found = _BOUND.get(w3, {}).get(key)
    if found is None:
        made = w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)
        with _BINDING:  # threads may bind at once: one of them trims the oldest
            bound = _BOUND.setdefault(w3, {})
            while len(bound) >= _BOUND_PER_CONNECTION:
                del bound[next(iter(bound))]
            found = bound.setdefault(key, made)
    return found


def call(fn: Any, block: int | str = "latest") -> Any:
    """`fn.call()` at `block`; a revert raises the decoded custom error (ledger.core.errors).

    It goes through the function's `View`, worked out once per connection, contract and
    function: web3's own `fn.call()` costs several times the CPU (bench/chain_calls.py).
    The answer is the same (tests/test_contract_views.py)."""
    try:
        if fn.kwargs:  # arguments by name: web3 matches them to the ABI
            return fn.call(block_identifier=block)
        return _view(fn)(*fn.args, block=block)
    except reverts() as exc:
        raise revert_from(exc) from None


def calldata(fn: Any) -> str:
    """`fn`'s call data in hex, as web3 encodes it, through the function's `View`.
    Arguments web3 would convert first (hex strings for bytes, names given by keyword)
    are encoded by web3 itself."""
    if not fn.kwargs:
        try:
            return "0x" + _view(fn).encode(*fn.args).hex()
        except (EncodingError, TypeError, ValueError):
            pass
    return str(fn._encode_transaction_data())


_VIEWS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], View]] = weakref.WeakKeyDictionary()


def _view(fn: Any) -> View:
    views = _VIEWS.setdefault(fn.w3, {})
    key = (fn.address, fn.abi_element_identifier)
    found = views.get(key)
    if found is None:
        found = views[key] = View(fn.w3, fn.address, fn.abi)
    return found


class View:
    """One view function of a contract, called many times: the ABI lookup, selector and
    types are worked out once, where `contract.functions.f(...).call()` repeats them on
    every call (most of its 3.4 ms of CPU for a member lookup). Arguments are checked as web3
    checks them (addresses in checksum form); outputs are decoded as web3 decodes them
    (addresses checksummed wherever they are, arrays as lists, structs as tuples; one
    output alone, several as a list). The request goes to the
    node as `eth_call` does, without web3's per-call formatting; a revert raises as web3
    raises it."""

    def __init__(self, w3: Any, address: str, abi: ABIFunction) -> None:
        """The view of the function `abi` of the contract at `address`."""
        self.w3, self.address = w3, address
        self.inputs = [collapse_if_tuple(dict(i)) for i in abi["inputs"]]
        self.outputs = [collapse_if_tuple(dict(o)) for o in abi["outputs"]]
        self.selector = function_abi_to_4byte_selector(abi)
        self.arguments, self.results = StaticCodec(self.inputs), StaticCodec(self.outputs)
        self.normalizers = [_as_web3_returns(parse(kind)) for kind in self.outputs]

    @classmethod
    def named(cls, contract: Any, name: str) -> View:
        """The view of the function `name` of a web3 contract."""
        return cls(contract.w3, contract.address, contract.get_function_by_name(name).abi)

    def encode(self, *args: Any) -> bytes:
        """The call data for `args`: the selector, then the arguments ABI-encoded."""
        for kind, value in zip(self.inputs, args, strict=True):
            if kind == "address":
                _validated(value)
        return self.selector + self.arguments.encode(args)

    def __call__(self, *args: Any, block: int | str = "latest") -> Any:
        data = self.encode(*args)
        at = hex(block) if isinstance(block, int) else block
        result = self.w3.manager.request_blocking(
            RPC.eth_call,
            [{"to": self.address, "data": "0x" + data.hex()}, at],
            error_formatters=raise_contract_logic_error_on_revert,
        )
        raw = bytes(result) if isinstance(result, bytes) else bytes.fromhex(result[2:])
        out = [
            v if normalize is None else normalize(v)
            for normalize, v in zip(self.normalizers, self.results.decode(raw), strict=True)
        ]
        return out[0] if len(out) == 1 else out


def _as_web3_returns(kind: ABIType) -> Callable[[Any], Any] | None:
    """What web3 does to a decoded value of type `kind` before returning it (addresses in
    checksum form, arrays as lists); None when it leaves the value as decoded."""
    if kind.is_array:
        item = _as_web3_returns(kind.item_type)
        if item is None:
            return list
        return lambda values: [item(v) for v in values]
    if isinstance(kind, TupleType):
        parts = [_as_web3_returns(c) for c in kind.components]
        if all(p is None for p in parts):
            return None
        return lambda values: tuple(
            v if p is None else p(v) for p, v in zip(parts, values, strict=True)
        )
    if isinstance(kind, BasicType) and kind.base == "address":
        return checksummed
    return None


# A node passes the same few dozen addresses over and over, and checking a checksum is a
# keccak in Python each time. Refusals are not cached: they raise again.
_validated_before = lru_cache(maxsize=4096)(validate_address)


def _validated(value: Any) -> None:
    try:
        _validated_before(value)
    except TypeError:  # unhashable (a bytearray): checked without the cache
        validate_address(value)
