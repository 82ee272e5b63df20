"""Durable ingest rate of pre-signed steps through the real HTTP server.

A node process (`cofab up --backend rpc`) runs against an anvil started here; steps are
signed beforehand (as shop-floor devices would), sent as JSON batches over loopback by
concurrent clients (one per split, since a split's batches must arrive in order), and
counted once the node has acknowledged them, which it does only after the SQLite
transaction holding them committed with fsync. Targets, with 16 clients on the machine
that runs the node: >= 10,000 steps/s and a 99th-percentile answer time <= 250 ms.

    .venv/bin/python bench/ingest.py [--quick] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from references import load, verdict

from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.nodeproc import NodeProcess, prepare
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

RATE_TARGET = 10_000  # steps/s, 16 clients
P99_TARGET = 0.250  # seconds
BATCH = 100


def _bodies(stage, splits: int, per_split: int, batch: int) -> list[bytes]:
    # no step may be older than its order nor more than a few minutes ahead of the node's
    # clock: the steps of a split share the order's creation time
    t0 = stage.created_at
    bodies = []
    for s in range(splits):
        w = StepWriter(
            Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
        )
        subs = [
            w.step(
                object_event(
                    "assembling",
                    t0,
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


def _stored_bytes(data_dir: Path) -> int:
    """Bytes of the node's files, its log aside."""
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".log")


def _cpu_seconds(node: NodeProcess) -> float:
    """User + system CPU time of the node process so far (Linux /proc)."""
    assert node.proc is not None
    fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profiler(node: NodeProcess) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the node process into $COFAB_PROFILE_NODE (collapsed stacks), when
    that is set: where the node's CPU goes under this load."""
    out = os.environ.get("COFAB_PROFILE_NODE")
    if not out or node.proc is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "-p", str(node.proc.pid), "-r", "250", "--gil", "-f", "raw", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_ingest(quick: bool = False, clients: int = 16) -> None:
    splits, per_split, batch = clients, (200 if quick else 1_250), BATCH
    with (
        tempfile.TemporaryDirectory(prefix="cofab-bench-ingest-") as tmp,
        Devnet(state_dir=Path(tmp) / "chain", port=free_port()) as chain,
    ):
        stage = prepare(Path(tmp) / "node", chain.url, splits=splits)
        bodies = _bodies(stage, splits, per_split, batch)
        per_client = -(-per_split // batch)  # batches per split, the last maybe short
        queues = [bodies[c * per_client : (c + 1) * per_client] for c in range(clients)]
        node = NodeProcess(Path(tmp) / "node", chain.url)
        before = _stored_bytes(Path(tmp) / "node")
        node.start()
        errors: list[str] = []
        acked = [0] * clients
        latencies: list[float] = []

        def send(idx: int) -> None:
            with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as c:
                for body in queues[idx]:
                    t = time.perf_counter()
                    r = c.post(node.url + "/steps/batch", content=body)
                    latencies.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errors.append(r.text)
                        return
                    acked[idx] += r.json()["accepted"]

        spy = _profiler(node)
        try:
            cpu_before = _cpu_seconds(node)
            start = time.perf_counter()
            threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            node_cpu = _cpu_seconds(node) - cpu_before
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=120)
            node.stop()
        disk = _stored_bytes(Path(tmp) / "node") - before
    total = sum(acked)
    rate = total / elapsed
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"HTTP ingest (pre-signed steps, JSON batches of {batch}, fsync'd before the answer; "
        f"{clients} clients, one split each; node, anvil and clients on this machine, {load()})"
    )
    if errors:
        print("  refused:", errors[0][:300])
    print(
        f"  {total:,} steps in {elapsed:.2f} s; answer time p50 {p50 * 1e3:.0f} ms; "
        f"node disk {disk / max(total, 1):,.0f} bytes per step (SQLite journal, WAL included)"
    )
    print(
        f"  node process CPU {node_cpu:.1f} s = {node_cpu / max(total, 1) * 1e6:,.0f} µs per step "
        "(user + system, all its threads, anchoring included; steadier under load than wall time)"
    )
    print(
        f"  rate {rate:>8,.0f} steps/s   target >= {RATE_TARGET:,}/s: "
        f"{verdict(rate >= RATE_TARGET)}"
    )
    print(
        f"  p99  {p99 * 1e3:>8,.0f} ms        target <= {P99_TARGET * 1e3:.0f} ms: "
        f"{verdict(p99 <= P99_TARGET)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    bench_ingest(quick=args.quick, clients=args.clients)
