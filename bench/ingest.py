"""Durable ingest rate of pre-signed steps through the real HTTP server, and its curve.

A node process (`cofab up --backend rpc`) runs against an anvil started here; steps are
signed beforehand (as shop-floor devices would), sent as JSON batches over loopback by
concurrent clients (one per split, since a split's batches must arrive in order), and
counted once the node has acknowledged them, which it does only after the SQLite
transaction holding them committed with fsync. The curve: 1, 4 and 16 clients against a
node with 0 (checked in the API process), 1 and 2 ingest worker processes, with the node
and its workers pinned to one core (`taskset -a -c 0`) and then on both; clients and anvil
run beside them on the same machine. Each run sends 32,000 steps (`--steps`): at 10,000
steps/s it lasts about 3 s, long enough that the clients' first and last batches, sent
while the others have not started or have finished, weigh little on the rate. Targets,
with 16 clients, the node on 2 cores and its default workers (one per core beside the
node process's own): >= 10,000 steps/s and a 99th-percentile answer time <= 250 ms; and a
rate that grows with cores (the default workers on 1 core, none, against 2).

    .venv/bin/python bench/ingest.py [--quick] [--clients 1,4,16] [--workers 0,1,2]
                                     [--cores 1,2] [--steps 32000]
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
from dataclasses import dataclass
from pathlib import Path

import httpx
from references import load, verdict

from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.nodeproc import NodeProcess, Stage, prepare
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

RATE_TARGET = 10_000  # steps/s, 16 clients
P99_TARGET = 0.250  # seconds
BATCH = 100


class Splits:
    """One StepWriter per split, kept across runs: each run sends every split's next steps."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.writers = [
            StepWriter(
                Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
            )
            for s in range(stage.splits)
        ]

    def bodies(self, split: int, steps: int) -> list[bytes]:
        """The split's next `steps` steps as JSON batch bodies of BATCH steps."""
        # no step may be older than its order nor more than a few minutes ahead of the node's
        # clock: the steps of a split share the order's creation time
        w, t0 = self.writers[split], self.stage.created_at
        subs = [
            w.step(
                object_event(
                    "assembling",
                    t0,
                    epcs=[f"urn:epc:id:sgtin:0614141.107346.{split}{w.next_seq}"],
                    read_point="urn:epc:id:sgln:0614141.00777.0",
                    sensors=[{"type": "Temperature", "value": 21.5, "uom": "CEL"}],
                )
            )
            for _ in range(steps)
        ]
        return [
            json.dumps(
                {
                    "steps": [
                        {"record": x.record, "signature": x.signature, "payload": x.payload}
                        for x in subs[i : i + BATCH]
                    ]
                }
            ).encode()
            for i in range(0, steps, BATCH)
        ]


def _stored_bytes(data_dir: Path) -> int:
    """Bytes of the node's files, its log aside."""
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".log")


def _descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the node, its fork server and its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, []))
    return tree


def _cpu_seconds(node: NodeProcess) -> tuple[float, float]:
    """User + system CPU time so far of the node process, and of its worker processes
    (Linux /proc)."""
    assert node.proc is not None
    ticks = [0, 0]
    for pid in _descendants(node.proc.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid != node.proc.pid] += int(fields[11]) + int(fields[12])
    hz = os.sysconf("SC_CLK_TCK")
    return ticks[0] / hz, ticks[1] / hz


