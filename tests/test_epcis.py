"""EPCIS 2.0 step payloads against GS1's own schema and published example events.

GS1's examples (tests/data/epcis/gs1, see the README there) are accepted; the events that
break the standard are refused with a 422 naming the offending member; and the validator
on the ingest path (jsonschema-rs) agrees with the reference `jsonschema` package on the
examples and on mutations of them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, FormatChecker
from test_api import sign_in

from api.app import create_app
from kit import in_production, parties
from ledger.core.errors import InvalidInput
from ledger.node import Node
from ledger.steps import epcis
from ledger.steps.record import Step

DATA = Path(__file__).parent / "data" / "epcis"
SHARED_SCHEMA = Path("/work/shared/standards/epcis/EPCIS-JSON-Schema.json")
SCHEMA_SHA256 = "ed3228d7867198b4a5be9748fe77f473457c6ed98224fab28a950b4ce634a041"

REFERENCE = Draft7Validator(epcis.SCHEMA, format_checker=FormatChecker(("uri", "date-time")))
"""The whole GS1 schema, in the reference Python implementation (documents and events)."""
REFERENCE_EVENT = Draft7Validator(
    {"$ref": "#/definitions/EPCIS-Document-Event", "definitions": epcis.SCHEMA["definitions"]},
    format_checker=FormatChecker(("uri", "date-time")),
)


def gs1_documents() -> list[Path]:
    return sorted((DATA / "gs1").rglob("*.jsonld"))


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    if "eventList" in body:
        return list(body["eventList"])
    return list(body["queryResults"]["resultsBody"]["eventList"])


def gs1_events() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in gs1_documents():
        for i, event in enumerate(events_of(json.loads(path.read_text()))):
            out.append((f"{path.relative_to(DATA / 'gs1')}#{i}", event))
    return out


def test_the_schema_is_gs1s_unmodified() -> None:
    packaged = Path(epcis.__file__).parent / "gs1" / "EPCIS-JSON-Schema.json"
    assert hashlib.sha256(packaged.read_bytes()).hexdigest() == SCHEMA_SHA256
    if SHARED_SCHEMA.exists():
        assert SHARED_SCHEMA.read_bytes() == packaged.read_bytes()
    Draft7Validator.check_schema(epcis.SCHEMA)


@pytest.mark.parametrize("path", gs1_documents(), ids=lambda p: p.name)
def test_gs1_example_documents_are_valid_and_each_event_accepted(path: Path) -> None:
    document = json.loads(path.read_text())
    assert list(REFERENCE.iter_errors(document)) == []  # GS1's schema accepts its example
    events = events_of(document)
    assert events
    for event in events:
        assert epcis.parse(event) == event
        assert epcis.parse(json.dumps(event)) == event


def test_there_are_examples_of_every_event_type() -> None:
    types = {event["type"] for _, event in gs1_events()}
    assert types == set(epcis.EVENT_TYPES)
    assert len(gs1_events()) >= 50


def base() -> dict[str, Any]:
    """A valid ObjectEvent to break one member at a time."""
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-22T08:15:00.000Z",
        "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "disposition": "in_progress",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"],
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
    }


def edit(**changes: Any) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        event = base()
        for key, value in changes.items():
            if value is None:
                event.pop(key, None)
            else:
                event[key] = value
        return event

    return make


def association(**changes: Any) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        event = {
            "type": "AssociationEvent",
            "eventTime": "2026-11-22T08:15:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "parentID": "urn:epc:id:grai:4012345.55555.987",
            "childEPCs": ["urn:epc:id:giai:4000001.12345"],
        }
        event.update(changes)
        return {k: v for k, v in event.items() if v is not None}

    return make


LGTIN = "urn:epc:class:lgtin:4012345.012345.998877"
SENSOR = [{"sensorReport": [{"type": "Temperature", "value": 21.5, "uom": "CEL"}]}]
VALID = {
    "sensor data and a readPoint, no epcList": edit(epcList=None, sensorElementList=SENSOR),
    "empty epcList": edit(epcList=[]),
    "quantityElement without quantity": edit(epcList=None, quantityList=[{"epcClass": LGTIN}]),
    "custom bizStep URI": edit(bizStep="https://example.com/steps/anodizing"),
    "CBV web URI bizStep": edit(bizStep="https://ref.gs1.org/cbv/BizStep-inspecting"),
    "namespaced extension": edit(
        **{"example:lotNumber": "L42", "@context": [{"example": "https://example.com/ns/"}]}
    ),
    "offset +14:00": edit(eventTimeZoneOffset="+14:00"),
    "AggregationEvent OBSERVE without parentID": lambda: {
        "type": "AggregationEvent",
        "eventTime": "2026-11-22T08:15:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
    },
    "association": association(),
}

# name: (event, the member the refusal names, whether the schema refuses it: False for the
# rules the schema cannot state, None where implementations differ)
INVALID: dict[str, tuple[Callable[[], dict[str, Any]], str, bool | None]] = {
    "URN-form bizStep": (
        edit(bizStep="urn:epcglobal:cbv:bizstep:inspecting"),
        "payload.bizStep",
        True,
    ),
    "un-namespaced extension key": (edit(lotNumber="L42"), "payload.lotNumber", True),
    "non-URI EPC": (edit(epcList=["LOT-42"]), "payload.epcList[0]", True),
    "non-URI readPoint": (edit(readPoint={"id": "hall 3"}), "payload.readPoint.id", True),
    "non-URI disposition": (edit(disposition="in progress"), "payload.disposition", True),
    "sensorReport without type": (
        edit(sensorElementList=[{"sensorReport": [{"value": 21.5, "uom": "CEL"}]}]),
        "payload.sensorElementList[0].sensorReport[0].type",
        True,
    ),
    "quantity as a string": (
        edit(
            epcList=None,
            quantityList=[{"epcClass": LGTIN, "quantity": "5"}],
        ),
        "payload.quantityList[0].quantity",
        True,
    ),
    "sensor value as a string": (
        edit(sensorElementList=[{"sensorReport": [{"type": "Temperature", "value": "21.5"}]}]),
        "payload.sensorElementList[0].sensorReport[0].value",
        True,
    ),
    "offset +14:30": (edit(eventTimeZoneOffset="+14:30"), "payload.eventTimeZoneOffset", True),
    "eventTime without offset": (edit(eventTime="2026-11-22T08:15:00"), "payload.eventTime", True),
    "AssociationEvent without parentID": (association(parentID=None), "payload.parentID", True),
    "duplicate EPCs": (
        edit(epcList=["urn:epc:id:sgtin:0614141.107346.2017"] * 2),
        "payload.epcList",
        True,
    ),
    "duplicate childEPCs": (
        association(childEPCs=["urn:epc:id:giai:4000001.12345"] * 2),
        "payload.childEPCs[1]",
        False,
    ),
    "AggregationEvent ADD without parentID": (
        lambda: {
            "type": "AggregationEvent",
            "eventTime": "2026-11-22T08:15:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
        },
        "payload.parentID",
        False,
    ),
    "ObjectEvent without action": (edit(action=None), "payload.action", True),
    "TransformationEvent with an action": (
        lambda: {
            "type": "TransformationEvent",
            "eventTime": "2026-11-22T08:15:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "inputEPCList": ["urn:epc:id:sgtin:4012345.011122.25"],
        },
        "payload.action",
        True,
    ),
    # RFC 3339 allows a leap second; rfc3339-validator refuses it, jsonschema-rs accepts it,
    # and the node cannot date it (Python has no 60th second): refused by the node's rule
    "leap second": (edit(eventTime="2016-12-31T23:59:60Z"), "payload.eventTime", None),
}


@pytest.mark.parametrize("make", VALID.values(), ids=VALID.keys())
def test_valid_events_are_accepted(make: Callable[[], dict[str, Any]]) -> None:
    event = make()
    assert REFERENCE_EVENT.is_valid(event)
    assert epcis.parse(event) == event


@pytest.mark.parametrize(("make", "field", "by_schema"), INVALID.values(), ids=INVALID.keys())
def test_invalid_events_are_refused_naming_the_member(
    make: Callable[[], dict[str, Any]], field: str, by_schema: bool | None
) -> None:
    event = make()
    if by_schema is not None:
        assert REFERENCE_EVENT.is_valid(event) is not by_schema  # the schema's verdict, or ours
    with pytest.raises(InvalidInput) as refused:
        epcis.parse(event)
    assert refused.value.field == field, str(refused.value)


def mutations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Each top-level member dropped, emptied, made a non-URI string, made a number."""
    out = []
    for key in event:
        dropped = {k: v for k, v in event.items() if k != key}
        out.append(dropped)
        for value in ("not a uri", 7, [], {}):
            out.append({**event, key: value})
    return out


