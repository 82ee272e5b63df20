"""Audit and bundle verification of one job end to end, measured in one run: events
fetched from a real node (anvil), every signature recovered and checked, every step proven
against its anchored Merkle root; the bundle given as JSON and in the compact form.
`cofab step verify` and `cofab audit` share one checker, so verifying a bundle should cost
no more than auditing it; the JSON-RPC requests of each are counted on the wire in a
separate, untimed pass. Audit and verification run in turns, `--rounds` times each (2
below a million steps, else 1), first one then the other first, and the fastest run of
each is shown: one run of either varies by about 10 % from the next on a quiet machine,
and the second of two runs in a row is often the slower. Each timed run starts the
checker's workers itself (as the CLI does, before reading the file) and reports the peak
memory of this process and its workers together, and each rate as a fraction of the C
limit of all the machine's cores (signature recovery alone, in one process per core),
measured in the same run.

Up to 200,000 steps the job's steps go through a node (ingest, anchoring, export); above,
they are signed and anchored directly (the node's ingest is measured by bench/ingest.py)
and only the compact form is written: a JSON bundle of a million steps is 1.6 GB.

    .venv/bin/python bench/audit.py [--steps 100000] [--rounds 2]
    .venv/bin/python bench/audit.py --steps 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from references import c_limit_on_cores, load, verdict

from ledger.audit.chain_record import Contracts
from ledger.audit.engine import AuditInputs, audit, seal
from ledger.eth.chain import Backend, http_web3
from ledger.eth.devnet import Devnet
from ledger.eth.rpc_counter import CountingProxy
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.node import Node, NodeOptions
from ledger.nodeproc import KDF, PASSPHRASE, prepare
from ledger.steps import compact, epcis
from ledger.steps.anchoring import DEFAULT_MAX_STEPS, anchor_tree
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle
from ledger.steps.record import ZERO, Domain, Step, types_document
from ledger.steps.signatures import Signer
from ledger.verify import checker
from ledger.verify.checker import verify_bundle

TARGET_SECONDS = 4.0  # the audit of 100,000 steps
TARGET_SECONDS_1M = 30.0  # and of 1,000,000
TARGET_PEAK = 1.5 * 2**30  # bytes, at 1,000,000 steps
VERIFY_TARGET_RATE = 50_000  # steps/s, bundle verification on 2 cores
BYTES_TARGET = 400  # per step, compact form
SPLITS = 4
THROUGH_NODE_UP_TO = 200_000


class PeakMemory:
    """Peak resident memory of this process plus its Python descendants, and the CPU time
    of the descendants (the checker's workers are the fork server's children, which
    os.times() never counts), sampled from /proc (Linux)."""

    def __init__(self) -> None:
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    @staticmethod
    def _tree(pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            for task in Path(f"/proc/{p}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in task.read_text().split()]
        return out

    @staticmethod
    def _python(pid: int) -> bool:
        """Not the chain node this bench runs (a child too): only the checker's processes."""
        try:
            return Path(f"/proc/{pid}/comm").read_text().startswith("python")
        except OSError:
            return False

    def _sample(self) -> None:
        pids = [p for p in self._tree(os.getpid()) if self._python(p)]
        self.peak = max(self.peak, sum(self._rss(p) for p in pids))
        for p in pids[1:]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])
                self._cpu[p] = ticks / os.sysconf("SC_CLK_TCK")

    @property
    def children_cpu(self) -> float:
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def _through_node(stage: Any, chain_url: str, data: Path, steps: int) -> tuple[dict, str, str]:
    """Ingest and anchor the steps through a node; its export, JobBoard, Traceability."""
    per_split = steps // SPLITS
    node = Node.start(
        NodeOptions(backend=Backend.RPC, rpc_url=chain_url, data_dir=data, kdf_iterations=KDF)
    )
    try:
        for s in range(SPLITS):
            now = int(time.time())  # after the factory joined, before the anchor
            w = StepWriter(
                Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
            )
            for i in range(0, per_split, 2_500):
                node.steps.ingest(
                    [
                        w.step(object_event("assembling", now))
                        for k in range(min(2_500, per_split - i))
                    ]
                )
            node.steps.anchor(stage.job_id, s)
        dep = node.deployment
        return node.steps.export(stage.job_id), dep.address("JobBoard"), dep.address("Traceability")
    finally:
        node.close()


