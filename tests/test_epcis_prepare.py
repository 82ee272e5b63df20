"""A large capture is prepared by worker processes, chunk by chunk: they give each event
the same eventID and canonical bytes as the capturing thread would, in order, and a
refused event is reported at its own place."""

from __future__ import annotations

import copy
from typing import Any

from ledger.epcis import prepare as prep
from ledger.steps.builder import object_event

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def _events(n: int) -> list[dict[str, Any]]:
    return [
        object_event(
            ("packing", "inspecting", "shipping")[i % 3],
            1_795_000_000 + i,
            epcs=[f"urn:epc:id:sgtin:0614141.107346.{i}"],
            read_point=f"urn:epc:id:sgln:0614141.00777.{i % 4}",
            sensors=[{"type": "Temperature", "value": 20 + i % 7, "uom": "CEL"}],
        )
        for i in range(n)
    ]


def test_workers_prepare_as_the_capturing_thread_does() -> None:
    events = _events(prep.PARALLEL_FROM + 45)
    events[7]["eventID"] = "urn:uuid:7e4a3c1e-0b8f-4d0e-9f3a-2a7e0c9b1d11"  # kept as given
    events[-3]["epcList"] = ["urn:epc:id:sgtin:0614141.107346.1"] * 2  # a listed-twice EPC
    alone = [copy.deepcopy(e) for e in events]
    expected = prep.prepare(alone, CONTEXT)
    assert prep._pool() is not None or prep._cores() == 1  # workers on a multi-core machine
    spread = [copy.deepcopy(e) for e in events]
    with prep.Chunks(spread, CONTEXT) as prepared:
        chunks = list(prepared)
    assert [start for start, _ in chunks] == list(range(0, len(events), prep.CHUNK))
    assert [item for _, done in chunks for item in done] == expected  # in order
    assert spread == alone  # eventIDs set on every payload, also those a worker prepared
    assert expected[-3] is None and all(e is not None for e in expected[:-3])
    assert expected[7] is not None and expected[7][0] == events[7]["eventID"]
    assert len({e[0] for e in expected if e is not None}) == len(events) - 1
