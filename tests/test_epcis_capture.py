"""EPCIS 2.0 capture, query and query subscriptions on a node: a standard client over
HTTP, a webhook receiver on 127.0.0.1, and the attacks."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in
from test_webhooks import Receiver

from api.app import create_app
from kit import in_production, new_account, parties
from ledger.core import merkle
from ledger.epcis import context as ctx
from ledger.epcis import prepare
from ledger.epcis.eventhash import event_id
from ledger.eth.toolchain import free_port
from ledger.node import Node
from ledger.notify.signing import verify
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle
from ledger.steps.signatures import Signer
from ledger.verify.checker import verify_bundle

GS1 = Path(__file__).parent / "data" / "epcis" / "gs1"
SHIPPING_READ_POINT = "urn:epc:id:sgln:0614141.07346.1234"  # Example 9.6.1, event 0
RECEIVING_LOCATION = "urn:epc:id:sgln:0012345.11111.0"  # Example 9.6.1, event 1
EPC_2018 = "urn:epc:id:sgtin:0614141.107346.2018"


@dataclass
class Gateway:
    node: Node
    app: FastAPI
    client: TestClient
    job: int
    factory: Any  # Sender of the factory of splits 0 and 2
    other: Any  # Sender of the factory of split 1
    device: Any  # the factory's device key, held by the node
    token: dict[str, str]
    key: str
    t0: int

    def mes(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def stored(self) -> tuple[int, int, int]:
        """Steps in the journal, events in the index, capture jobs: what an attack must
        leave unchanged."""
        db = self.node.epcis.store
        return (
            self.node.steps.journal.count(),
            db.count(),
            int(db.read("SELECT COUNT(*) FROM captures")[0][0]),
        )


def redate(document: dict[str, Any], t0: int) -> dict[str, Any]:
    """A GS1 example document with its events dated after the order was placed (the node
    refuses steps older than their order), each in its own time zone."""
    doc = copy.deepcopy(document)
    for i, event in enumerate(doc["epcisBody"]["eventList"]):
        offset = event["eventTimeZoneOffset"]
        sign = -1 if offset[0] == "-" else 1
        zone = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        when = datetime.fromtimestamp(t0 + 10 * i, UTC).astimezone(timezone(zone))
        event["eventTime"] = when.isoformat(timespec="milliseconds")
    return doc


def example(name: str, t0: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GS1 / name).read_text())
    return redate(document, t0)


@pytest.fixture
def gw(node: Node) -> Gateway:
    p = parties(node)
    job = in_production(node, p)  # factory 0: splits 0 and 2; factory 1: split 1
    node.chain.advance_time(60)
    plant = p.factories[0]
    device = new_account()
    node.consortium.authorize_device(plant, device, 0)
    node.add_signer(device)
    app = create_app(node)
    client = TestClient(app)
    token = sign_in(client, node, plant.account)
    resp = client.post("/epcis/keys", json={"name": "MES hall 3"}, headers=token)
    assert resp.status_code == 201, resp.text
    for field, value, split in (
        ("readPoint", SHIPPING_READ_POINT, 0),
        ("bizLocation", RECEIVING_LOCATION, 2),
    ):
        body = {"field": field, "value": value, "job_id": job, "split_id": split}
        assert client.post("/epcis/mappings", json=body, headers=token).status_code == 201
    # events dated after the device key's binding (the audit flags earlier ones it signed)
    t0 = int(node.chain.w3.eth.get_block("latest")["timestamp"]) + 1
    return Gateway(
        node, app, client, job, plant, p.factories[1], device, token, resp.json()["key"], t0
    )


@pytest.fixture
def served(gw: Gateway) -> Iterator[str]:
    """The same app over real HTTP (uvicorn on a free 127.0.0.1 port)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(gw.app, host="127.0.0.1", port=port, log_level="warning")
    )
    serving = threading.Thread(target=server.run)
    serving.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        serving.join()


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["type"] == "EPCISQueryDocument"
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_standard_client_captures_a_gs1_document_and_queries_it_back_with_proofs(
    gw: Gateway, served: str
) -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    del document["epcisBody"]["eventList"][1]["eventID"]
    mes = httpx.Client(base_url=served, headers=gw.mes(), timeout=30)
    resp = mes.post(
        "/epcis/capture",
        content=json.dumps(document),
        headers={"content-type": "application/ld+json"},
    )
    assert resp.status_code == 202, resp.text
    location = resp.headers["location"]
    assert location.startswith("/epcis/capture/")
    job = mes.get(location).json()
    assert job["running"] is False and job["success"] is True and job["errors"] == []
    assert job["captured"] == 2 and job["duplicates"] == 0
    ids = job["eventIDs"]
    stated, unnamed = document["epcisBody"]["eventList"]
    assert ids[0] == stated["eventID"]  # an event that states its eventID keeps it
    assert ids[1] == event_id(unnamed, document["@context"])  # else: the CBV 2.0 event hash
    assert ids[1].startswith("ni:///sha-256;") and ids[1].endswith("?ver=CBV2.0")

    def query(**params: str) -> list[dict[str, Any]]:
        answer = mes.get("/epcis/events", params=params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/ld+json")
        return _events(answer.json())

    shipping, receiving = ids
    everything = query()
    assert [e["eventID"] for e in everything] == ids
    later = datetime.fromtimestamp(gw.t0 + 5, UTC).isoformat()
    for params, expected in (
        ({"eventType": "ObjectEvent"}, ids),
        ({"eventType": "AggregationEvent"}, []),
        ({"EQ_bizStep": "shipping"}, [shipping]),
        ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-receiving"}, [receiving]),
        ({"GE_eventTime": later}, [receiving]),
        ({"LT_eventTime": later}, [shipping]),
        ({"GE_recordTime": "2000-01-01T00:00:00Z"}, ids),
        ({"GE_recordTime": "2999-01-01T00:00:00Z"}, []),
        ({"EQ_readPoint": SHIPPING_READ_POINT}, [shipping]),
        ({"EQ_bizLocation": RECEIVING_LOCATION}, [receiving]),
        ({"MATCH_epc": "urn:epc:id:sgtin:0614141.107346.2017"}, [shipping]),
        ({"MATCH_epc": EPC_2018}, ids),
        ({"MATCH_anyEPC": "urn:epc:id:sgtin:0614141.107346.2017"}, [shipping]),
        ({"MATCH_parentID": EPC_2018}, []),
        ({"MATCH_anyEPC": f"{EPC_2018}|urn:epc:id:sgtin:0614141.107346.2017"}, ids),
    ):
        assert [e["eventID"] for e in query(**params)] == expected, params

    first = mes.get("/epcis/events", params={"perPage": "1"})
    assert [e["eventID"] for e in _events(first.json())] == [shipping]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    second = mes.get(link[1 : link.index(">")])
    assert [e["eventID"] for e in _events(second.json())] == [receiving]
    assert "link" not in second.headers

    # the published context names the proof; the event carries it
    body = mes.get("/epcis/events").json()
    context_url = body["@context"][1]
    assert context_url.endswith(ctx.CONTEXT_PATH)
    context = mes.get(context_url).json()["@context"]
    assert context[ctx.PROOF]["@id"] == ctx.NAMESPACE + "proof"
    proof = everything[0][ctx.PROOF]
    assert proof["signer"] == gw.device.address and proof["record"]["member"] == gw.factory.address
    assert (proof["jobId"], proof["splitId"], proof["seq"]) == (gw.job, 0, 0)
    assert everything[1][ctx.PROOF]["splitId"] == 2
    assert proof["anchor"] is None  # not anchored yet

    # the step verifies with the one checker, from the node's bundle of the split
    bundle = gw.node.steps.export(gw.job, 0)
    assert bundle["splits"][0]["steps"][0]["step_hash"] == proof["stepHash"]
    assert verify_bundle(Bundle.load(bundle), gw.node.chain.w3).ok

    # once anchored, the Merkle proof verifies against the chain
    gw.node.steps.anchor(gw.job, 0)
    one = mes.get(f"/epcis/events/{quote(shipping, safe='')}").json()
    anchor = one[ctx.PROOF]["anchor"]
    assert anchor is not None and anchor["txHash"] and anchor["blockNumber"] > 0
    leaf = [one[ctx.PROOF]["seq"], one[ctx.PROOF]["stepHash"]]
    b32 = [bytes.fromhex(h[2:]) for h in (anchor["root"], anchor["head"], leaf[1])]
    path = [bytes.fromhex(h[2:]) for h in anchor["merkleProof"]]
    assert merkle.verify(b32[0], anchor["leafEncoding"], [leaf[0], b32[2]], path)
    traceability = gw.node.steps.traceability
    assert traceability.functions.verifyStep(
        gw.job, 0, anchor["index"], b32[0], b32[1], leaf[0], b32[2], path
    ).call()  # fmt: skip
    assert one["eventID"] == shipping and one["@context"][1] == context_url


def test_capture_is_idempotent_on_event_id(gw: Gateway) -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    first = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert first.status_code == 202, first.text
    before = gw.stored()
    again = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert again.status_code == 202
    assert again.json()["captured"] == 0 and again.json()["duplicates"] == 2
    assert gw.stored()[:2] == before[:2]  # no second step, no second event

    # the same event written otherwise (keys reordered, time in UTC) has the same eventID
    event = document["epcisBody"]["eventList"][0]
    moved = dict(reversed(list(event.items())))
    moved["eventTime"] = datetime.fromisoformat(event["eventTime"]).astimezone(UTC).isoformat()
    single = {**moved, "@context": document["@context"]}
    resp = gw.client.post("/epcis/capture", json=single, headers=gw.mes())
    assert resp.json()["duplicates"] == 1 and gw.stored()[:2] == before[:2]

    # an event that states its eventID keeps it; the same eventID again is the same event
    mine = object_event("inspecting", gw.t0 + 100, read_point=SHIPPING_READ_POINT)
    mine["eventID"] = "urn:uuid:3f2d7a4e-6c1b-4e8a-9a51-0c7d1f1e2b3c"
    resp = gw.client.post("/epcis/capture", json=mine, headers=gw.mes())
    assert resp.json()["eventIDs"] == [mine["eventID"]] and resp.json()["captured"] == 1
    twice = {**mine, "eventTime": mine["eventTime"]}
    within = {
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": mine["eventTime"],
        "epcisBody": {"eventList": [twice, twice]},
    }
    resp = gw.client.post("/epcis/capture", json=within, headers=gw.mes())
    assert resp.json()["captured"] == 0 and resp.json()["duplicates"] == 2
    found = gw.client.get(f"/epcis/events/{mine['eventID']}", headers=gw.mes()).json()
    assert found["bizStep"] == "inspecting"


def test_a_large_document_is_captured_in_order_through_the_workers(gw: Gateway) -> None:
    """A document large enough for the worker processes: a refused event deep in it is
    named and nothing is stored; accepted, its steps chain in the document's order with
    the eventIDs a single thread gives."""
    start = datetime.fromtimestamp(gw.t0, UTC)
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": (start + timedelta(milliseconds=i)).isoformat(timespec="milliseconds"),
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "bizStep": ("packing", "shipping")[i % 2],
            "epcList": [f"urn:epc:id:sgtin:0614141.107346.{10_000 + i}"],
            "readPoint": {"id": SHIPPING_READ_POINT},
        }
        for i in range(prepare.PARALLEL_FROM + 20)
    ]
    document = {
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": events[0]["eventTime"],
        "epcisBody": {"eventList": events},
    }
    bad = copy.deepcopy(document)
    bad["epcisBody"]["eventList"][-5]["action"] = "PEEK"
    before = gw.stored()
    resp = gw.client.post("/epcis/capture", json=bad, headers=gw.mes())
    field = f"epcisBody.eventList[{len(events) - 5}].action"
    assert assert_problem(resp, 422)["errors"][0]["field"] == field
    assert gw.stored() == before  # no step, no event, no capture job

    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert resp.status_code == 202, resp.text
    assert resp.json()["eventIDs"] == [event_id(e) for e in events]
    steps = gw.node.steps.journal.steps(gw.job, 0)
    assert [s.step.seq for s in steps] == list(range(len(events)))
    assert [s.step.biz_step for s in steps] == [e["bizStep"] for e in events]
    assert all(s.signer == gw.device.address for s in steps)


