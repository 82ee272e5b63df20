"""Faults below the node get an answer that names them: a full journal is 507 and stores
nothing; a split the node cannot reconcile with the chain makes /ready 503 and shows in
`cofab status`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from test_uploads import Server

from api.app import create_app
from kit import FAST_KDF, PASSPHRASE, cofab, new_account, parties, split_order
from ledger.core.keys import Keyring
from ledger.eth.chain import Backend, connect
from ledger.eth.compiler import artifact
from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.node import Node, NodeOptions, write_run_info
from ledger.orders.jobs import SplitSpec
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

UNLIMITED_PAGES = 1_073_741_823


def production(node: Node) -> tuple[int, StepWriter, int]:
    """An order with one accepted split whose factory's key the node holds; a writer of
    that split's steps and the time to date them at."""
    p = parties(node, factories=1)
    factory = p.factories[0]
    job = split_order(node, p, [SplitSpec(factory.address, "machining", 100, 930_000)])
    node.jobs.accept(factory, job, 0)
    created = node.steps.authority.job_created_at(job)
    if node.chain.backend is Backend.EMBEDDED:  # anvil's clock is the wall clock
        node.chain.advance_time(60)  # steps dated at the order's creation precede anchors
    writer = StepWriter(Signer(factory.account.key), node.steps.domain, job, 0, factory.address)
    return job, writer, created


def batch(writer: StepWriter, t0: int, n: int) -> dict[str, Any]:
    subs = [writer.step(object_event("assembling", t0)) for _ in range(n)]
    return {
        "steps": [
            {"record": s.record, "signature": s.signature, "payload": s.payload} for s in subs
        ]
    }


def test_a_full_journal_answers_507_and_stores_nothing(node: Node) -> None:
    _, writer, t0 = production(node)
    body = batch(writer, t0, 300)
    journal = node.steps.journal
    with TestClient(create_app(node)) as client:
        with journal.transaction() as db:  # SQLite's own "disk full" (SQLITE_FULL)
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
        before = journal.count()
        answer = client.post("/steps/batch", json=body)
        assert answer.status_code == 507, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "Insufficient storage"
        assert "disk is full" in answer.json()["detail"]
        assert journal.count() == before
        assert client.get("/health").status_code == 200

        with journal.transaction() as db:  # space again: the device's retry is stored
            db.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
        again = client.post("/steps/batch", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 300 and journal.count() == before + 300


@pytest.fixture
def rpc_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Node, Devnet]]:
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    operator = new_account()
    Keyring(tmp_path / "node" / "keystore").import_private_key(
        "operator", operator.key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF
    )
    with Devnet(state_dir=tmp_path / "chain", port=free_port()) as chain:
        art = artifact("DemoStable")  # a consortium chain brings its own ERC-20
        token = Sender(connect(Backend.RPC, rpc_url=chain.url), operator).deploy(
            art.abi, art.bytecode
        )["contractAddress"]
        opts = NodeOptions(
            backend=Backend.RPC,
            rpc_url=chain.url,
            data_dir=tmp_path / "node",
            kdf_iterations=FAST_KDF,
            payment_token=token,
            deploy=True,
        )
        node = Node.start(opts)
        try:
            yield node, chain
        finally:
            node.close()


def test_a_split_that_cannot_be_reconciled_fails_ready_and_shows_in_status(
    rpc_node: tuple[Node, Devnet],
) -> None:
    node, chain = rpc_node
    job, writer, t0 = production(node)
    node.steps.ingest([writer.step(object_event("assembling", t0)) for _ in range(5)])
    foreign = "0x" + "ab" * 32  # the factory anchors, from elsewhere, steps this node never saw
    factory = node.sender(node.steps.authority.split_factory(job, 0))
    trace = node.steps.traceability
    factory.transact(trace.functions.anchor(job, 0, 0, 2, b"\0" * 32, b"\0" * 32, foreign, foreign))
    node.steps.start_anchoring(max_steps=5, max_age=0)
    deadline = time.monotonic() + 60
    while not node.stalled():
        assert time.monotonic() < deadline, "the stalled split was never reported"
        time.sleep(0.2)

    with Server(create_app(node)) as server:
        ready = httpx.get(server.url + "/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["stalled"] == node.stalled()
        assert "another party anchored different steps" in ready.json()["detail"]
        write_run_info(
            node.data_dir,
            {
                "pid": os.getpid(),
                "backend": "rpc",
                "rpc_url": chain.url,
                "api_url": server.url,
                "chain_id": node.chain.chain_id,
            },
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFAB_")}
        env.update(COFAB_DATA_DIR=str(node.data_dir), COLUMNS="300")
        shown = cofab("status", env=env)
        as_json = cofab("status", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"stalled      job {job} split 0" in shown.stdout
    assert "another party anchored different steps" in " ".join(shown.stdout.split())
    assert json.loads(as_json.stdout)["stalled"] == node.stalled()
