"""The chain goes away under a running node (anvil stopped by its pid) and comes back on
the same state: a batch acknowledged meanwhile (its signer's permissions were still
cached) is journaled durably, survives a kill -9 of the node, and is anchored once the
chain is back; a request that needs the chain gets 503 saying the chain is unreachable."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit import FAST_KDF, PASSPHRASE
from ledger.eth.chain import Backend
from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.node import Node, NodeOptions
from ledger.nodeproc import NodeProcess, Stage, prepare
from ledger.steps.authority import CACHE_SECONDS
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.journal import Journal
from ledger.steps.signatures import Signer

SPLIT = 0
ATTEMPTS = 6  # rounds of "stop the chain right after a batch" until one lands in the cache


class Steps:
    """Pre-signed steps of one split, handed out in batches; a refused batch is sent
    again later, as a device retries after a 503."""

    def __init__(self, stage: Stage) -> None:
        key, address = stage.operator.key, stage.operator.address
        self.writer = StepWriter(Signer(key), stage.domain, stage.job_id, SPLIT, address)
        self.t0 = stage.created_at
        self.retry: dict[str, Any] | None = None

    def batch(self, n: int = 3) -> dict[str, Any]:
        if self.retry is not None:
            body, self.retry = self.retry, None
            return body
        subs = [self.writer.step(object_event("assembling", self.t0)) for _ in range(n)]
        return {
            "steps": [
                {"record": s.record, "signature": s.signature, "payload": s.payload} for s in subs
            ]
        }


class Scene:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.state_dir = tmp_path / "chain"
        self.chain = Devnet(state_dir=self.state_dir, port=self.port)
        self.chain.start()
        self.data = tmp_path / "node"
        self.stage = prepare(self.data, self.chain.url)
        self.steps = Steps(self.stage)
        self.node = NodeProcess(self.data, self.chain.url, "--anchor-age", "0.3")
        self.client = httpx.Client(timeout=60)
        self.acked: list[str] = []

    def chain_back(self) -> None:
        """anvil again, on the state it wrote when it was stopped, at the same address."""
        self.chain = Devnet(state_dir=self.state_dir, port=self.port)
        self.chain.start()

    def post(self, body: dict[str, Any]) -> httpx.Response:
        answer = self.client.post(self.node.url + "/steps/batch", json=body)
        if answer.status_code == 200:
            self.acked += answer.json()["step_hashes"]
        return answer

    def accepted_while_the_chain_is_down(self) -> list[str]:
        """Stop the chain right after a batch has refreshed the node's permission cache,
        then send one: acknowledged only if the cache still holds. Rounds that miss
        (a slow stop) are retried with the chain brought back."""
        for _ in range(ATTEMPTS):
            time.sleep(CACHE_SECONDS)  # the next batch refreshes the cache
            assert self.post(self.steps.batch()).status_code == 200
            self.chain.stop()  # SIGTERM to anvil's pid: it writes its state and exits
            body = self.steps.batch()
            answer = self.post(body)
            if answer.status_code == 200:
                return list(answer.json()["step_hashes"])
            chain_unavailable(answer)
            self.steps.retry = body
            self.chain_back()
        pytest.fail(f"no batch was acknowledged while the chain was down in {ATTEMPTS} rounds")

    def timeline(self) -> dict[str, Any]:
        url = f"{self.node.url}/jobs/{self.stage.job_id}/splits/{SPLIT}/steps"
        answer = self.client.get(url)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def wait_anchored(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            timeline = self.timeline()
            if timeline["anchored_through"] == len(self.acked) - 1:
                return timeline
            assert time.monotonic() < deadline, f"not anchored: {timeline['anchored_through']}"
            time.sleep(0.5)

    def close(self) -> None:
        self.client.close()
        self.node.stop()
        self.chain.stop()


def chain_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["title"] == "Chain unavailable", problem
    assert "cannot reach its chain" in problem["detail"], problem


@pytest.mark.slow
def test_steps_acknowledged_while_the_chain_is_down_are_durable_and_anchored_later(
    tmp_path: Path,
) -> None:
    scene = Scene(tmp_path)
    try:
        scene.node.start()
        assert scene.post(scene.steps.batch()).status_code == 200
        scene.wait_anchored()

        # the chain goes away under the running node, then comes back: anchored after
        during = scene.accepted_while_the_chain_is_down()
        time.sleep(CACHE_SECONDS + 0.5)  # no cached permission is left: refused, saying why
        body = scene.steps.batch()
        chain_unavailable(scene.post(body))
        timeline_url = f"{scene.node.url}/jobs/{scene.stage.job_id}/splits/{SPLIT}/steps"
        chain_unavailable(scene.client.get(timeline_url))
        ready = scene.client.get(scene.node.url + "/ready")
        assert ready.status_code == 503 and "cannot reach its chain" in ready.json()["detail"]
        scene.chain_back()
        assert scene.post(body).status_code == 200  # the device's retry
        timeline = scene.wait_anchored()
        anchored = {s["step_hash"] for s in timeline["steps"] if s["anchored"]}
        assert set(during) <= anchored

        # again, and this time the node is killed (-9) before the chain is back
        during = scene.accepted_while_the_chain_is_down()
        scene.node.kill()
        scene.chain_back()
        scene.node.start()  # same data directory, same chain
        timeline = scene.wait_anchored()
        stored = [s["step_hash"] for s in timeline["steps"]]
        assert stored == scene.acked, "an acknowledged step was lost or reordered"
        assert all(s["anchored"] for s in timeline["steps"])
        assert set(during) <= set(stored)

        exported = scene.client.get(f"{scene.node.url}/jobs/{scene.stage.job_id}/steps/export")
        verdict = scene.client.post(scene.node.url + "/steps/verify", json=exported.json())
        assert verdict.json()["ok"] and verdict.json()["anchored"] == len(scene.acked), verdict
    finally:
        scene.close()
    log = " ".join((scene.data / "node-process.log").read_text(errors="replace").split())
    assert "anchoring waits for the chain: the node cannot reach its chain" in log
    assert "anchoring resumed" in log
    assert "anchoring round failed" not in log  # said once, not a traceback a second


def test_a_devnet_restarted_again_and_again_keeps_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anvil adds a new genesis block to its state file at every start, and which one it
    serves after the next start varies: the journal must not take that for a new chain
    (it would be moved aside, and the steps in it no longer served)."""
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    opts = NodeOptions(
        backend=Backend.DEVNET,
        data_dir=tmp_path / "data",
        devnet_port=free_port(),
        kdf_iterations=FAST_KDF,
    )
    identities, geneses = set(), set()
    for start in range(5):
        node = Node.start(opts)
        try:
            if start == 0:
                node.steps.journal.set_meta("written-by", "the first start")
            assert node.steps.journal.meta("written-by") == "the first start"
            identities.add(node.steps.journal.meta("chain"))
            geneses.add(bytes(node.chain.w3.eth.get_block(0)["hash"]))
        finally:
            node.close()
    journals = tmp_path / "data" / "journal"
    assert not list(journals.glob("*.old-chain-*")), "the journal was moved aside"
    assert len(identities) == 1
    print(f"\n{len(geneses)} different genesis hashes over 5 starts of the same chain")


def test_a_journal_keyed_with_the_genesis_hash_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    old = Journal.for_chain(path, "genesis:0x" + "ab" * 32 + " deployed:7:0x" + "cd" * 32)
    old.set_meta("written-by", "an older version")
    old.close()
    same = Journal.for_chain(path, "deployed:7:0x" + "cd" * 32)
    try:
        assert same.meta("written-by") == "an older version"
        assert same.meta("chain") == "deployed:7:0x" + "cd" * 32
    finally:
        same.close()
    other = Journal.for_chain(path, "deployed:7:0x" + "ef" * 32)  # another chain: set aside
    try:
        assert other.meta("written-by") is None
        assert list(tmp_path.glob("journal.old-chain-*.sqlite"))
    finally:
        other.close()