def test_events_name_their_split_themselves(gw: Gateway) -> None:
    lot = "urn:epc:class:lgtin:4012345.012345.998877"
    event = object_event(
        "assembling",
        gw.t0,
        read_point="urn:epc:id:sgln:0614141.00999.0",
        quantities=[(lot, 5, "KGM")],
    )
    event.update({ctx.JOB: str(gw.job), ctx.SPLIT: 2})
    document = {
        "@context": [ctx.GS1_CONTEXT, {"cofab": ctx.NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": event["eventTime"],
        "epcisBody": {"eventList": [event]},
    }
    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert resp.status_code == 202, resp.text
    steps = gw.node.steps.journal.steps(gw.job, 2)
    assert len(steps) == 1 and steps[0].signer == gw.device.address
    for name in ("MATCH_epcClass", "MATCH_anyEPCClass"):
        found = gw.client.get("/epcis/events", params={name: lot}, headers=gw.mes()).json()
        assert [e[ctx.PROOF]["stepHash"] for e in _events(found)] == [
            "0x" + steps[0].step_hash.hex()
        ]


def test_steps_sent_by_devices_are_queryable_too(gw: Gateway) -> None:
    """The index is the journal's: pre-signed steps appear, with their CBV eventID, and a
    lost index is rebuilt from the journal alone."""
    writer = StepWriter(Signer(gw.device.key), gw.node.steps.domain, gw.job, 0, gw.factory.address)
    sub = writer.step(object_event("inspecting", gw.t0, read_point="urn:epc:id:sgln:1.1.1"))
    gw.node.steps.ingest([sub])
    found = _events(gw.client.get("/epcis/events", headers=gw.mes()).json())
    assert [e["eventID"] for e in found] == [event_id(sub.payload)]  # type: ignore[arg-type]
    with gw.node.epcis.store.transaction() as db:  # the index lost, the keys kept
        for table in ("events", "epcs", "watermarks"):
            db.execute(f"DELETE FROM {table}")
    again = _events(gw.client.get("/epcis/events", headers=gw.mes()).json())
    assert [e["eventID"] for e in again] == [found[0]["eventID"]]


def test_a_capture_answered_before_its_events_are_indexed_is_found_all_the_same(
    gw: Gateway,
) -> None:
    """Captured events are indexed after the 202; a capture answered when they cannot be
    (the node closing) is found by the next query and is still idempotent."""
    gw.node.epcis._indexer.shutdown(wait=True)
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    first = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert first.status_code == 202 and first.json()["captured"] == 2, first.text
    found = _events(gw.client.get("/epcis/events", headers=gw.mes()).json())
    assert sorted(e["eventID"] for e in found) == sorted(first.json()["eventIDs"])
    again = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert again.json()["captured"] == 0 and again.json()["duplicates"] == 2
    assert gw.stored()[:2] == (2, 2)


# --- attacks: each refused, and nothing stored ---------------------------------------------


def test_a_factory_cannot_capture_into_another_factorys_split(gw: Gateway) -> None:
    before = gw.stored()
    event = object_event(
        "https://example.com/steps/painting", gw.t0, read_point=SHIPPING_READ_POINT
    )
    event.update({ctx.JOB: gw.job, ctx.SPLIT: 1})  # split 1 is the other factory's
    resp = gw.client.post("/epcis/capture", json=event, headers=gw.mes())
    assert "belongs to" in assert_problem(resp, 403)["detail"]
    mapping = {"field": "epc", "value": "urn:epc:id:sgtin:1.1.1", "job_id": gw.job, "split_id": 1}
    resp = gw.client.post("/epcis/mappings", json=mapping, headers=gw.token)
    assert_problem(resp, 403)
    assert all(m["split_id"] != 1 for m in gw.node.epcis.mappings(gw.factory.address))
    assert gw.stored() == before


def test_a_revoked_key_is_refused_before_its_body_is_read(gw: Gateway) -> None:
    keys = gw.client.get("/epcis/keys", headers=gw.token).json()
    assert [k["name"] for k in keys] == ["MES hall 3"] and "key" not in keys[0]
    assert gw.client.delete(f"/epcis/keys/{keys[0]['key_id']}", headers=gw.token).status_code == 204
    before = gw.stored()
    event = object_event("inspecting", gw.t0, read_point=SHIPPING_READ_POINT)
    resp = gw.client.post("/epcis/capture", json=event, headers=gw.mes())
    assert_problem(resp, 401)
    assert_problem(gw.client.get("/epcis/events", headers=gw.mes()), 401)
    assert_problem(gw.client.post("/epcis/capture", json=event), 401)  # no credential at all
    assert gw.stored() == before
    # only a hash of the key is kept
    assert gw.key not in gw.node.epcis.store.path.read_bytes().decode("latin-1")


def test_an_api_key_opens_nothing_but_capture_and_query(gw: Gateway) -> None:
    before = gw.stored()
    step = {"payload": object_event("inspecting", gw.t0)}
    for method, path, body in (
        ("POST", f"/jobs/{gw.job}/splits/0/steps", step),
        ("GET", "/auth/me", None),
        ("POST", "/epcis/keys", {"name": "another"}),
        ("GET", "/epcis/keys", None),
        ("POST", "/epcis/mappings", {"field": "epc", "value": "x:y", "job_id": gw.job,
                                     "split_id": 0}),
        ("POST", f"/jobs/{gw.job}/splits/0/anchor", None),
    ):  # fmt: skip
        resp = gw.client.request(method, path, json=body, headers=gw.mes())
        assert_problem(resp, 401)
    assert gw.stored() == before
    assert len(gw.node.epcis.store.keys(gw.factory.address)) == 1


def test_an_event_that_maps_to_nothing_is_refused(gw: Gateway) -> None:
    before = gw.stored()
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    document["epcisBody"]["eventList"][1]["bizLocation"]["id"] = "urn:epc:id:sgln:0012345.11111.9"
    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    problem = assert_problem(resp, 422)
    assert problem["errors"][0]["field"] == "epcisBody.eventList[1]"
    assert "maps to no split" in problem["detail"] and "0012345.11111.9" in problem["detail"]
    assert gw.stored() == before  # the first event, mapped, is not stored either


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(epcList=["LOT-42"]), "epcisBody.eventList[1].epcList[0]"),
        (lambda e: e.update(lotNumber="L42"), "epcisBody.eventList[1].lotNumber"),
        (lambda e: e.update(bizStep="urn:epcglobal:cbv:bizstep:receiving"),
         "epcisBody.eventList[1].bizStep"),
        (lambda e: e.pop("eventTime"), "epcisBody.eventList[1].eventTime"),
    ],
)  # fmt: skip
def test_an_invalid_event_is_refused_naming_the_member(
    gw: Gateway, change: Any, field: str
) -> None:
    before = gw.stored()
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    change(document["epcisBody"]["eventList"][1])
    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    problem = assert_problem(resp, 422)
    assert problem["errors"][0]["field"] == field, problem
    assert gw.stored() == before