def _profiler(node: NodeProcess, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the node process while it holds the GIL into
    $COFAB_PROFILE_NODE.<name> (raw collapsed stacks), when that is set: what keeps the
    node process busy, the part of the work its worker processes cannot share."""
    out = os.environ.get("COFAB_PROFILE_NODE")
    if not out or node.proc is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "-p", str(node.proc.pid), "--gil", "-r", "250", "-f", "raw"]
    return subprocess.Popen(
        [*cmd, "-o", f"{out}.{name}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@dataclass
class Run:
    cores: int
    workers: int
    clients: int
    steps: int
    seconds: float
    p99: float
    cpu: float  # the node process, CPU seconds
    worker_cpu: float  # its worker processes
    refused: str | None

    @property
    def rate(self) -> float:
        return self.steps / self.seconds

    @property
    def cpu_per_step(self) -> float:
        """Node and workers, seconds."""
        return (self.cpu + self.worker_cpu) / max(self.steps, 1)

    @property
    def ceiling(self) -> float:
        """The rate this CPU cost allows on `cores` free cores: the node process is one
        thread of Python (one core at most), the workers share the cores with it."""
        steps = max(self.steps, 1)
        node, total = self.cpu / steps, (self.cpu + self.worker_cpu) / steps
        return min(1 / node, self.cores / total) if node > 0 else 0.0

    def row(self) -> str:
        per_step = [c / max(self.steps, 1) * 1e6 for c in (self.cpu, self.worker_cpu)]
        return (
            f"  {self.cores:5}  {self.workers:7}  {self.clients:7}  {self.rate:9,.0f}  "
            f"{self.p99 * 1e3:7,.0f}  {sum(per_step):8,.0f} = {per_step[0]:4,.0f} + "
            f"{per_step[1]:4,.0f}   {self.ceiling:8,.0f}"
            + (f"   refused: {self.refused}" if self.refused else "")
        )


def _run(
    node: NodeProcess, splits: Splits, clients: int, steps: int, cores: int, workers: int
) -> Run:
    """`steps` steps sent by `clients` concurrent clients, one split each."""
    queues = [splits.bodies(c, steps // clients) for c in range(clients)]
    errors: list[str] = []
    acked = [0] * clients
    latencies: list[float] = []

    def send(idx: int) -> None:
        with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as c:
            for body in queues[idx]:
                t = time.perf_counter()
                r = c.post(node.url + "/steps/batch", content=body)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                acked[idx] += r.json()["accepted"]

    cpu_before = _cpu_seconds(node)
    start = time.perf_counter()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu_after = _cpu_seconds(node)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Run(
        cores,
        workers,
        clients,
        sum(acked),
        elapsed,
        p99,
        cpu_after[0] - cpu_before[0],
        cpu_after[1] - cpu_before[1],
        errors[0][:300] if errors else None,
    )


def _warm(node: NodeProcess, splits: Splits, split: int) -> None:
    """A few batches before measuring: the workers start on the node's first batch."""
    with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as c:
        for body in splits.bodies(split, 4 * BATCH):
            c.post(node.url + "/steps/batch", content=body).raise_for_status()
        time.sleep(2)  # the workers are up
        for body in splits.bodies(split, 2 * BATCH):
            c.post(node.url + "/steps/batch", content=body).raise_for_status()


def bench_ingest(
    quick: bool = False,
    clients: tuple[int, ...] = (1, 4, 16),
    workers: tuple[int, ...] = (0, 1, 2),
    cores: tuple[int, ...] = (1, 2),
    steps: int | None = None,
) -> None:
    if steps is None:
        steps = 1_600 if quick else 32_000  # per run, whatever the number of clients
    splits_needed = max(clients) + 1  # the last one warms each node up
    runs: list[Run] = []
    print(
        f"HTTP ingest (pre-signed steps, JSON batches of {BATCH}, fsync'd before the answer; "
        f"clients one split each; {steps:,} steps per run; node, anvil and clients on this "
        f"machine, {load()} at the start)"
    )
    print(
        "  cores  workers  clients    steps/s   p99 ms   CPU µs/step = node process + workers"
        "   ceiling steps/s"
    )
    print(
        "  (CPU: user + system, anchoring included, steadier under load than wall time; "
        "ceiling: the rate that CPU allows with the cores free, the node process using one "
        "at most)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="cofab-bench-ingest-") as tmp,
        Devnet(state_dir=Path(tmp) / "chain", port=free_port()) as chain,
    ):
        data = Path(tmp) / "node"
        stage = prepare(data, chain.url, splits=splits_needed)
        splits = Splits(stage)
        before = _stored_bytes(data)
        for n_cores in cores:
            for n_workers in workers:
                node = NodeProcess(data, chain.url, "--ingest-workers", str(n_workers))
                node.start()
                assert node.proc is not None
                pinned = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:n_cores])
                subprocess.run(
                    ["taskset", "-a", "-c", "-p", pinned, str(node.proc.pid)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                spy = _profiler(node, f"{n_cores}c{n_workers}w")
                try:
                    _warm(node, splits, splits_needed - 1)
                    for n_clients in clients:
                        run = _run(node, splits, n_clients, steps, n_cores, n_workers)
                        runs.append(run)
                        print(run.row())
                finally:
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(timeout=120)
                    node.stop()
        stored = sum(r.steps for r in runs)
        disk = _stored_bytes(data) - before
    print(
        f"  node disk {disk / max(stored, 1):,.0f} bytes per step (SQLite journal, WAL "
        f"included); {load()} at the end"
    )
    _verdicts(runs)


def _verdicts(runs: list[Run]) -> None:
    """The targets, at 16 clients with the default workers (one per core beside the node
    process's own, as `cofab up` starts them)."""
    at = {(r.cores, r.workers, r.clients): r for r in runs}
    best = max(r.cores for r in runs)
    target = at.get((best, best - 1, 16))
    if target is None:
        return
    workers = f"{best - 1} worker{'s' if best - 1 != 1 else ''}"
    print(
        f"  {best} cores, {workers} (the default), 16 clients: rate {target.rate:,.0f} steps/s, "
        f"target >= {RATE_TARGET:,}/s: {verdict(target.rate >= RATE_TARGET)}; p99 "
        f"{target.p99 * 1e3:,.0f} ms, target <= {P99_TARGET * 1e3:.0f} ms: "
        f"{verdict(target.p99 <= P99_TARGET)}"
    )
    one = at.get((1, 0, 16))
    if one is not None and best > 1:
        growth = target.rate / one.rate
        print(
            f"  grows with cores: {best} cores / 1 core at 16 clients, default workers: "
            f"x{growth:.2f} ({one.rate:,.0f} -> {target.rate:,.0f} steps/s), target more "
            f"than x1.3: {verdict(growth >= 1.3)}; by CPU cost x"
            f"{target.ceiling / one.ceiling:.2f} ({one.ceiling:,.0f} -> "
            f"{target.ceiling:,.0f} steps/s ceiling)"
        )
    inline = at.get((best, 0, 16))
    if inline is not None:
        print(
            f"  the default workers against none, {best} cores, 16 clients: "
            f"x{target.rate / inline.rate:.2f} steps/s, ceiling x"
            f"{target.ceiling / inline.ceiling:.2f}; CPU {inline.cpu_per_step * 1e6:,.0f} -> "
            f"{target.cpu_per_step * 1e6:,.0f} µs per step"
        )


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps per run")
    parser.add_argument("--clients", type=_numbers, default=(1, 4, 16), help="e.g. 1,4,16")
    parser.add_argument("--workers", type=_numbers, default=(0, 1, 2), help="e.g. 0,1,2")
    parser.add_argument("--cores", type=_numbers, default=(1, 2), help="e.g. 1,2")
    parser.add_argument("--steps", type=int, help="steps per run (default 32,000)")
    args = parser.parse_args()
    bench_ingest(args.quick, args.clients, args.workers, args.cores, args.steps)
