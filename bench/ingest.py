"""Durable ingest rate of pre-signed steps through the real HTTP server.

A node process (`cofab up --backend rpc`) runs against an anvil started here; steps are
signed beforehand (as shop-floor devices would), sent as JSON batches over loopback by
two client threads, and counted once the node has acknowledged them, which it does only
after the SQLite transaction holding them committed with fsync.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
from nodeproc import NodeProcess, prepare  # noqa: E402

from ledger.eth.devnet import Devnet  # noqa: E402
from ledger.eth.toolchain import free_port  # noqa: E402
from ledger.steps.builder import StepWriter, object_event  # noqa: E402
from ledger.steps.signatures import Signer  # noqa: E402

TARGET = 5_000


def _bodies(stage, splits: int, per_split: int, batch: int) -> list[bytes]:
    t0 = int(time.time()) - 86_400
    bodies = []
    for s in range(splits):
        w = StepWriter(
            Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
        )
        subs = [
            w.step(
                object_event(
                    "assembling",
                    t0 + i,
                    epcs=[f"urn:epc:id:sgtin:0614141.107346.{s}{i}"],
                    read_point="urn:epc:id:sgln:0614141.00777.0",
                    sensors=[{"type": "Temperature", "value": 21.5, "uom": "CEL"}],
                )
            )
            for i in range(per_split)
        ]
        for i in range(0, per_split, batch):
            part = subs[i : i + batch]
            bodies.append(
                json.dumps(
                    {
                        "steps": [
                            {"record": x.record, "signature": x.signature, "payload": x.payload}
                            for x in part
                        ]
                    }
                ).encode()
            )
    return bodies


def bench_ingest(quick: bool = False) -> None:
    splits, per_split, batch = (2, 2_500, 250) if quick else (4, 5_000, 500)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Devnet(state_dir=Path(tmp) / "chain", port=free_port()) as chain,
    ):
        stage = prepare(Path(tmp) / "node", chain.url, splits=splits)
        # split s's batches must arrive in order: one sender thread per split pair
        per_thread: list[list[bytes]] = [[], []]
        bodies = _bodies(stage, splits, per_split, batch)
        batches_per_split = per_split // batch
        for k, body in enumerate(bodies):
            per_thread[(k // batches_per_split) % 2].append(body)
        node = NodeProcess(Path(tmp) / "node", chain.url)
        node.start()
        errors: list[str] = []
        acked = [0, 0]

        def send(idx: int) -> None:
            with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as c:
                for body in per_thread[idx]:
                    r = c.post(node.url + "/steps/batch", content=body)
                    if r.status_code != 200:
                        errors.append(r.text)
                        return
                    acked[idx] += r.json()["accepted"]

        try:
            start = time.perf_counter()
            threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            node.stop()
    total = sum(acked)
    rate = total / elapsed
    print("HTTP ingest (pre-signed steps, JSON batches, fsync'd before the answer)")
    if errors:
        print("  refused:", errors[0][:300])
    print(
        f"  {total:,} steps in {elapsed:.2f} s = {rate:,.0f} steps/s "
        f"(batches of {batch}, {splits} splits, node and clients on this 2-core machine)   "
        f"target >= {TARGET:,}/s  {'met' if rate >= TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    bench_ingest(quick="--quick" in sys.argv)
