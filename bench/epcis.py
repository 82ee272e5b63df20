"""EPCIS 2.0 gateway: capture throughput over HTTP, query latency on a large journal.

    .venv/bin/python bench/epcis.py [--capture-events 20000] [--batch 1000] [--events 1000000]
                                    [--keep DIR]  # journal the query events there, reuse them
                                    [--skip-capture | --skip-query]

- capture: EPCISDocuments of `--batch` events POSTed one after another to /epcis/capture
  over real HTTP (uvicorn on 127.0.0.1) with an API key, by a client process of its own
  (as an MES is), on an embedded chain; each event validated, given
  its eventID, mapped to its split, signed by the factory's device key (its authority over
  the split checked) and journaled durably (SQLite `synchronous=FULL`) before the 202;
  target >= 5,000 events/s, timed after one warm-up document (which starts the node's
  worker processes); the CPU time reported is the client's, the node's and its workers';
- query: `--events` signed steps journaled (1,024-step anchors recorded with their Merkle
  roots), indexed, then the standard queries with a page of 100 (each parameter alone, a
  combination, a next page), timed in the query service (index, journal join, proofs and
  the events' JSON); target p99 <= 50 ms over 100 rounds, after each query's first page
  and next page (their first reads of the journal's pages, shown as "cold").
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from api.app import create_app
from ledger.core import canonical_json
from ledger.epcis.query import EventQuery
from ledger.epcis.store import EpcisStore
from ledger.eth.chain import Backend
from ledger.eth.toolchain import free_port
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import SplitSpec
from ledger.scenario import (
    factory_shares,
    licensed_design,
    make_operator_factory,
    member,
    order_in_production,
)
from ledger.steps import epcis
from ledger.steps.anchoring import anchor_tree
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain, Step
from ledger.steps.signatures import Signer

CAPTURE_TARGET = 5_000  # events per second
QUERY_TARGET_MS = 50.0  # p99, page of 100
SPLITS = 4
BIZ_STEPS = ("commissioning", "inspecting", "packing", "shipping", "receiving", "assembling")


def _iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _event(i: int, when: float, read_point: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": _iso(when),
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "bizStep": BIZ_STEPS[i % len(BIZ_STEPS)],
        "epcList": [f"urn:epc:id:sgtin:0614141.107346.{i}"],
        "readPoint": {"id": read_point},
        "bizLocation": {"id": f"urn:epc:id:sgln:0614141.00888.{i % 200}"},
        "sensorElementList": [
            {"sensorReport": [{"type": "Temperature", "value": 20 + i % 7, "uom": "CEL"}]}
        ],
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


# --- capture -------------------------------------------------------------------------------


def bench_capture(events: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.start(
            NodeOptions(backend=Backend.EMBEDDED, data_dir=Path(tmp), kdf_iterations=1024)
        )
        try:
            _capture(node, events, batch)
        finally:
            node.close()


def _capture(node: Node, events: int, batch: int) -> None:
    import uvicorn

    op = make_operator_factory(node)
    buyer = member(node, int(Role.BUYER))
    designer = member(node, int(Role.DESIGNER))
    design = licensed_design(node, designer, buyer.address)
    specs = [
        SplitSpec(op.address, f"lot {i}", 10, share)
        for i, share in enumerate(factory_shares(SPLITS))
    ]
    job = order_in_production(node, buyer, design, specs, 10**9)
    device = Account.create(os.urandom(32).hex())
    node.consortium.authorize_device(op, device, 0)
    node.add_signer(device)
    key = node.epcis.create_key(op.address, "bench MES")["key"]
    points = [f"urn:epc:id:sgln:0614141.00777.{s}" for s in range(SPLITS)]
    for split, point in enumerate(points):
        node.epcis.map(op.address, "readPoint", point, job, split)
    start = max(node.steps.authority.job_created_at(job), int(time.time())) + 1
    documents = []
    total = events + batch  # the first document warms up, untimed
    for b in range(0, total, batch):
        body = [
            _event(i, start + i / 1000, points[i % SPLITS]) for i in range(b, min(total, b + batch))
        ]
        documents.append(
            canonical_json.dumps(
                {
                    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                    "type": "EPCISDocument",
                    "schemaVersion": "2.0",
                    "creationDate": _iso(start),
                    "epcisBody": {"eventList": body},
                }
            )
        )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = threading.Thread(target=server.run)
    serving.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        context = multiprocessing.get_context("spawn")
        # the MES: a process of its own, as it would be, holding the documents to send
        with context.Pool(1, initializer=_hold, initargs=(documents,)) as client:
            client.apply(_post, (url, key, 0, 1))
            began = time.perf_counter()
            before = _tree_cpu()
            latencies = client.apply(_post, (url, key, 1, len(documents)))
            elapsed = time.perf_counter() - began
            used = {k: v - before[k] for k, v in _tree_cpu().items()}
    finally:
        server.should_exit = True
        serving.join()
    stored = node.steps.journal.count() - batch
    rate = events / elapsed
    cpu = sum(used.values())
    shares = ", ".join(f"{k} {v / events * 1e6:.0f}" for k, v in used.items())
    print(
        f"capture: {events:,} events in {len(documents) - 1} documents of {batch} over HTTP "
        f"(after one warm-up document), {elapsed:.1f} s: {rate:,.0f} events/s (target >= "
        f"{CAPTURE_TARGET:,}): {_verdict(rate >= CAPTURE_TARGET)}; per document p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms; {stored:,} steps journaled; "
        f"{events / cpu:,.0f} events per CPU-second (client, node and its workers together: "
        f"{cpu / events * 1e6:.0f} µs an event: {shares}); the node's process was busy "
        f"{used['node'] / elapsed:.2f} of a core (its Python threads hold one GIL between them), "
        f"{os.cpu_count()} cores, {os.getloadavg()[0]:.1f} load average"
    )
    assert stored == events


_DOCUMENTS: list[bytes] = []


def _hold(documents: list[bytes]) -> None:
    _DOCUMENTS[:] = documents


def _post(url: str, key: str, first: int, end: int) -> list[float]:
    """POST the documents held from `first` to `end` to /epcis/capture in turn, as one
    MES would; the latencies."""
    latencies = []
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/ld+json"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for doc in _DOCUMENTS[first:end]:
            t = time.perf_counter()
            resp = client.post("/epcis/capture", content=doc)
            latencies.append(time.perf_counter() - t)
            if resp.status_code != 202:
                raise SystemExit(f"capture refused: {resp.status_code} {resp.text[:300]}")
    return latencies


def _tree_cpu() -> dict[str, float]:
    """CPU seconds used so far by this process (the node) and every process it started,
    from /proc: the MES client (a spawned process) and the capture's worker processes
    (forked from their fork server, counted with it)."""
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = {"node": 0.0, "client": 0.0, "workers": 0.0}
    for pid, seconds in used.items():
        ancestor = pid
        while ancestor > 1 and ancestor != me:
            ancestor = parents.get(ancestor, 0)
        if pid == me:
            total["node"] += seconds
        elif ancestor == me:
            total["client" if b"spawn" in _cmdline(pid) else "workers"] += seconds
    return total


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# --- query ---------------------------------------------------------------------------------


def bench_query(events: int, keep: Path | None = None, per_split: int = 5_000) -> None:
    splits = max(1, min(10, events // per_split))
    jobs = max(1, events // (per_split * splits))
    with tempfile.TemporaryDirectory() as tmp:
        where = keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        path = where / "journal.sqlite"
        journal = Journal(path)
        t0 = 1_795_000_000
        began = time.perf_counter()
        if journal.count() != events:  # a kept journal of this size is reused as it is
            if journal.count():
                raise SystemExit(f"{path} holds another number of steps: remove it first")
            journal.set_meta("chain", "bench")
            _fill(journal, events, jobs, splits, t0)
        filled = time.perf_counter() - began
        store = EpcisStore(where / "journal.epcis.sqlite", path, "bench")
        began = time.perf_counter()
        indexed = store.sync()
        store.analyze()
        print(
            f"query: {events:,} steps journaled in {filled:.0f} s, indexed in "
            f"{time.perf_counter() - began:.0f} s ({indexed:,} events)"
        )
        _sync_cost(store)
        gc.freeze()  # as `cofab up` does before serving: full collections skip start-up objects
        _queries(EventQuery(store), events, t0)
        store.close()
        journal.close()


def _sync_cost(store: EpcisStore) -> None:
    """What each query pays to know the index is current: the constant-time check, and
    the full catch-up scan (of the journal's heads and anchors) it spares."""
    rounds = 200
    c = time.process_time()
    for _ in range(rounds):
        store.sync()
    check = (time.process_time() - c) / rounds * 1000
    c = time.process_time()
    for _ in range(rounds // 10):
        store._catch_up({})
    scan = (time.process_time() - c) / (rounds // 10) * 1000
    print(
        f"  index sync before a query: {check:.3f} ms CPU (the full catch-up scan: {scan:.1f} ms)"
    )


_TEMPLATE = (
    '{{"action":"OBSERVE","bizLocation":{{"id":"urn:epc:id:sgln:0614141.00888.{loc}"}},'
    '"bizStep":"{step}","epcList":["urn:epc:id:sgtin:0614141.107346.{i}"],'
    '"eventID":"urn:uuid:00000000-0000-4000-8000-{i:012d}","eventTime":"{time}",'
    '"eventTimeZoneOffset":"+00:00","readPoint":{{"id":"{point}"}},'
    '"sensorElementList":[{{"sensorReport":[{{"type":"Temperature","uom":"CEL",'
    '"value":{value}}}]}}],"type":"ObjectEvent"}}'
)


def _canonical(i: int, when: int, point: str) -> bytes:
    """The RFC 8785 form of `_event(i, when, point)` with its eventID, written directly (a
    million rfc8785 calls would take longer than the query benchmark itself); the first
    events are checked against epcis.canonical."""
    text = _TEMPLATE.format(loc=i % 200, step=BIZ_STEPS[i % len(BIZ_STEPS)], i=i,
                            time=_iso(when), point=point, value=20 + i % 7)  # fmt: skip
    return text.encode()


def _fill(journal: Journal, events: int, jobs: int, splits: int, t0: int) -> None:
    """`events` signed steps spread over jobs x splits, anchored in ranges of 1,024."""
    for i in range(3):
        event = _event(i, t0 + i, "urn:epc:id:sgln:0614141.00777.0")
        event["eventID"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
        assert epcis.canonical(event) == _canonical(i, t0 + i, "urn:epc:id:sgln:0614141.00777.0")
    signer = Signer(b"\x42" * 32)
    member_address = Account.from_key(b"\x43" * 32).address
    domain = Domain(31337, "0x" + "11" * 20)
    per_split = events // (jobs * splits)
    chunk: list[NewStep] = []
    for job in range(1, jobs + 1):
        for split in range(splits):
            head = bytes(32)
            hashes: list[tuple[int, bytes]] = []
            for seq in range(per_split):
                i = ((job - 1) * splits + split) * per_split + seq
                when = t0 + i
                payload = _canonical(i, when, f"urn:epc:id:sgln:0614141.00777.{i % 1000}")
                biz_step = BIZ_STEPS[i % len(BIZ_STEPS)]
                step = Step(job, split, seq, head, biz_step, epcis.payload_hash(payload),
                            bytes(32), when, member_address)  # fmt: skip
                digest = step.digest(domain)
                chunk.append(NewStep(step, digest, member_address, signer.sign(digest), payload))
                hashes.append((seq, digest))
                head = digest
            with journal.transaction() as db:
                Journal.insert_steps(db, chunk)
                Journal.set_head(db, job, split, per_split, head)
            chunk = []
            for index, start in enumerate(range(0, per_split - 1023, 1024)):
                rng = hashes[start : start + 1024]
                tree = anchor_tree(rng)
                journal.put_anchor(job, split, start, start + 1023, tree.root,
                                   rng[0][1], rng[-1][1], "sent", "0x" + "ab" * 32)  # fmt: skip
                journal.mark_anchored(job, split, start, start + 1023, index, 100 + index,
                                      "0x" + "ab" * 32)  # fmt: skip


def _queries(query: EventQuery, events: int, t0: int) -> None:
    mid = _iso(t0 + events // 2)
    late = _iso(t0 + events - 5_000)
    recent = _iso(query.store.read("SELECT MAX(record_time) FROM events")[0][0] / 1000 - 60)
    cases: list[tuple[str, dict[str, str]]] = [
        ("all", {}),
        ("eventType", {"eventType": "ObjectEvent"}),
        ("EQ_bizStep", {"EQ_bizStep": "shipping"}),
        ("GE_eventTime", {"GE_eventTime": mid}),
        ("LT_eventTime", {"LT_eventTime": mid}),
        ("GE_eventTime late", {"GE_eventTime": late}),
        ("GE_eventTime newest-first", {"GE_eventTime": mid, "orderDirection": "DESC"}),
        ("all newest-first", {"orderDirection": "DESC"}),
        ("GE_recordTime", {"GE_recordTime": "2000-01-01T00:00:00Z"}),
        ("GE_recordTime last minute", {"GE_recordTime": recent, "orderBy": "recordTime"}),
        ("EQ_bizLocation", {"EQ_bizLocation": "urn:epc:id:sgln:0614141.00888.17"}),
        ("EQ_readPoint", {"EQ_readPoint": "urn:epc:id:sgln:0614141.00777.421"}),
        ("MATCH_epc", {"MATCH_epc": f"urn:epc:id:sgtin:0614141.107346.{events // 3}"}),
        ("MATCH_anyEPC", {"MATCH_anyEPC": f"urn:epc:id:sgtin:0614141.107346.{events // 7}"}),
        ("bizStep + GE_eventTime", {"EQ_bizStep": "packing", "GE_eventTime": mid}),
        ("readPoint + bizStep", {"EQ_readPoint": "urn:epc:id:sgln:0614141.00777.5",
                                 "EQ_bizStep": "commissioning"}),
    ]  # fmt: skip
    rounds = 100  # measured, after the first page and next page (cold: reported apart)
    worst = worst_cpu = worst_cold = 0.0
    anchored = returned = 0
    print(
        f"  {'query (page of 100)':<26} {'events':>6} {'cold ms':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'p99 CPU':>8}"
    )
    for name, params in cases:
        args = {k: [v] for k, v in params.items()} | {"perPage": ["100"]}
        times = []
        cpu_times = []
        found: list[dict[str, Any]] = []
        token = None
        for r in range(rounds + 2):
            page = dict(args)
            if r % 2 and token:  # every other round: the next page
                page["nextPageToken"] = [token]
            t, c = time.perf_counter(), time.process_time()
            found, next_token = query.query(page)
            times.append((time.perf_counter() - t) * 1000)
            cpu_times.append((time.process_time() - c) * 1000)
            token = next_token or token
        anchored += sum(1 for e in found if e["cofab:proof"]["anchor"])
        returned += len(found)
        cold = max(times[:2])  # the first reads of this query's journal pages
        times, cpu_times = times[2:], cpu_times[2:]
        p99, cpu99 = (statistics.quantiles(t, n=100)[-1] for t in (times, cpu_times))
        worst = max(worst, p99)
        worst_cpu = max(worst_cpu, cpu99)
        worst_cold = max(worst_cold, cold)
        print(
            f"  {name:<26} {len(found):>6} {cold:>8.1f} {statistics.median(times):>8.1f} "
            f"{p99:>8.1f} {cpu99:>8.1f}"
        )
    print(
        f"query: p99 of the worst query {worst:.1f} ms (target <= {QUERY_TARGET_MS:.0f} ms): "
        f"{_verdict(worst <= QUERY_TARGET_MS)}; its CPU time p99 {worst_cpu:.1f} ms; "
        f"a first page on journal pages not read before up to {worst_cold:.0f} ms; "
        f"{os.getloadavg()[0]:.1f} load average; events carry their proofs "
        f"({anchored:,} of the {returned:,} on the last pages anchored, with Merkle proofs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture-events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-capture", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument(
        "--keep", type=Path, help="journal the query events in this directory and reuse them"
    )
    opts = parser.parse_args()
    if not opts.skip_capture:
        bench_capture(opts.capture_events, opts.batch)
    if not opts.skip_query:
        bench_query(opts.events, opts.keep)


if __name__ == "__main__":
    main()
