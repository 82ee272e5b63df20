"""Batches checked by ingest worker processes answer exactly as when the API process
checks them, and a worker's death loses no step and fails no batch."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem

from api.app import create_app
from kit import four_splits, in_production, parties
from ledger.core.settings import default_ingest_workers
from ledger.node import Node
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.ingest import Submission, VerifyPool
from ledger.steps.signatures import SECP256K1_N, Signer

SPLIT = 1


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifyPool]:
    """One worker for the module: a process start is the costly part."""
    pool = VerifyPool(1)
    assert pool.wait_ready(120)
    yield pool
    pool.close()


@pytest.fixture
def split(node: Node, pool: VerifyPool) -> Iterator[tuple[TestClient, StepWriter, int]]:
    p = parties(node)
    job = in_production(node, p)
    node.chain.advance_time(60)
    plant = next(f for f in p.factories if f.address == four_splits(p)[SPLIT].factory)
    writer = StepWriter(Signer(plant.account.key), node.steps.domain, job, SPLIT, plant.address)
    node.steps.ingestor.pool = pool
    yield TestClient(create_app(node)), writer, node.steps.authority.job_created_at(job)
    node.steps.ingestor.pool = None  # the module's, not the node's to close


def body(subs: list[Submission], **change: Any) -> bytes:
    steps = [{"record": s.record, "signature": s.signature, "payload": s.payload} for s in subs]
    for i, fields in change.items():
        steps[int(i.removeprefix("s"))].update(fields)
    return json.dumps({"steps": steps}).encode()


def post(client: TestClient, raw: bytes) -> httpx.Response:
    return client.post("/steps/batch", content=raw, headers={"content-type": "application/json"})


def test_workers_answer_as_the_api_process(
    node: Node, pool: VerifyPool, split: tuple[TestClient, StepWriter, int]
) -> None:
    client, writer, t0 = split
    ingestor = node.steps.ingestor
    first = [writer.step(object_event("assembling", t0 + i)) for i in range(5)]
    before = pool.batches
    resp = post(client, body(first))
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 5 and pool.batches == before + 1  # a worker checked it
    stored = node.steps.journal.steps(writer.job_id, SPLIT)
    again = [ingestor.verify(s) for s in first]  # the API process's own verdict on each
    assert [(s.step, s.step_hash, s.signer, s.signature) for s in stored] == [
        (n.step, n.step_hash, n.signer, n.signature) for n in again
    ]
    assert [node.steps.journal.payload(s.step.payload_hash) for s in stored] == [
        n.payload for n in again
    ]
    ingestor.pool = None
    resent = post(client, body(first)).json()
    ingestor.pool = pool
    assert resent["duplicates"] == 5 and resent["step_hashes"] == resp.json()["step_hashes"]

    nxt = [writer.step(object_event("assembling", t0 + 10 + i)) for i in range(2)]
    r, s, v = nxt[1].signature[2:66], nxt[1].signature[66:130], nxt[1].signature[130:]
    stranger = StepWriter(
        Signer(Account.create().key), writer.domain, writer.job_id, SPLIT, writer.member, 5
    )
    gap = StepWriter(writer.signer, writer.domain, writer.job_id, SPLIT, writer.member, 7)
    refused = {  # name: (body, status, what the problem says)
        "bad signature": (
            body(nxt, s1={"signature": f"0x{'00' * 32}{s}{v}"}),
            422,
            "step 1: bad signature",
        ),
        "high-s signature": (
            body(nxt, s1={"signature": f"0x{r}{SECP256K1_N - int(s, 16):064x}{v}"}),
            422,
            "step 1: signature is not canonical",
        ),
        "sequence gap": (
            body([gap.step(object_event("assembling", t0 + 20))]),
            422,
            "step 0: sequence gap",
        ),
        "unauthorised signer": (
            body([stranger.step(object_event("assembling", t0 + 20))]),
            403,
            "neither",
        ),
        "payload changed": (
            body(nxt, s0={"payload": {**nxt[0].payload, "action": "ADD"}}),
            422,
            "payload hash mismatch",
        ),
        "future": (body([writer.step(object_event("assembling", t0 + 10**7))]), 422, "future"),
        "no batch": (b'{"steps": [{"record": {}}]}', 422, ""),
    }
    head = node.steps.journal.head(writer.job_id, SPLIT)
    for name, (raw, status, text) in refused.items():
        by_worker = post(client, raw)
        ingestor.pool = None
        in_process = post(client, raw)
        ingestor.pool = pool
        problem = assert_problem(by_worker, status)
        assert text in problem["detail"], (name, problem)
        assert (by_worker.status_code, by_worker.json()) == (
            in_process.status_code,
            in_process.json(),
        ), name
        assert node.steps.journal.head(writer.job_id, SPLIT) == head, name
    assert node.steps.journal.count() == 5


def test_a_dead_worker_fails_no_batch_and_loses_no_step(
    node: Node, pool: VerifyPool, split: tuple[TestClient, StepWriter, int]
) -> None:
    client, writer, t0 = split
    [victim] = pool.pids()
    os.kill(victim, signal.SIGKILL)
    acked = 0
    for n in range(3):
        subs = [writer.step(object_event("assembling", t0 + 10 * n + i)) for i in range(4)]
        resp = post(client, body(subs))
        assert resp.status_code == 200, resp.text
        acked += resp.json()["accepted"]
        assert node.steps.journal.count() == acked  # acknowledged means stored
    assert acked == 12 and pool.restarts == 1
    assert pool.wait_ready(120) and victim not in pool.pids()
    before = pool.batches
    more = [writer.step(object_event("assembling", t0 + 100))]
    assert post(client, body(more)).json()["accepted"] == 1
    assert pool.batches == before + 1  # the new worker checks batches again


@pytest.mark.parametrize(("cores", "workers"), [({0}, 0), ({0, 1}, 1), ({0, 1, 2, 3}, 3)])
def test_by_default_the_api_process_keeps_a_core_of_its_own(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cores)
    assert default_ingest_workers() == workers
