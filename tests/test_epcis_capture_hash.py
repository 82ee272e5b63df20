"""The CBV 2.0 event hash ID against the hashes GS1 publishes with its examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.epcis.eventhash import digital_link, event_id

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
