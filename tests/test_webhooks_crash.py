"""kill -9 of a node while a webhook delivery is in flight: after the restart it is
delivered again under the same delivery id, and the receiver processes each id once."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_webhooks import Receiver, sign_in_at

from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.nodeproc import NodeProcess, prepare
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

PER_BATCH = 5  # = --anchor-steps: one anchor, one step.anchored notification per batch
SETTINGS = {
    "COFAB_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver listens on 127.0.0.1
    "COFAB_WEBHOOK_RETRY_BASE": "0.2",
    "COFAB_WEBHOOK_MAX_ATTEMPTS": "50",
}


def wait_for(what: str, check: Any, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_delivery_in_flight_at_kill_9_is_delivered_after_restart_once_per_id(
    tmp_path: Path,
) -> None:
    receiver = Receiver(hold=threading.Event())  # the first request hangs: the node dies
    with Devnet(state_dir=tmp_path / "chain", port=free_port()) as chain:
        data = tmp_path / "node"
        stage = prepare(data, chain.url, splits=1)
        writer = StepWriter(
            Signer(stage.operator.key), stage.domain, stage.job_id, 0, stage.operator.address
        )

        def batch() -> dict[str, Any]:
            steps = [writer.step(object_event("assembling", stage.created_at)) for _ in range(5)]
            return {
                "steps": [
                    {"record": s.record, "signature": s.signature, "payload": s.payload}
                    for s in steps
                ]
            }

        node = NodeProcess(
            data, chain.url, "--anchor-steps", str(PER_BATCH), "--anchor-age", "0.3", env=SETTINGS
        )
        node.start()
        try:
            with httpx.Client(base_url=node.url, timeout=60) as client:
                headers = sign_in_at(client, stage.operator)
                hook = client.post(
                    "/webhooks",
                    json={"url": receiver.url, "events": ["step.anchored"]},
                    headers=headers,
                ).json()
                receiver.secret = hook["secret"]
                assert client.post("/steps/batch", json=batch()).status_code == 200
                wait_for("the first delivery to reach the receiver", receiver.seen.is_set)
                node.kill()  # mid-delivery: the receiver has not answered
                receiver.hold.set()  # it answers into a closed connection
                wait_for("the held request to finish", lambda: receiver.requests)
                [held] = [r["headers"]["Cofab-Delivery"] for r in receiver.requests]

                node.start()  # same data directory, same chain
                headers = sign_in_at(client, stage.operator)
                assert client.post("/steps/batch", json=batch()).status_code == 200

                def settled() -> Any:
                    [row] = client.get("/webhooks", headers=headers).json()
                    return row["deliveries"]["delivered"] == 2 and row

                row = wait_for("both deliveries", settled)

                # a clean stop, even with an event stream open, stops the notifications too
                streaming = threading.Event()

                def hold_stream() -> None:
                    with (
                        contextlib.suppress(httpx.HTTPError),
                        client.stream("GET", "/events/stream", headers=headers) as r,
                    ):
                        streaming.set()
                        for _ in r.iter_lines():
                            pass

                threading.Thread(target=hold_stream, daemon=True).start()
                assert streaming.wait(30)
                node.stop()
                assert node.proc is not None and node.proc.returncode == 0, "not a clean stop"
        finally:
            node.stop()
            receiver.close()

    assert row["deliveries"] == {"pending": 0, "delivered": 2, "failed": 0}
    ids = [r["headers"]["Cofab-Delivery"] for r in receiver.requests]
    assert ids.count(held) >= 2, "the delivery in flight at the kill was sent again"
    assert len(receiver.processed) == 2 and held in receiver.processed
    assert receiver.refused == []
    anchored = sorted(b["data"]["index"] for b in receiver.processed.values())
    assert anchored == [0, 1]
    assert {b["type"] for b in receiver.processed.values()} == {"step.anchored"}
    assert {b["recipient"] for b in receiver.processed.values()} == {stage.operator.address}
