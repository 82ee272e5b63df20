"""ethers v6 signs what the node serves (steps, an acceptance, a hand-over) and the node
accepts those signatures: the served typed data works with the ecosystem's own library."""

from __future__ import annotations

import time
from typing import Any

from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient
from test_api import sign_in

from api.app import create_app
from kit import four_splits, parties, run_node, split_order
from ledger.node import Node
from ledger.steps import epcis
from ledger.steps.builder import object_event
from ledger.steps.record import Step


def ethers_sign(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run tests/js/sign_typed_data.mjs (ethers v6, from node_modules: `make setup`) with
    the `node` on PATH."""
    return list(run_node("sign_typed_data.mjs", {"requests": requests})["results"])


def body_of(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def key_of(sender: Any) -> str:
    return "0x" + bytes(sender.account.key).hex()


def test_ethers_signs_acceptances_handovers_and_steps(node: Node) -> None:
    client = TestClient(create_app(node))
    p = parties(node)
    f = p.factories
    buyer = sign_in(client, node, p.buyer.account)
    plant = [sign_in(client, node, x.account) for x in f]
    job = split_order(node, p)
    for factory, split in ((0, 0), (1, 1), (0, 2)):
        body_of(client.post(f"/jobs/{job}/splits/{split}/accept", headers=plant[factory]))

    # an acceptance: factory 2 signs with ethers, the buyer relays it
    typed = body_of(client.get(f"/jobs/{job}/splits/3/acceptance"))
    assert "EIP712Domain" in typed["types"] and "EIP712Domain" not in typed["ethers"]["types"]
    [signed] = ethers_sign([{"key": key_of(f[2]), "typed": typed}])
    assert "ambiguous primary types" in signed["v4_types_error"]  # why both shapes exist
    assert signed["signer"] == f[2].address
    v4 = {k: typed[k] for k in ("types", "primaryType", "domain", "message")}
    wallet = f[2].account.sign_message(encode_typed_data(full_message=v4))
    assert signed["signature"] == wallet.signature.to_0x_hex()  # the wallet shape: same bytes
    relay = {"nonce": typed["message"]["nonce"], "deadline": typed["message"]["deadline"]}
    relay["signature"] = signed["signature"]
    accepted = client.post(f"/jobs/{job}/splits/3/accept-signed", json=relay, headers=buyer)
    assert body_of(accepted)["status"] == "in_production"

    # a hand-over: factory 0 (delivered) signs with ethers, factory 2 submits it (its own
    # side signed by the node)
    body_of(client.post(f"/jobs/{job}/splits/0/deliver", headers=plant[0]))
    lots = {"from_split": 0, "to_split": 3, "lot": "LOT-ETHERS-1", "quantity": 100}
    lots["deadline"] = int(time.time()) + 3600
    typed = body_of(client.post(f"/jobs/{job}/handover/typed-data", json=lots))
    [signed] = ethers_sign([{"key": key_of(f[0]), "typed": typed}])
    handed = {**lots, "from_signature": signed["signature"]}
    after = body_of(client.post(f"/jobs/{job}/handover", json=handed, headers=plant[2]))
    assert after["splits"][0]["custody"] == [f[2].address]
    assert after["splits"][3]["received_from"] == [0]

    # steps: the domain and types from GET /steps/types, the message built by the client
    types = body_of(client.get("/steps/types"))
    assert types["ethers"]["domain"] == types["domain"]
    spec = four_splits(p)[1]
    t0 = node.steps.authority.job_created_at(job)
    line = body_of(client.get(f"/jobs/{job}/splits/1/steps"))
    seq, head = line["next_seq"], bytes.fromhex(line["head"][2:])
    steps, payloads = [], []
    for i, word in enumerate(("inspecting", "https://example.com/steps/painting", "packing")):
        payload = object_event(word, t0 + i)
        step = Step(
            job_id=job,
            split_id=1,
            seq=seq + i,
            prev_hash=head,
            biz_step=word,
            payload_hash=epcis.payload_hash(epcis.canonical(payload)),
            evidence_hash=bytes(32),
            time=t0 + i,
            member=spec.factory,
        )
        head = step.digest(node.steps.domain)
        steps.append(step)
        payloads.append(payload)
    plant1 = next(x for x in f if x.address == spec.factory)
    requests = [{"key": key_of(plant1), "typed": types, "message": s.message()} for s in steps]
    results = ethers_sign(requests)
    domain = node.steps.domain
    assert [r["digest"] for r in results] == ["0x" + s.digest(domain).hex() for s in steps]
    body = {
        "steps": [
            {"record": s.message(), "signature": r["signature"], "payload": payload}
            for s, r, payload in zip(steps, results, payloads, strict=True)
        ]
    }
    ingested = body_of(client.post("/steps/batch", json=body))
    assert ingested["accepted"] == 3
    assert ingested["step_hashes"] == [r["digest"] for r in results]


def test_a_signature_by_another_key_is_refused(node: Node) -> None:
    """ethers signs with a key that is not the split's factory: the node refuses the step
    and stores nothing."""
    client = TestClient(create_app(node))
    p = parties(node)
    job = split_order(node, p)
    for i, spec in enumerate(four_splits(p)):
        node.jobs.accept(node.sender(spec.factory), job, i)
    types = body_of(client.get("/steps/types"))
    t0 = node.steps.authority.job_created_at(job)
    payload = object_event("inspecting", t0)
    step = Step(
        job, 1, 0, bytes(32), "inspecting",
        epcis.payload_hash(epcis.canonical(payload)), bytes(32), t0, four_splits(p)[1].factory,
    )  # fmt: skip
    outsider = p.factories[0]  # a member, but not split 1's factory
    [signed] = ethers_sign([{"key": key_of(outsider), "typed": types, "message": step.message()}])
    body = {
        "steps": [{"record": step.message(), "signature": signed["signature"], "payload": payload}]
    }
    resp = client.post("/steps/batch", json=body)
    assert resp.status_code == 403, resp.text
    assert "is neither" in resp.json()["detail"]
    assert client.get(f"/jobs/{job}/splits/1/steps").json()["steps"] == []