def _signed_split(
    key: bytes, chain_id: int, contract: str, job: int, split: int, n: int, now: int
) -> tuple[list[bytes], list[tuple[int, int, bytes, bytes]]]:
    """A split's steps signed in a row, as compact blocks, and its anchors' (from, to,
    root, head) of DEFAULT_MAX_STEPS steps each (run in a worker process)."""
    domain, signer = Domain(chain_id, contract), Signer(key)
    member = signer.address
    payload = epcis.canonical(object_event("assembling", now)).decode()
    payload_hash = hashlib.sha256(payload.encode()).digest()
    prev, digests, steps = ZERO, [], []
    for seq in range(n):
        digest = Step(job, split, seq, prev, "assembling", payload_hash, ZERO, now, member).digest(
            domain
        )
        steps.append(
            {
                "record": {
                    "jobId": job,
                    "splitId": split,
                    "seq": seq,
                    "prevHash": "0x" + prev.hex(),
                    "bizStep": "assembling",
                    "payloadHash": "0x" + payload_hash.hex(),
                    "evidenceHash": "0x" + ZERO.hex(),
                    "time": now,
                    "member": member,
                },
                "step_hash": "0x" + digest.hex(),
                "signature": "0x" + signer.sign(digest).hex(),
                "signer": member,
                "payload": payload,
                "anchor_index": seq // DEFAULT_MAX_STEPS,
                "proof": "derived",  # left out of the file: the reader rebuilds it
            }
        )
        digests.append(digest)
        prev = digest
    anchors = []
    for lo in range(0, n, DEFAULT_MAX_STEPS):
        hi = min(n, lo + DEFAULT_MAX_STEPS) - 1
        tree = anchor_tree([(q, digests[q]) for q in range(lo, hi + 1)])
        anchors.append((lo, hi, tree.root, digests[hi]))
    blocks = [
        compact.block_frame(split, steps[i : i + compact.BLOCK], range(compact.BLOCK))
        for i in range(0, n, compact.BLOCK)
    ]
    return blocks, anchors


def _directly(stage: Any, chain_url: str, data: Path, steps: int, out: Path) -> tuple[str, str]:
    """Sign the steps in worker processes, anchor them with the factory's key, and write
    the compact bundle; JobBoard and Traceability."""
    per_split = steps // SPLITS
    node = Node.start(
        NodeOptions(backend=Backend.RPC, rpc_url=chain_url, data_dir=data, kdf_iterations=KDF)
    )
    try:
        trace = node.steps.anchorer.contract
        sender = Sender(node.chain, stage.operator)
        now = int(time.time())
        dom = stage.domain
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            made = [
                pool.submit(
                    _signed_split,
                    bytes(stage.operator.key),
                    dom.chain_id,
                    dom.verifying_contract,
                    stage.job_id,
                    s,
                    per_split,
                    now,
                )
                for s in range(SPLITS)
            ]
            splits = [f.result() for f in made]
        claims = []
        for s, (_, anchors) in enumerate(splits):
            prev_root, prev_head, mine = ZERO, ZERO, []
            for index, (lo, hi, root, head) in enumerate(anchors):
                fn = trace.functions.anchor(
                    stage.job_id, s, lo, hi, prev_root, prev_head, head, root
                )
                receipt = sender.transact(fn)
                mine.append(
                    {
                        "index": index,
                        "from_seq": lo,
                        "to_seq": hi,
                        "root": "0x" + root.hex(),
                        "previous_head": "0x" + prev_head.hex(),
                        "head": "0x" + head.hex(),
                        "anchored_by": stage.operator.address,
                        "tx_hash": receipt["transactionHash"].to_0x_hex(),
                        "block_number": int(receipt["blockNumber"]),
                        "timestamp": None,
                    }
                )
                prev_root, prev_head = root, head
            claims.append({"split_id": s, "anchors": mine})
        header = Bundle(
            chain_id=dom.chain_id,
            traceability=trace.address,
            job_id=stage.job_id,
            splits=[],
            domain=dom.as_dict(),
            types=types_document(),
        ).export() | {"splits": claims}
        with out.open("wb") as f:
            f.write(compact.header_frame(header))
            for blocks, _ in splits:
                for b in blocks:
                    f.write(b)
        dep = node.deployment
        return dep.address("JobBoard"), dep.address("Traceability")
    finally:
        node.close()