def test_jsonschema_rs_agrees_with_the_reference_implementation() -> None:
    cases = [event for _, event in gs1_events()[::4]] + [make() for make in VALID.values()]
    cases += [make() for make, _, by_schema in INVALID.values() if by_schema is not None]
    checked = 0
    for event in cases:
        for variant in [event, *mutations(event)]:
            assert epcis._EVENT.is_valid(variant) == REFERENCE_EVENT.is_valid(variant), variant
            checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("assembling", True),
        ("sensor_reporting", True),
        ("https://example.com/steps/anodizing", True),
        ("https://ref.gs1.org/cbv/BizStep-assembling", True),
        ("urn:example:steps:anodizing", True),
        ("urn:epcglobal:cbv:bizstep:assembling", False),
        ("https://ns.gs1.org/cbv/BizStep-assembling", False),
        ("dancing", False),
        ("", False),
        ("https://example.com/" + "x" * 3000, False),
    ],
)
def test_the_record_carries_any_valid_biz_step(value: str, ok: bool) -> None:
    def step() -> Step:
        return Step(1, 0, 0, bytes(32), value, bytes(32), bytes(32), 1, "0x" + "11" * 20)

    if ok:
        assert step().biz_step == value
    else:
        with pytest.raises(InvalidInput, match="bizStep"):
            step()


