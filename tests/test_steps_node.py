"""Steps on a whole node: a real order's splits, node-signed steps, bundles and the API."""

from __future__ import annotations

import copy
import json
import os

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in

from api.app import create_app
from kit import four_splits, in_production, parties
from ledger.core.errors import InvalidInput
from ledger.designs.files import NewDesign
from ledger.eth import deployment as deploy_mod
from ledger.node import Node, write_run_info
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle
from ledger.steps.signatures import Signer
from ledger.verify.checker import verify_bundle
from ledger.verify.findings import Severity


@pytest.fixture
def order(node: Node):
    p = parties(node)
    job_id = in_production(node, p)
    node.chain.advance_time(60)  # steps dated from the order's creation precede anchors
    return p, job_id


def test_record_anchor_export_verify(node: Node, order) -> None:
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    plant = p.factories[0]
    for i in range(5):
        node.steps.record(plant.address, job, 0, object_event("assembling", t0 + i))
    assert node.steps.anchor(job, 0, max_steps=3)[-1].to_seq == 4
    node.steps.record(plant.address, job, 0, object_event("packing", t0 + 10))  # unanchored
    exported = node.steps.export(job, 0)
    result = verify_bundle(Bundle.load(json.dumps(exported)), node.chain.w3)
    assert result.ok and result.steps == 6 and result.anchored == 5
    assert [f.code for f in result.findings] == ["unanchored"]
    assert exported["version"] == 2 and exported["merkle"]["leaf_encoding"] == [
        "uint64",
        "bytes32",
    ]
    legacy = {k: v for k, v in exported.items() if k not in ("version", "merkle")}
    for old in (legacy, {**legacy, "format": "cofab-steps/1"}):  # version 1: still read
        again = verify_bundle(Bundle.load(old), node.chain.w3)
        assert again.report() == result.report() and Bundle.load(old).version == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 3}, "version"),
        ({"format": "cofab-steps/9"}, "format"),
        ({"merkle": {"tree": "standard-v1", "leaf_encoding": ["bytes32"]}}, "merkle"),
        ({"merkle": None}, "merkle"),
        ({"splits": {}}, "splits"),
    ],
)
def test_a_bundle_this_cofab_cannot_read_is_refused(change: dict, field: str) -> None:
    good = {
        "format": "cofab-steps",
        "version": 2,
        "merkle": {"tree": "standard-v1", "leaf_encoding": ["uint64", "bytes32"]},
        "chain_id": 1,
        "traceability": "0x" + "00" * 20,
        "job_id": 1,
        "splits": [],
    }
    assert Bundle.load(good).export()["version"] == 2
    with pytest.raises(InvalidInput) as refused:
        Bundle.load({**good, **change})
    assert refused.value.field == field


def _codes(bundle: dict, node: Node) -> set[str]:
    result = verify_bundle(Bundle.load(bundle), node.chain.w3)
    return {f.code for f in result.findings if f.blocking}


def test_tampered_bundles_are_caught(node: Node, order) -> None:
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    plant = p.factories[0]
    for i in range(4):
        node.steps.record(plant.address, job, 0, object_event("assembling", t0 + i))
    node.steps.anchor(job, 0)
    good = node.steps.export(job, 0)
    assert _codes(good, node) == set()

    edited = copy.deepcopy(good)
    payload = json.loads(edited["splits"][0]["steps"][1]["payload"])
    payload["quantityList"][0]["quantity"] = 999
    edited["splits"][0]["steps"][1]["payload"] = json.dumps(payload)
    assert "payload-mismatch" in _codes(edited, node)

    swapped = copy.deepcopy(good)  # list order only: seq, hashes and signatures intact
    s = swapped["splits"][0]["steps"]
    s[1], s[2] = s[2], s[1]
    assert _codes(swapped, node) == set()

    dropped = copy.deepcopy(good)
    del dropped["splits"][0]["steps"][2]
    assert {"sequence-gap", "chain-break", "missing-steps"} <= _codes(dropped, node)

    forged = copy.deepcopy(good)
    outsider = Signer(b"\x11" * 32)
    rec = forged["splits"][0]["steps"][0]
    rec["signature"] = "0x" + outsider.sign(bytes.fromhex(rec["step_hash"][2:])).hex()
    assert "unauthorized-signer" in _codes(forged, node)

    wrong_root = copy.deepcopy(good)
    wrong_root["splits"][0]["anchors"][0]["root"] = "0x" + "00" * 31 + "01"
    assert "anchor-mismatch" in _codes(wrong_root, node)