def _timed(fn: Callable[[], dict]) -> tuple[dict, float, tuple[float, float], int]:
    """fn's result, wall time, CPU (here, in workers) and peak memory; the workers are
    started inside the timing and stopped after it (a fresh process each run)."""
    checker.close_pool()
    with PeakMemory() as mem:
        mem._sample()
        before = mem.children_cpu  # the fork server's, so far
        start, cpu = time.perf_counter(), os.times()
        checker.pool()  # as the CLI does before it reads a bundle
        result = fn()
        elapsed = time.perf_counter() - start
        after = os.times()
        mem._sample()
        checker.close_pool()
    own = after.user + after.system - cpu.user - cpu.system
    return result, elapsed, (own, mem.children_cpu - before), mem.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument(
        "--direct", action="store_true", help="sign and anchor without a node at any size"
    )
    parser.add_argument("--rounds", type=int, help="timed runs of each, taken in turns")
    args = parser.parse_args()
    n = args.steps // SPLITS * SPLITS
    rounds = args.rounds or (2 if n < 1_000_000 else 1)
    with (
        tempfile.TemporaryDirectory(prefix="cofab-bench-audit-") as tmp,
        Devnet(state_dir=Path(tmp) / "chain", port=free_port()) as chain,
    ):
        t = time.perf_counter()
        stage = prepare(Path(tmp) / "node", chain.url, splits=SPLITS)
        os.environ["COFAB_PASSPHRASE"] = PASSPHRASE
        files: dict[str, Path] = {}
        if n <= THROUGH_NODE_UP_TO and not args.direct:
            exported, job_board, trace = _through_node(stage, chain.url, Path(tmp) / "node", n)
            files["json"] = Path(tmp) / "bundle.json"
            files["json"].write_text(json.dumps(exported))
            files["compact"] = Path(tmp) / "bundle.csb"
            files["compact"].write_bytes(compact.encode(exported))
            del exported
        else:
            files["compact"] = Path(tmp) / "bundle.csb"
            job_board, trace = _directly(stage, chain.url, Path(tmp) / "node", n, files["compact"])
        sizes = {k: p.stat().st_size for k, p in files.items()}
        print(
            f"set-up: {n:,} signed steps in {SPLITS} splits, anchored "
            f"{DEFAULT_MAX_STEPS:,} per anchor; bundle "
            + ", ".join(f"{k} {v / 2**20:,.0f} MiB ({v / n:,.0f} B/step)" for k, v in sizes.items())
            + f" ({time.perf_counter() - t:.0f} s; {load()})"
        )

        def run_audit(url: str, path: Path) -> dict:
            contracts = Contracts.discover(http_web3(url), job_board, trace)
            bundle = Bundle.load(path.read_bytes())
            return seal(audit(contracts, stage.job_id, AuditInputs(bundles=[bundle])))

        def run_verify(url: str, path: Path) -> dict:
            return (
                verify_bundle(Bundle.load(path.read_bytes()), http_web3(url))
                .report()
                .model_dump(mode="json")
            )

        best: dict[tuple[str, str], tuple] = {}
        for turn in range(rounds):
            pair = (("audit", run_audit), ("verify", run_verify))
            for form, path in files.items():
                for name, fn in pair if turn % 2 == 0 else pair[::-1]:
                    result, elapsed, cpu, peak = _timed(functools.partial(fn, chain.url, path))
                    if name == "audit":
                        proven = sum(s.get("steps_proven", 0) for s in result["splits"])
                        outcome = result["summary"]["verdict"]
                    else:
                        proven, outcome = result["anchored"], result["verdict"]
                    row = (form, name, elapsed, cpu, peak, proven, outcome)
                    if (form, name) not in best or elapsed < best[(form, name)][2]:
                        best[(form, name)] = row
        rows = list(best.values())
        reading = {}
        for form, path in files.items():
            start = time.perf_counter()
            raw = path.read_bytes()
            if form == "json":
                json.loads(raw)
            else:
                for b in compact.read(raw)[1].values():
                    for block in b.blocks:
                        compact.inflate(memoryview(block)[12:])
            reading[form] = time.perf_counter() - start
        requests = {}
        if "json" in files:
            with CountingProxy(chain.url) as proxy:
                for name, fn in (("audit", run_audit), ("verify", run_verify)):
                    proxy.reset()
                    fn(proxy.url, files["json"])
                    requests[name] = proxy.total()
            checker.close_pool()
    per_step = TARGET_SECONDS / 1e5 if n < 1_000_000 else TARGET_SECONDS_1M / 1e6
    target = per_step * n
    cores = len(os.sched_getaffinity(0))
    limit = c_limit_on_cores(cores)
    print(
        f"audit and bundle verification of one job, end to end, fastest of {rounds} "
        f"run{'s' if rounds > 1 else ''} of each taken in turns ({load()})"
    )
    print(
        f"  C limit on {cores} cores (libsecp256k1 recover + keccak in {cores} processes at "
        f"once, nothing else): {limit:,.0f} signatures/s, so {n:,} steps take at least "
        f"{n / limit:.2f} s; the audit target leaves {max(0.0, 1 - n / limit / target):.0%} "
        f"of its time for everything else, the verify target needs "
        f"{VERIFY_TARGET_RATE / limit:.1f}x the limit"
    )
    for form, name, elapsed, (own, kids), peak, proven, outcome in rows:
        line = (
            f"  {name:6} {form:7} {elapsed:6.2f} s for {proven:,} steps proven "
            f"({proven / elapsed:,.0f} steps/s, {proven / elapsed / limit:.2f} of the C limit; "
            f"CPU {own:.1f} s here + {kids:.1f} s in workers; "
            f"peak memory {peak / 2**20:,.0f} MiB); verdict {outcome}"
        )
        if name == "audit":
            line += f"; target <= {target:.1f} s  {verdict(elapsed <= target)}"
            if n >= 1_000_000:
                line += f"; peak <= 1.5 GiB  {verdict(peak <= TARGET_PEAK * n / 1e6)}"
        else:
            line += f"; target >= {VERIFY_TARGET_RATE:,}/s  {verdict(proven / elapsed >= 5e4)}"
        print(line)
    print(
        "  reading the bundle: "
        + ", ".join(
            f"{k} {v:.2f} s ({'json.loads' if k == 'json' else 'frames + inflate'})"
            for k, v in reading.items()
        )
        + f"; compact size {sizes['compact'] / n:,.0f} B/step, target <= {BYTES_TARGET}  "
        + verdict(sizes["compact"] / n <= BYTES_TARGET)
    )
    if requests:
        times = {(f, nm): e for f, nm, e, *_ in rows}
        same = times[("json", "verify")] <= times[("json", "audit")] * 1.05
        print(
            f"  JSON-RPC requests: audit {requests['audit']}, verify {requests['verify']}; "
            f"verify no costlier than audit (time within 5 %, requests)  "
            f"{verdict(same and requests['verify'] <= requests['audit'])}"
        )


if __name__ == "__main__":
    main()
