"""The CBV 2.0 event hash ID against the hashes GS1 publishes with its examples, and its
fast path against the field-by-field reference on GS1's example events and generated ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.epcis.eventhash import (
    _DEFAULT,
    _fast,
    digital_link,
    event_id,
    prehash,
    reference_prehash,
)
from ledger.steps.builder import object_event

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "epcis" / "event-hashes.json").read_text()
)["vectors"]


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{v['example']}-{i}" for i, v in enumerate(VECTORS)]
)
def test_published_example_hashes(vector: dict[str, Any]) -> None:
    assert event_id(vector["event"], vector["context"]) == vector["hash"]


def test_the_hash_does_not_depend_on_how_the_event_is_written() -> None:
    v = next(v for v in VECTORS if v["example"] == "ReferenceEventHashAlgorithm")
    event = dict(reversed(list(v["event"].items())))  # members in another order
    event["epcList"] = list(reversed(event["epcList"]))  # list members too
    event["eventTime"] = "2020-03-04T10:00:30Z"  # the same instant, in UTC, without ms
    event["bizStep"] = "urn:epcglobal:cbv:bizstep:departing"  # the EPCIS 1.x form
    event["eventID"] = "urn:uuid:0"  # not part of the hash, nor is recordTime
    assert event_id(event, v["context"]) == v["hash"]
    for change in ({"action": "ADD"}, {"eventTime": "2020-03-04T10:00:30.001Z"},
                   {"example:myField2": "1"}):  # fmt: skip
        assert event_id({**event, **change}, v["context"]) != v["hash"]


def test_epc_uris_become_canonical_digital_link_uris() -> None:
    assert digital_link("urn:epc:id:sgtin:0614141.107346.2017") == (
        "https://id.gs1.org/01/10614141073464/21/2017"
    )
    assert digital_link("urn:epc:id:sscc:4012345.0000000333") == (
        "https://id.gs1.org/00/040123450000003338"
    )
    assert digital_link("https://example.com/gtin/10614141073464/lot/9/ser/2017?x=1") == (
        "https://id.gs1.org/01/10614141073464/21/2017"
    )
    assert digital_link("urn:cofab:lot:7") is None


# --- the fast path equals the reference ---------------------------------------------------
def _gs1_events() -> list[tuple[dict[str, Any], Any]]:
    """Every event of GS1's example documents with its document's @context, and the
    published vectors."""
    out = [(v["event"], v["context"]) for v in VECTORS]
    for path in sorted((Path(__file__).parent / "data" / "epcis" / "gs1").rglob("*.jsonld")):
        document = json.loads(path.read_text())
        body = document["epcisBody"]
        found = body.get("eventList") or body["queryResults"]["resultsBody"]["eventList"]
        out += [(event, document.get("@context")) for event in found]
    return out


def test_the_fast_path_equals_the_reference_on_gs1s_events() -> None:
    events = _gs1_events()
    assert len(events) > 60
    for event, context in events:
        assert prehash(event, context) == reference_prehash(event, context), event


_times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda t: t.isoformat()),
    st.from_regex(
        r"\A[0-2][0-9]{3}-[01][0-9]-[0-3][0-9][Tt][0-2][0-9]:[0-6][0-9]:[0-6][0-9]"
        r"(\.[0-9]{1,7})?([Zz]|[+-][01][0-9]:[0-5][0-9])\Z"
    ),
    st.sampled_from(
        [
            "2026-02-30T10:00:00Z",
            "2026-12-31T23:59:60Z",
            " 2026-01-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.9999Z",
            "",
        ]
    ),
)
_ids = st.sampled_from([
    "urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.a(b)!",
    "urn:epc:id:sscc:4012345.0000000333", "urn:epc:id:sgln:0614141.00777.0",
    "urn:epc:id:sgln:0614141.00888.7", "urn:epc:class:lgtin:4012345.012345.998877",
    "urn:epc:idpat:sgtin:4012345.012345.*", "https://id.gs1.org/01/09520123456788/21/12345",
    "urn:cofab:lot:7", "ex:thing", "gs1:x", " padded ", "42", "1.50", "",
])  # fmt: skip
_words = st.one_of(
    st.sampled_from(
        [
            "assembling",
            "shipping",
            "urn:epcglobal:cbv:bizstep:receiving",
            "https://ref.gs1.org/cbv/BizStep-packing",
            "https://ex.com/steps/anodize",
            "in_progress",
            "urn:epcglobal:cbv:disp:active",
            "cbv:Disp-damaged",
            "OBSERVE",
            "ADD",
            "+00:00",
            "-06:00",
        ]
    ),
    st.text(max_size=6),
)
_numbers = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_scalars = st.one_of(_ids, _words, _numbers, st.none())
_reports = st.dictionaries(
    st.sampled_from(
        [
            "type",
            "value",
            "uom",
            "stringValue",
            "minValue",
            "component",
            "exception",
            "time",
            "deviceID",
            "comment",
            "ex:extra",
        ]
    ),
    st.one_of(_scalars, _times),
    max_size=5,
)
_elements = st.one_of(
    st.fixed_dictionaries({"sensorReport": st.lists(_reports, max_size=3)}),
    st.fixed_dictionaries(
        {"sensorReport": st.lists(_reports, max_size=2)},
        optional={
            "sensorMetadata": st.dictionaries(
                st.sampled_from(["time", "deviceID"]), _times | _ids, max_size=2
            ),
            "ex:note": _words,
        },
    ),
)
_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["ObjectEvent", "AggregationEvent", "TransformationEvent"])},
    optional={
        "eventTime": _times,
        "eventTimeZoneOffset": _words,
        "action": _words,
        "bizStep": _words,
        "disposition": _words,
        "parentID": _ids,
        "epcList": st.lists(_ids | _numbers, max_size=4),
        "childEPCs": st.lists(_ids, max_size=3) | st.none(),
        "quantityList": st.lists(
            st.fixed_dictionaries(
                {"epcClass": _ids}, optional={"quantity": _numbers, "uom": _words}
            ),
            max_size=2,
        ),
        "readPoint": st.one_of(
            st.fixed_dictionaries({"id": _ids}),
            st.fixed_dictionaries({"id": _ids, "ex:room": _words}),
            st.fixed_dictionaries({"id": _numbers}),
            _ids,
        ),
        "bizLocation": st.fixed_dictionaries({"id": _ids}),
        "sensorElementList": st.lists(_elements, max_size=2) | st.none(),
        "bizTransactionList": st.lists(
            st.fixed_dictionaries({"type": _words, "bizTransaction": _ids})
        ),
        "ex:lotNumber": _scalars,
        "ex:nested": st.dictionaries(st.sampled_from(["ex:a", "ex:b", "comment"]), _scalars),
        "eventID": _ids,
        "recordTime": _times,
        "@context": st.sampled_from(
            [[{"ex": "https://ex.com/"}], "https://ex.com/ctx", ["https://ex.com/ctx"]]
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(event=_events, context=st.sampled_from([None, ["https://ex.com/ctx"],
                                               [{"ex": "https://example.com/"}]]))  # fmt: skip
def test_the_fast_path_equals_the_reference_on_generated_events(
    event: dict[str, Any], context: Any
) -> None:
    assert prehash(event, context) == reference_prehash(event, context)


def test_everyday_events_take_the_fast_path() -> None:
    event = object_event(
        "packing",
        1_795_000_000,
        epcs=["urn:epc:id:sgtin:0614141.107346.7"],
        read_point="urn:epc:id:sgln:0614141.00777.0",
        sensors=[{"type": "Temperature", "value": 21, "uom": "CEL"}],
        bizLocation={"id": "urn:epc:id:sgln:0614141.00888.0"},
    )
    _fast(event, _DEFAULT)  # no fallback to the reference
    assert prehash(event) == reference_prehash(event)