def test_an_event_older_than_its_order_is_refused_naming_the_event(gw: Gateway) -> None:
    before = gw.stored()
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0 - 10_000)
    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    problem = assert_problem(resp, 422)
    assert problem["detail"].startswith("epcisBody.eventList[0]: ")
    assert gw.stored() == before


def test_without_a_device_key_the_node_does_not_sign(gw: Gateway) -> None:
    gw.node.consortium.revoke_device(gw.factory, gw.device.address)
    gw.node.steps.authority._devices.clear()  # the revocation is seen at once
    before = gw.stored()
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    resp = gw.client.post("/epcis/capture", json=document, headers=gw.mes())
    assert "device key" in assert_problem(resp, 403)["detail"]
    assert gw.stored() == before


def test_capture_jobs_and_queries_need_a_member(gw: Gateway) -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld", gw.t0)
    job = gw.client.post("/epcis/capture", json=document, headers=gw.mes()).json()
    other = sign_in(gw.client, gw.node, gw.other.account)
    assert_problem(gw.client.get(f"/epcis/capture/{job['captureID']}", headers=other), 404)
    assert gw.client.get(f"/epcis/capture/{job['captureID']}", headers=gw.token).status_code == 200
    assert_problem(gw.client.get("/epcis/events"), 401)
    # a bad query parameter is EPCIS's QueryParameterException: 400 naming it
    unknown = gw.client.get("/epcis/events", params={"EQ_nothing": "x"}, headers=gw.mes())
    assert assert_problem(unknown, 400)["errors"][0]["field"] == "EQ_nothing"
    bad_page = gw.client.get("/epcis/events", params={"nextPageToken": "zz"}, headers=gw.mes())
    assert assert_problem(bad_page, 400)["errors"][0]["field"] == "nextPageToken"


