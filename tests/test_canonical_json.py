"""The fast canonical JSON path equals the rfc8785 reference implementation, and integers
beyond 2**53 are serialised as RFC 8785 (and ECMAScript) print the double they equal."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical_json import InexactNumber, dumps

big_exact = st.builds(  # integers beyond 2**53 that are doubles: m * 2**e
    lambda m, e, sign: sign * m * 2**e,
    st.integers(min_value=1, max_value=2**53 - 1),
    st.integers(min_value=1, max_value=900),
    st.sampled_from([1, -1]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | big_exact
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


class _NoDouble(Exception):
    pass


def _doubles(value: object) -> object:
    """What an ECMAScript JSON parser reads: every integer is a double (or none is)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        try:
            double = float(value)
        except OverflowError:
            raise _NoDouble from None
        if int(double) != value:
            raise _NoDouble
        return double
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_doubles(v) for v in value]
    return value


def reference(value: object) -> bytes | None:
    try:
        return rfc8785.dumps(_doubles(value))
    except Exception:  # noqa: BLE001 - values the reference refuses
        return None


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(json_values)
def test_same_bytes_as_rfc8785(value: object) -> None:
    expected = reference(value)
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - whatever the reference raised
            dumps(value)
    else:
        assert dumps(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.0, 2.5, 1e-7, 1e21, 1e16 + 0.5, -0.0, 123456789012345.6]},
        {"é": "\u2028", "a\u0000": "\x1f", "\U0001f600": 1, "\ue000": 2},
        {"quantity": 21.5, "eventTime": "2026-11-22T00:00:00Z", "n": 2**53 - 1, "f": 2.0**60},
    ],
)
def test_edge_cases(value: object) -> None:
    assert dumps(value) == rfc8785.dumps(value)


def test_output_parses_back() -> None:
    doc = {"z": [1, 2.25, {"y": None}], "a": True}
    assert json.loads(dumps(doc)) == doc


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (9007199254740992, b"9007199254740992"),
        (-9007199254740992, b"-9007199254740992"),
        (10_000_000_000_000_000, b"10000000000000000"),
        (2**60, b"1152921504606847000"),
        (10**21, b"1e+21"),
        (2**1023, rfc8785.dumps(2.0**1023)),
    ],
)
def test_integers_that_are_doubles_serialise_as_rfc8785_does(value: int, text: bytes) -> None:
    assert dumps(value) == text == dumps(float(value)) == rfc8785.dumps(float(value))
    assert dumps({"n": [value]}) == b'{"n":[' + text + b"]}"


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53 + 1), 10**16 + 1, 2**64 - 1, 10**400])
def test_integers_no_double_equals_are_refused_naming_where(value: int) -> None:
    with pytest.raises(InexactNumber, match=r"\$\.a\[1\]\.b: the integer"):
        dumps({"a": [0, {"b": value}]})


def test_node_prints_the_same_numbers() -> None:
    """ECMAScript's JSON.stringify (what RFC 8785 specifies for numbers) agrees, digit for
    digit, on integers beyond 2**53 that are doubles."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    values = [2**53, 10**16, 2**60, -(2**70), 10**21, 123 * 2**200, 2**1023]
    script = "console.log(JSON.stringify(JSON.parse(require('fs').readFileSync(0, 'utf8'))))"
    done = subprocess.run(
        [node, "-e", script],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.strip().encode() == dumps(values)
