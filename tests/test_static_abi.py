"""The static ABI codec gives exactly eth_abi's bytes, values and refusals (differential,
over random types, values and words, valid and not)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.eth.static_abi import StaticCodec

BASIC = [
    *(f"uint{n}" for n in (8, 32, 48, 64, 128, 256)),
    *(f"int{n}" for n in (8, 64, 256)),
    "address",
    "bool",
    *(f"bytes{n}" for n in (1, 4, 20, 32)),
]


def kinds(depth: int = 2) -> st.SearchStrategy[str]:
    basic = st.sampled_from(BASIC)
    if depth == 0:
        return basic
    tuples = st.lists(kinds(depth - 1), min_size=1, max_size=4).map(
        lambda parts: "(" + ",".join(parts) + ")"
    )
    return st.one_of(basic, basic, tuples)


def value_of(kind: str, draw: Any) -> Any:
    """A valid value of `kind`, or now and then one eth_abi refuses."""
    if kind.startswith("("):
        parts, level, start = [], 0, 1
        for i, c in enumerate(kind[1:-1], 1):
            level += c == "("
            level -= c == ")"
            if c == "," and level == 0:
                parts.append(kind[start:i])
                start = i + 1
        parts.append(kind[start:-1])
        return tuple(value_of(p, draw) for p in parts)
    wrong = draw(st.integers(0, 9)) == 0
    if kind.startswith("uint"):
        bits = int(kind[4:])
        return draw(st.integers(-1, 2**bits) if wrong else st.integers(0, 2**bits - 1))
    if kind.startswith("int"):
        b = int(kind[3:]) - 1
        return draw(st.integers(-(2**b) - 1, 2**b) if wrong else st.integers(-(2**b), 2**b - 1))
    if kind == "address":
        raw = draw(st.binary(min_size=20, max_size=20))
        forms = [
            "0x" + raw.hex(),
            to_checksum_address(raw),
            ("0x" + raw.hex()).upper().replace("0X", "0x"),
        ]
        if wrong:
            forms += ["0x" + raw.hex()[:-1] + "G", raw, "0x" + raw.hex()[:39], True]
            mixed = to_checksum_address(raw)
            forms.append(mixed[:2] + mixed[2:].swapcase())
        return draw(st.sampled_from(forms))
    if kind == "bool":
        return draw(st.sampled_from([True, False, 1, "yes"] if wrong else [True, False]))
    size = int(kind[5:])
    return draw(st.binary(min_size=0, max_size=size + 1 if wrong else size))


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the refusal's type is what is compared
        return ("refused", type(exc))


@settings(max_examples=400, deadline=None)
@given(st.lists(kinds(), min_size=1, max_size=4), st.data())
def test_encoding_is_eth_abis(types: list[str], data: st.DataObject) -> None:
    values = [value_of(t, data.draw) for t in types]
    assert outcome(StaticCodec(types).encode, values) == outcome(abi_encode, types, values)


@settings(max_examples=400, deadline=None)
@given(st.lists(kinds(), min_size=1, max_size=4), st.data())
def test_decoding_is_eth_abis(types: list[str], data: st.DataObject) -> None:
    codec = StaticCodec(types)
    words = bytearray(codec._size)
    values = [value_of(t, data.draw) for t in types]
    try:
        words[:] = abi_encode(types, values)
    except Exception:  # noqa: BLE001 - an invalid value: random words instead
        words[:] = data.draw(st.binary(min_size=len(words), max_size=len(words)))
    for _ in range(data.draw(st.integers(0, 3))):  # damage some bytes: padding, range
        if words:
            words[data.draw(st.integers(0, len(words) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.sampled_from([0, 0, 0, -1, 32]))
    raw = bytes(words[: len(words) + cut] if cut < 0 else words + bytes(cut))
    assert outcome(codec.decode, raw) == outcome(lambda r: tuple(abi_decode(types, r)), raw)


@pytest.mark.parametrize("kind", ["string", "bytes", "uint256[]", "(uint8,string)", "fixed"])
def test_dynamic_types_are_left_to_eth_abi(kind: str) -> None:
    codec = StaticCodec(["uint8", kind])
    assert codec._nodes is None
    if kind == "fixed":
        return
    value: Any = {"string": "中文", "bytes": b"\x01", "uint256[]": [1, 2]}.get(kind, (1, "x"))
    encoded = codec.encode([7, value])
    assert encoded == abi_encode(["uint8", kind], [7, value])
    assert codec.decode(encoded) == tuple(abi_decode(["uint8", kind], encoded))