# --- named queries and subscriptions: a webhook gets each new matching event once ---------

TOKEN = "subscriber-chosen-secret-0123456789"
SHIPPING = "Example_9.6.1-ObjectEvent.jsonld"  # a shipping event, then a receiving one


def _reports(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in receiver.requests]


def _event_ids(report: dict[str, Any]) -> list[str]:
    assert report["type"] == "EPCISQueryDocument"
    results = report["epcisBody"]["queryResults"]
    return [e["eventID"] for e in results["resultsBody"]["eventList"]]


def test_a_stream_subscription_reports_each_new_matching_event_once(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COFAB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on 127.0.0.1
    receiver = Receiver(secret=TOKEN)
    try:
        _scenario(gw, receiver)
    finally:
        receiver.close()


def _scenario(gw: Gateway, receiver: Receiver) -> None:
    c, mes = gw.client, gw.mes()
    query = {"name": "shipped", "query": {"EQ_bizStep": ["shipping"], "eventType": ["ObjectEvent"]}}
    made = c.post("/epcis/queries", json=query, headers=mes)
    assert made.status_code == 201, made.text
    assert made.headers["location"] == "/epcis/queries/shipped"
    assert_problem(c.post("/epcis/queries", json=query, headers=mes), 409)

    # a bad query: 400 naming the parameter, nothing stored
    for bad, field in (
        ({"EQ_bizStep": "shipping"}, "query.EQ_bizStep"),  # GS1's schema: a list
        ({"GE_eventTime": "yesterday"}, "query.GE_eventTime"),
        ({"EQ_quantity": [1]}, "query.EQ_quantity"),  # GS1's, not answered here
        ({"EQ_nothing": ["x"]}, "query.EQ_nothing"),
    ):
        resp = c.post("/epcis/queries", json={"name": "bad", "query": bad}, headers=mes)
        assert assert_problem(resp, 400)["errors"][0]["field"] == field, resp.text
    resp = c.post("/epcis/queries", json={"name": "a b", "query": {}}, headers=mes)
    assert assert_problem(resp, 400)["errors"][0]["field"] == "name"
    assert [q["name"] for q in c.get("/epcis/queries", headers=mes).json()] == ["shipped"]

    # bad subscription controls: 400 naming the control, nothing subscribed
    subs = "/epcis/queries/shipped/subscriptions"
    for bad, field in (
        ({"dest": receiver.url}, "schedule"),  # neither stream nor schedule
        ({"dest": receiver.url, "stream": True, "reportIfEmpty": True}, "reportIfEmpty"),
        ({"dest": receiver.url, "schedule": {"minute": "61"}}, "schedule.minute"),
        ({"dest": receiver.url, "schedule": {"hour": "[5-2]"}}, "schedule.hour"),
        ({"dest": "ftp://example.org/x", "stream": True}, "dest"),
        ({"dest": receiver.url, "stream": True, "signatureToken": "short"}, "signatureToken"),
        ({"dest": receiver.url, "stream": True, "every": "minute"}, "every"),
        ({"dest": receiver.url, "stream": True, "initialRecordTime": "soon"}, "initialRecordTime"),
    ):
        resp = c.post(subs, json=bad, headers=mes)
        assert assert_problem(resp, 400)["errors"][0]["field"] == field, resp.text
    assert c.get(subs, headers=mes).json() == []
    assert_problem(c.post("/epcis/queries/nope/subscriptions", json={}, headers=mes), 404)

    body = {"dest": receiver.url, "signatureToken": TOKEN, "stream": True}
    resp = c.post(subs, json=body, headers=mes)
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    assert resp.headers["location"] == f"{subs}/{sub['subscriptionID']}"
    assert sub["stream"] is True and sub["dest"] == receiver.url
    assert "signatureToken" not in sub  # the subscriber's own secret is never echoed
    assert c.get(subs, headers=mes).json() == [sub]
    # a member's webhooks list is its own: the subscription's endpoint is not among them
    assert c.get("/webhooks", headers=gw.token).json() == []

    # captured: the matching (shipping) event is reported once, signed; not the receiving one
    document = example(SHIPPING, gw.t0)
    captured = c.post("/epcis/capture", json=document, headers=mes).json()
    shipping, receiving = captured["eventIDs"]
    for _ in range(3):
        gw.node.epcis.subscriptions.publish()
        gw.node.notify.dispatcher.run_due()
    [report] = _reports(receiver)
    assert _event_ids(report) == [shipping]
    assert report["epcisBody"]["queryResults"]["subscriptionID"] == sub["subscriptionID"]
    event = report["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]
    assert event["cofab:proof"]["signer"] == gw.device.address  # the event with its proof
    headers, raw = receiver.requests[0]["headers"], receiver.requests[0]["body"]
    assert headers["GS1-Signature"] == headers["Cofab-Signature"]
    verify(TOKEN, headers["GS1-Signature"], raw)  # HMAC with the subscriber's token
    assert receiver.refused == [] and len(receiver.processed) == 1

    # the same document again: duplicates, no new event, no new report
    c.post("/epcis/capture", json=document, headers=mes)
    gw.node.epcis.subscriptions.publish()
    gw.node.notify.dispatcher.run_due()
    assert len(receiver.requests) == 1
    assert receiving not in _event_ids(report)

    # another member neither sees nor removes the query or its subscription
    other = sign_in(c, gw.node, gw.other.account)
    one = f"{subs}/{sub['subscriptionID']}"
    assert c.get("/epcis/queries", headers=other).json() == []
    assert_problem(c.get("/epcis/queries/shipped", headers=other), 404)
    assert_problem(c.get(subs, headers=other), 404)
    assert_problem(c.get(one, headers=other), 404)
    assert_problem(c.delete(one, headers=other), 404)
    assert_problem(c.delete("/epcis/queries/shipped", headers=other), 404)
    assert c.get(subs, headers=mes).json() == [sub]  # nothing changed
    assert c.get(one, headers=gw.token).json() == sub  # the factory, signed in, sees it too

    # the named query's events, paged like /epcis/events
    page = c.get("/epcis/queries/shipped/events", headers=mes).json()
    assert _event_ids(page) == [shipping]
    bad = c.get("/epcis/queries/shipped/events", params={"EQ_action": "ADD"}, headers=mes)
    assert assert_problem(bad, 400)["errors"][0]["field"] == "EQ_action"

    # a schedule reports what is new at its times, and when nothing is new only if asked
    watched = {"name": "received", "query": {"EQ_bizStep": ["receiving"]}}
    assert c.post("/epcis/queries", json=watched, headers=mes).status_code == 201
    quiet = {"dest": receiver.url, "signatureToken": TOKEN, "schedule": {"second": "[0-59]"}}
    told = {**quiet, "reportIfEmpty": True}
    for controls in (quiet, told):
        resp = c.post("/epcis/queries/received/subscriptions", json=controls, headers=mes)
        assert resp.status_code == 201, resp.text
        assert resp.json()["reportIfEmpty"] is controls.get("reportIfEmpty", False)
    assert gw.node.epcis.subscriptions.publish(now=time.time() + 2) == 1  # the one told
    gw.node.notify.dispatcher.run_due()
    assert len(receiver.requests) == 2 and _event_ids(_reports(receiver)[1]) == []
    assert c.delete("/epcis/queries/received", headers=mes).status_code == 204

    # unsubscribed: a later matching event is not reported
    assert c.delete(one, headers=mes).status_code == 204
    assert c.get(subs, headers=mes).json() == []
    later = example(SHIPPING, gw.t0 + 20)
    del later["epcisBody"]["eventList"][0]["eventID"]  # a new event: its own hash ID
    assert c.post("/epcis/capture", json=later, headers=mes).status_code == 202
    gw.node.epcis.subscriptions.publish()
    gw.node.notify.dispatcher.run_due()
    assert len(receiver.requests) == 2
    assert c.delete("/epcis/queries/shipped", headers=mes).status_code == 204
    assert c.get("/epcis/queries", headers=mes).json() == []
