"""kill -9 of a node during steady ingest: no acknowledged step lost, anchors contiguous."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.nodeproc import NodeProcess, prepare
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

SPLITS, BATCHES, PER_BATCH = 2, 120, 25


def batches(stage) -> list[dict]:
    """Alternating batches of the two splits, pre-signed like a shop-floor device does."""
    writers = [
        StepWriter(
            Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
        )
        for s in range(SPLITS)
    ]
    # dated at the order's creation: not before it, and not after the anchors that follow
    t0 = stage.created_at
    out = []
    for b in range(BATCHES):
        w = writers[b % SPLITS]
        subs = [w.step(object_event("assembling", t0)) for _ in range(PER_BATCH)]
        out.append(
            {
                "steps": [
                    {"record": s.record, "signature": s.signature, "payload": s.payload}
                    for s in subs
                ]
            }
        )
    return out


def send_until_failure(client: httpx.Client, url: str, todo: list[dict], acked: list[str]) -> int:
    """POST batches in order; return how many were acknowledged before the node vanished."""
    for n, body in enumerate(todo):
        try:
            resp = client.post(url + "/steps/batch", json=body)
        except httpx.HTTPError:
            return n
        assert resp.status_code == 200, resp.text
        acked.extend(resp.json()["step_hashes"])
    return len(todo)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_step_and_anchors_stay_contiguous(tmp_path: Path) -> None:
    with Devnet(state_dir=tmp_path / "chain", port=free_port()) as chain:
        data = tmp_path / "node"
        stage = prepare(data, chain.url, splits=SPLITS)
        todo = batches(stage)
        node = NodeProcess(data, chain.url, "--anchor-steps", "40", "--anchor-age", "0.3")
        node.start()
        acked: list[str] = []
        try:
            with httpx.Client(timeout=180) as client:  # verifying 3,000 steps on a loaded machine

                def kill_mid_load() -> None:
                    while len(acked) < 10 * PER_BATCH:  # steady ingest and anchoring under way
                        time.sleep(0.005)
                    time.sleep(0.05)
                    node.kill()

                killer = threading.Thread(target=kill_mid_load)
                killer.start()
                done = send_until_failure(client, node.url, todo, acked)
                killer.join()
                assert done < len(todo), "the node was killed only after the whole load"
                acked_before_kill = len(acked)
                node.start()  # same data directory, same chain
                # the batch in flight at the kill may or may not have been stored: resend it
                done += send_until_failure(client, node.url, todo[done:], acked)
                assert done == len(todo)

                total = BATCHES * PER_BATCH // SPLITS
                deadline = time.monotonic() + 90
                timelines: list[dict] = []
                errors: list[str] = []
                while time.monotonic() < deadline:
                    answers = [
                        client.get(f"{node.url}/jobs/{stage.job_id}/splits/{s}/steps")
                        for s in range(SPLITS)
                    ]
                    errors = [a.text for a in answers if a.status_code != 200]
                    if errors:
                        break
                    timelines = [a.json() for a in answers]
                    if all(t["anchored_through"] == total - 1 for t in timelines):
                        break
                    time.sleep(0.5)
                exported = client.get(f"{node.url}/jobs/{stage.job_id}/steps/export").json()
                verdict = client.post(node.url + "/steps/verify", json=exported).json()
        finally:
            node.stop()

    assert acked_before_kill > 0
    log = (data / "node-process.log").read_text(errors="replace")[-3000:]
    assert not errors, f"the timeline failed: {errors[:1]}\n{log}"
    stored = {s["step_hash"] for t in timelines for s in t["steps"]}
    assert set(acked) <= stored, "an acknowledged step was lost"
    assert len(stored) == BATCHES * PER_BATCH
    for t in timelines:
        assert t["anchored_through"] == total - 1
        assert [s["record"]["seq"] for s in t["steps"]] == list(range(total))
    for split in exported["splits"]:
        ranges = [(a["from_seq"], a["to_seq"]) for a in split["anchors"]]
        assert ranges[0][0] == 0 and ranges[-1][1] == total - 1
        for (_, prev_to), (start, _) in itertools.pairwise(ranges):
            assert start == prev_to + 1, f"gap or overlap between anchors: {ranges}"
        assert [a["index"] for a in split["anchors"]] == list(range(len(ranges)))
    assert verdict["ok"] and verdict["anchored"] == BATCHES * PER_BATCH, verdict
