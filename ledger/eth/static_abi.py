"""ABI encoding and decoding of static values (integers, addresses, booleans, fixed-size
byte strings, and tuples of them) without eth_abi's generic machinery.

Most of a node's contract reads take and return only such values (a member lookup: one
address in, a struct of five words out), and eth_abi's encoder and decoder objects, with
their per-value validation and stream handling, cost about a third of such a read's CPU
(bench/chain_calls.py). `StaticCodec` gives exactly eth_abi's bytes and values, and hands
anything it is not sure of (a value of an unexpected type or out of range, a word with
non-zero padding, data cut short) to eth_abi itself, which then encodes it or raises its
own error: the result is always eth_abi's (tests/test_static_abi.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import ABITypeError
from eth_abi.grammar import ABIType, BasicType, TupleType, parse

from ledger.core.abi import address_from_bytes

_Encode = Callable[[Any], bytes | None]
_Decode = Callable[[bytes], Any]


class _Unsure(Exception):
    """A word the fast decoder leaves to eth_abi."""


def _uint_encoder(bits: int) -> _Encode:
    def encode(value: Any) -> bytes | None:
        if type(value) is not int or value < 0 or value >> bits:
            return None
        return value.to_bytes(32, "big")

    return encode


def _int_encoder(bits: int) -> _Encode:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def encode(value: Any) -> bytes | None:
        if type(value) is not int or not low <= value < high:
            return None
        return value.to_bytes(32, "big", signed=True)

    return encode


def _address_encoder(value: Any) -> bytes | None:
    if type(value) is not str or len(value) != 42 or value[:2] != "0x":
        return None  # bytes and other spellings: eth_abi decides
    digits = value[2:]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    if len(raw) != 20 or not digits.isalnum():
        return None
    if digits != digits.lower() and digits != digits.upper() and address_from_bytes(raw) != value:
        return None  # mixed case that is no EIP-55 checksum: eth_abi decides
    return bytes(12) + raw


def _bool_encoder(value: Any) -> bytes | None:
    return (b"\x00" * 31 + (b"\x01" if value else b"\x00")) if type(value) is bool else None


def _bytes_encoder(size: int) -> _Encode:
    def encode(value: Any) -> bytes | None:
        if type(value) is not bytes or len(value) > size:
            return None
        return value + bytes(32 - len(value))

    return encode


def _uint_decoder(bits: int) -> _Decode:
    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big")
        if value >> bits:
            raise _Unsure
        return value

    return decode


def _int_decoder(bits: int) -> _Decode:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big", signed=True)
        if not low <= value < high:
            raise _Unsure
        return value

    return decode


def _address_decoder(word: bytes) -> str:
    if word[:12] != bytes(12):
        raise _Unsure
    return "0x" + word[12:].hex()


def _bool_decoder(word: bytes) -> bool:
    value = int.from_bytes(word, "big")
    if value > 1:
        raise _Unsure
    return value == 1


def _bytes_decoder(size: int) -> _Decode:
    def decode(word: bytes) -> bytes:
        if word[size:] != bytes(32 - size):
            raise _Unsure
        return word[:size]

    return decode


def _basic(kind: BasicType) -> tuple[_Encode, _Decode] | None:
    if kind.arrlist:
        return None
    bits = kind.sub if isinstance(kind.sub, int) else None
    if kind.base == "uint" and bits:
        return _uint_encoder(bits), _uint_decoder(bits)
    if kind.base == "int" and bits:
        return _int_encoder(bits), _int_decoder(bits)
    if kind.base == "address":
        return _address_encoder, _address_decoder
    if kind.base == "bool":
        return _bool_encoder, _bool_decoder
    if kind.base == "bytes" and bits:
        return _bytes_encoder(bits), _bytes_decoder(bits)
    return None


class _Node:
    """One ABI type as the codec walks it: a word, or a tuple of nodes."""

    def __init__(self, kind: ABIType) -> None:
        kind.validate()  # type: ignore[no-untyped-call]  # uint7, bytes33: left to eth_abi
        self.parts: list[_Node] | None = None
        self.coder: tuple[_Encode, _Decode] | None = None
        self.words: int = 1
        if isinstance(kind, TupleType) and not kind.arrlist:
            self.parts = [_Node(c) for c in kind.components]
            self.words = sum(p.words for p in self.parts)
        elif isinstance(kind, BasicType) and (coder := _basic(kind)) is not None:
            self.coder, self.words = coder, 1
        else:
            raise ValueError(f"not a static type this codec knows: {kind}")

    def encode(self, value: Any, out: list[bytes]) -> bool:
        if self.coder is not None:
            word = self.coder[0](value)
            if word is None:
                return False
            out.append(word)
            return True
        assert self.parts is not None
        if not isinstance(value, (tuple, list)) or len(value) != len(self.parts):
            return False
        return all(p.encode(v, out) for p, v in zip(self.parts, value, strict=True))

    def decode(self, data: bytes, at: int) -> Any:
        if self.coder is not None:
            return self.coder[1](data[at : at + 32])
        assert self.parts is not None
        values = []
        for part in self.parts:
            values.append(part.decode(data, at))
            at += 32 * part.words
        return tuple(values)


class StaticCodec:
    """Encode and decode values of the ABI types `types`, as eth_abi's `encode(types, …)`
    and `decode(types, …)` do."""

    def __init__(self, types: Sequence[str]) -> None:
        self.types = list(types)
        try:
            self._nodes: list[_Node] | None = [_Node(parse(t)) for t in self.types]
        except (ValueError, ABITypeError):
            self._nodes = None  # a dynamic, unknown or invalid type: eth_abi does all of it
        self._size = 32 * sum(n.words for n in self._nodes or [])

    def encode(self, values: Sequence[Any]) -> bytes:
        nodes = self._nodes
        if nodes is not None and isinstance(values, (list, tuple)) and len(values) == len(nodes):
            out: list[bytes] = []
            if all(n.encode(v, out) for n, v in zip(nodes, values, strict=True)):
                return b"".join(out)
        return abi_encode(self.types, values)

    def decode(self, data: bytes) -> tuple[Any, ...]:
        nodes = self._nodes
        if nodes is not None and type(data) is bytes and len(data) == self._size:
            try:
                values, at = [], 0
                for node in nodes:
                    values.append(node.decode(data, at))
                    at += 32 * node.words
                return tuple(values)
            except _Unsure:
                pass
        return tuple(abi_decode(self.types, data))
