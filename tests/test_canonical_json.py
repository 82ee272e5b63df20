"""The fast canonical JSON path equals the rfc8785 reference implementation."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical_json import dumps

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def reference(value: object) -> bytes | None:
    try:
        return rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - values the reference refuses
        return None


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