def test_bundle_for_the_wrong_chain(node: Node, order) -> None:
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    node.steps.record(p.factories[0].address, job, 0, object_event("assembling", t0))
    bad = node.steps.export(job, 0)
    bad["chain_id"] = 1
    assert _codes(bad, node) == {"wrong-chain"}
    for address in (node.deployment.address("JobBoard"), "0x" + "12" * 20):
        elsewhere = {**node.steps.export(job, 0), "traceability": address}
        assert _codes(elsewhere, node) == {"no-contract"}


def test_api_batch_ingest_timeline_export_and_verify(node: Node, order) -> None:
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    client = TestClient(create_app(node))
    types = client.get("/steps/types").json()
    assert types["primaryType"] == "ProductionStep"
    assert types["domain"]["verifyingContract"] == node.deployment.address("Traceability")

    spec = four_splits(p)[1]
    plant = next(f for f in p.factories if f.address == spec.factory)
    writer = StepWriter(Signer(plant.account.key), node.steps.domain, job, 1, plant.address)
    subs = [writer.step(object_event("inspecting", t0 + i)) for i in range(20)]
    body = {
        "steps": [
            {"record": s.record, "signature": s.signature, "payload": s.payload} for s in subs
        ]
    }
    resp = client.post("/steps/batch", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 20
    assert client.post("/steps/batch", json=body).json()["duplicates"] == 20

    bad = copy.deepcopy(body)
    bad["steps"][0]["payload"]["action"] = "ADD"
    resp = client.post("/steps/batch", json={"steps": bad["steps"][:1]})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "payload hash mismatch" in resp.json()["detail"]

    node.steps.anchor(job, 1)
    timeline = client.get(f"/jobs/{job}/splits/1/steps").json()
    assert len(timeline["steps"]) == 20 and all(s["anchored"] for s in timeline["steps"])
    exported = client.get(f"/jobs/{job}/steps/export", params={"split": 1}).json()
    verdict = client.post("/steps/verify", json=exported).json()
    assert verdict["ok"] and verdict["anchored"] == 20
    one = client.get(f"/steps/{timeline['steps'][3]['step_hash']}").json()
    assert one["record"]["seq"] == 3 and "inspecting" in one["payload"]
    assert client.get("/steps/0x" + "00" * 32).status_code == 404


def test_batch_endpoint_validates_and_documents_its_body(node: Node) -> None:
    client = TestClient(create_app(node))
    for body in (b"{not json", b'{"steps": []}', b'{"steps": [{"record": {}}]}'):
        resp = client.post(
            "/steps/batch", content=body, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
    schema = client.get("/openapi.json").json()
    batch = schema["paths"]["/steps/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["properties"]["steps"]["items"]["$ref"] == (
        "#/components/schemas/StepIn"
    )
    assert "StepIn" in schema["components"]["schemas"]


def test_api_anchors_only_with_the_split_factorys_own_key(node: Node, order) -> None:
    """A member who is not the split's factory cannot make the node anchor (with the
    factory's key it holds); the factory anchors with its own key; strangers get no token."""
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    plant = p.factories[0]
    for i in range(3):
        node.steps.record(plant.address, job, 0, object_event("assembling", t0 + i))
    client = TestClient(create_app(node))
    trace = node.steps.anchorer.chain_trace
    before = (trace(job, 0), client.get(f"/jobs/{job}/splits/0/steps").json())

    assert_problem(client.post(f"/jobs/{job}/splits/0/anchor"), 401)
    for other in (p.buyer, p.factories[1]):  # a buyer; a factory of another split
        headers = sign_in(client, node, other.account)
        resp = client.post(f"/jobs/{job}/splits/0/anchor", headers=headers)
        assert_problem(resp, 403)
    assert (trace(job, 0), client.get(f"/jobs/{job}/splits/0/steps").json()) == before
    assert node.steps.journal.anchor_rows() == []

    resp = client.post(f"/jobs/{job}/splits/0/anchor", headers=sign_in(client, node, plant.account))
    assert resp.status_code == 200, resp.text
    assert [a["to_seq"] for a in resp.json()] == [2]
    tx = node.chain.w3.eth.get_transaction(resp.json()[0]["tx_hash"])
    assert tx["from"] == plant.address


def test_api_records_steps_only_as_a_factory_with_its_own_key(node: Node, order) -> None:
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    client = TestClient(create_app(node))
    step = {"payload": object_event("assembling", t0)}
    resp = client.post(
        f"/jobs/{job}/splits/0/steps", json=step, headers=sign_in(client, node, p.buyer.account)
    )
    assert assert_problem(resp, 403)["detail"].startswith("this needs the factory role")
    assert node.steps.journal.steps(job, 0) == []
    headers = sign_in(client, node, p.factories[0].account)
    resp = client.post(f"/jobs/{job}/splits/0/steps", json=step, headers=headers)
    assert resp.status_code == 201, resp.text


def test_node_files_are_private_whatever_the_umask(node: Node, order) -> None:
    """Journal (and its -wal/-shm), blobs, design certificates, run file and deployment
    record: 0600 in 0700 directories, even under a permissive umask."""
    p, job = order
    t0 = node.steps.authority.job_created_at(job)  # no step predates its order
    old = os.umask(0o022)
    try:
        node.steps.record(p.factories[0].address, job, 0, object_event("assembling", t0))
        design = NewDesign.from_bytes(b"solid cube", file_name="cube.stl", title=None)
        node.design_service().register(p.designer, [design])
        write_run_info(node.data_dir, {"pid": os.getpid()})
        deploy_mod.save(node.data_dir, node.deployment)
    finally:
        os.umask(old)
    files = [f for f in node.data_dir.rglob("*") if f.is_file()]
    names = {f.name for f in files}
    assert {"run.json", f"{node.chain.chain_id}.json"} <= names
    assert any(n.endswith(".sqlite-wal") for n in names)
    assert any(n.endswith(".sqlite-shm") for n in names)
    assert any(f.parent.name == "certificates" for f in files)
    assert any("blobs" in f.parts for f in files)
    for path in [node.data_dir, *node.data_dir.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {mode:o}"


def test_backdated_step_of_an_expired_device_key_over_the_api(node: Node, order) -> None:
    """A device key past its expiry dates its step before the expiry: POST /steps/batch
    refuses it (403, nothing journaled); a step it signed in time but that was anchored only
    after the expiry is flagged by bundle verification."""
    p, job = order
    plant = p.factories[0]
    device = Account.create()
    now = int(node.chain.w3.eth.get_block("latest")["timestamp"])
    expiry = now + 600
    node.consortium.authorize_device(plant, device, expiry)
    client = TestClient(create_app(node))
    writer = StepWriter(Signer(device.key), node.steps.domain, job, 0, plant.address)

    def batch(*subs):
        return {
            "steps": [
                {"record": s.record, "signature": s.signature, "payload": s.payload} for s in subs
            ]
        }

    node.steps.ingestor.clock = lambda: now + 30  # received in time
    in_time = writer.step(object_event("assembling", now + 10))
    assert client.post("/steps/batch", json=batch(in_time)).json()["accepted"] == 1
    before = client.get(f"/jobs/{job}/splits/0/steps").json()

    node.steps.ingestor.clock = lambda: expiry + 60  # the key has expired on arrival
    backdated = writer.step(object_event("packing", now + 20))
    resp = client.post("/steps/batch", json=batch(backdated))
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert f"expired at {expiry}" in resp.json()["detail"]
    assert client.get(f"/jobs/{job}/splits/0/steps").json() == before
    assert node.steps.journal.count() == 1

    node.chain.advance_time(700)  # anchored only after the expiry
    node.steps.anchor(job, 0)
    result = verify_bundle(Bundle.load(node.steps.export(job, 0)), node.chain.w3)
    assert [(f.severity, f.code, f.evidence["seq"]) for f in result.findings] == [
        (Severity.MAJOR, "backdated-past-expiry", 0)
    ]
    assert not result.ok  # the audit's verdict on the same bundle