# --- over HTTP: a factory records the events on a split ------------------------------------
def dated(event: dict[str, Any], when: int) -> dict[str, Any]:
    """`event` moved to `when` (GS1's examples predate any order)."""
    moved = copy.deepcopy(event)
    moved["eventTime"] = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    moved["eventTimeZoneOffset"] = "+00:00"
    return moved


def test_over_the_api_gs1_events_are_recorded_and_broken_ones_refused(node: Node) -> None:
    client = TestClient(create_app(node))
    p = parties(node)
    job = in_production(node, p)
    plant = p.factories[0]
    headers = sign_in(client, node, plant.account)
    t0 = node.steps.authority.job_created_at(job)
    url = f"/jobs/{job}/splits/0/steps"

    when = t0
    for name, make, field, _ in [(n, *v) for n, v in INVALID.items()]:
        before = client.get(url).json()["steps"]
        event = make()
        if "eventTime" in event and name not in ("eventTime without offset", "leap second"):
            event = {**event, "eventTime": dated(event, when)["eventTime"]}
        resp = client.post(url, json={"payload": event}, headers=headers)
        assert resp.status_code == 422, (name, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert problem["errors"][0]["field"] == field, (name, problem)
        assert field.removeprefix("payload") in problem["detail"] or field == "payload"
        assert client.get(url).json()["steps"] == before  # nothing stored

    # RFC 8785: an integer beyond 2**53 that is a double is recorded; one that is none is not
    when += 1
    exact = edit(epcList=None, quantityList=[{"epcClass": LGTIN, "quantity": 10**16}])()
    resp = client.post(url, json={"payload": dated(exact, when)}, headers=headers)
    assert resp.status_code == 201, resp.text
    for quantity in (2**53 + 1, 2**60 + 1):
        when += 1
        inexact = dated(exact, when)
        inexact["quantityList"][0]["quantity"] = quantity
        resp = client.post(url, json={"payload": inexact}, headers=headers)
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == "payload.quantityList[0].quantity"
        assert "not exactly representable" in resp.json()["detail"]
    assert len(client.get(url).json()["steps"]) == 1

    events = [exact] + [event for _, event in gs1_events()]
    for name, event in gs1_events():
        when += 1
        resp = client.post(url, json={"payload": dated(event, when)}, headers=headers)
        assert resp.status_code == 201, (name, resp.text)
    steps = client.get(url).json()["steps"]
    assert len(steps) == len(events)
    # the record carries each event's bizStep as written (custom URIs included), else "other"
    assert [s["record"]["bizStep"] for s in steps] == [e.get("bizStep", "other") for e in events]
