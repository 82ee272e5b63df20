"""Bad input at the API edge: every integer is bounded to its Solidity type and refused
with 422 naming the field; an unknown split is a 404 everywhere; a step dated before its
order existed is refused naming `time`, and a failed batch names the failing index.
Each refusal leaves the chain and the journal as they were."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import Headers, assert_problem, sign_in

from api.app import create_app
from kit import Parties, new_account, parties, split_order
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

BIG = 2**256  # one past uint256
SIG = "0x" + "11" * 65


@dataclass
class World:
    node: Node
    client: TestClient
    p: Parties
    job: int
    council: Headers
    buyer: Headers
    factory: Headers

    def snapshot(self) -> tuple[Any, ...]:
        """What a refused request must leave untouched: blocks, the order, the council's
        proposals, the journal."""
        n = self.node
        return (
            n.chain.w3.eth.block_number,
            n.jobs.view(self.job).model_dump(mode="json"),
            [p.model_dump(mode="json") for p in n.consortium.proposals()],
            n.steps.journal.count(),
        )


@pytest.fixture
def world(node: Node) -> Iterator[World]:
    p = parties(node, factories=2)
    f = p.factories
    specs = [
        SplitSpec(f[0].address, "machining", 100, 500_000),
        SplitSpec(f[1].address, "assembly", 100, 430_000, (0,)),
    ]
    job = split_order(node, p, specs)
    node.jobs.accept(f[0], job, 0)
    node.chain.advance_time(60)  # steps dated at the order's creation precede anchors
    with TestClient(create_app(node)) as client:
        yield World(
            node,
            client,
            p,
            job,
            sign_in(client, node, node.sender().account),
            sign_in(client, node, p.buyer.account),
            sign_in(client, node, f[0].account),
        )


def _fields(body: dict[str, Any]) -> list[str | None]:
    assert body["errors"], body
    return [e["field"] for e in body["errors"]]


# (method, path, query, json body, who, field named) — `{job}` is the fixture's order
OUT_OF_RANGE = [
    ("get", "/proposals/-87057", None, None, None, "proposal_id"),
    ("post", f"/proposals/{BIG}/approve", None, None, "council", "proposal_id"),
    ("post", "/proposals/-1/cancel", None, None, "council", "proposal_id"),
    ("post", "/devices", None, {"expires_at": 2**48, "signature": SIG}, "factory", "expires_at"),
    ("get", "/disputes/-1", None, None, None, "dispute_id"),
    ("post", f"/disputes/{BIG}/lapse", None, None, "factory", "dispute_id"),
    (
        "post",
        "/disputes/-3/votes",
        None,
        {"payout_ppm": 10, "fault": "none"},
        "council",
        "dispute_id",
    ),
    ("get", f"/jobs/{{job}}/splits/{BIG}/steps", None, None, None, "split_id"),
    ("post", "/jobs/{job}/splits/-1/accept", None, None, "factory", "split_id"),
    ("get", f"/jobs/{BIG}", None, None, None, "job_id"),
    (
        "post",
        "/jobs/{job}/splits/1/accept-signed",
        None,
        {"nonce": 10**80, "deadline": 1, "signature": SIG},
        "buyer",
        "nonce",
    ),
    (
        "post",
        "/jobs/{job}/splits/1/accept-signed",
        None,
        {"nonce": 1, "deadline": 10**80 * 10**10, "signature": SIG},
        "buyer",
        "deadline",
    ),
    (
        "post",
        "/jobs/{job}/splits/1/accept-signed",
        None,
        {"nonce": 1, "deadline": 1e80, "signature": SIG},
        "buyer",
        "deadline",
    ),
    (
        "post",
        "/jobs/{job}/handover",
        None,
        {"from_split": 0, "to_split": 1, "lot": "L1", "quantity": 1, "deadline": BIG},
        "factory",
        "deadline",
    ),
    (
        "post",
        "/jobs/{job}/handover",
        None,
        {"from_split": 0, "to_split": 1, "lot": "L1", "quantity": 2**64, "deadline": 1},
        "factory",
        "quantity",
    ),
    ("get", "/jobs/{job}/splits/1/acceptance", {"deadline": str(10**100)}, None, None, "deadline"),
    ("get", "/members/0x" + "12" * 20 + "/at", {"block": str(BIG)}, None, None, "block"),
    (
        "post",
        "/disputes",
        None,
        {"job_id": BIG, "split_id": 0, "reason": "x", "evidence_hash": "0x" + "00" * 32},
        "buyer",
        "job_id",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "who", "field"),
    OUT_OF_RANGE,
    ids=[f"{c[0]} {c[1]} {c[5]}" for c in OUT_OF_RANGE],
)
def test_out_of_range_integers_are_422_naming_the_field(
    world: World,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: dict[str, Any] | None,
    who: str | None,
    field: str,
) -> None:
    if body is not None and path == "/devices":
        body = {**body, "device": new_account().address}
    headers = getattr(world, who) if who else {}
    before = world.snapshot()
    resp = world.client.request(
        method, path.format(job=world.job), params=query, json=body, headers=headers
    )
    problem = assert_problem(resp, 422)
    assert field in _fields(problem), problem
    assert world.snapshot() == before


def test_unknown_split_is_404_on_acceptance_and_steps(world: World) -> None:
    w, job = world, world.job
    before = w.snapshot()
    assert_problem(w.client.get(f"/jobs/{job}/splits/7/acceptance"), 404)
    payload = {"payload": object_event("assembling", w.node.steps.authority.job_created_at(job))}
    resp = w.client.post(f"/jobs/{job}/splits/7/steps", json=payload, headers=w.factory)
    assert_problem(resp, 404)
    plant = w.p.factories[0]
    writer = StepWriter(Signer(plant.account.key), w.node.steps.domain, job, 7, plant.address)
    sub = writer.step(object_event("assembling", w.node.steps.authority.job_created_at(job)))
    step = {"record": sub.record, "signature": sub.signature, "payload": sub.payload}
    assert_problem(w.client.post("/steps", json=step), 404)
    assert_problem(w.client.post("/steps/batch", json={"steps": [step]}), 404)
    assert w.snapshot() == before


def _step_body(writer: StepWriter, when: int) -> dict[str, Any]:
    sub = writer.step(object_event("assembling", when))
    return {"record": sub.record, "signature": sub.signature, "payload": sub.payload}


def test_a_step_dated_before_its_order_is_refused_naming_time(world: World) -> None:
    w, job = world, world.job
    plant = w.p.factories[0]
    writer = StepWriter(Signer(plant.account.key), w.node.steps.domain, job, 0, plant.address)
    before = w.snapshot()
    for when in (0, w.node.steps.authority.job_created_at(job) - 1):  # 1970; a second early
        writer = StepWriter(Signer(plant.account.key), w.node.steps.domain, job, 0, plant.address)
        problem = assert_problem(w.client.post("/steps", json=_step_body(writer, when)), 422)
        assert _fields(problem) == ["time"] and "before job" in problem["detail"]
    assert w.snapshot() == before
    writer = StepWriter(Signer(plant.account.key), w.node.steps.domain, job, 0, plant.address)
    created = w.node.steps.authority.job_created_at(job)
    assert w.client.post("/steps", json=_step_body(writer, created)).status_code == 200


def test_a_failed_batch_names_the_failing_index(world: World) -> None:
    w, job = world, world.job
    plant = w.p.factories[0]
    writer = StepWriter(Signer(plant.account.key), w.node.steps.domain, job, 0, plant.address)
    created = w.node.steps.authority.job_created_at(job)
    steps = [_step_body(writer, created), _step_body(writer, 5), _step_body(writer, created + 2)]
    before = w.snapshot()
    problem = assert_problem(w.client.post("/steps/batch", json={"steps": steps}), 422)
    assert problem["index"] == 1
    assert problem["errors"] == [
        {"field": "time", "message": problem["errors"][0]["message"], "index": 1}
    ]
    assert problem["detail"].startswith("step 1: ")

    steps[2]["record"] = {k: v for k, v in steps[2]["record"].items() if k != "member"}
    problem = assert_problem(
        w.client.post("/steps/batch", json={"steps": steps[:1] + steps[2:]}), 422
    )
    assert problem["index"] == 1 and _fields(problem) == ["member"]
    assert w.snapshot() == before


def test_every_domain_422_carries_errors(world: World) -> None:
    """A rule checked below the edge names its field too (or, for a rule over several
    fields, carries `errors` with a null field)."""
    before = world.snapshot()
    resp = world.client.post("/proposals", json={"kind": "set_quorum"}, headers=world.council)
    assert _fields(assert_problem(resp, 422)) == ["quorum"]
    resp = world.client.post("/proposals", json={"kind": "suspend"}, headers=world.council)
    assert _fields(assert_problem(resp, 422)) == ["target"]
    assert world.snapshot() == before
