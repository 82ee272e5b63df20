"""Storing steps in the journal as it grows, against the earlier payload table, in one run.

Payloads are kept in the order they arrive, found by their hash through an index; the
reference is the table they were kept in before, ordered by the (random) hash itself, in
which each new payload lands on a page of its own once the table outgrows the page cache.
Both journals get the same steps, 1,000 per durable transaction (`synchronous=FULL`), in
turns; printed: the CPU per transaction as each journal grows, and the time an earlier
journal takes to be moved to the current form when a node first opens it.

    .venv/bin/python bench/journal.py [--steps 20000] [--upgrade 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from references import load, verdict

from ledger.steps import epcis
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer

BATCH = 1_000
TARGET_RATIO = 0.67  # CPU per transaction at the largest size, against the earlier table
EARLIER = "CREATE TABLE payloads (hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID"


def earlier_form(path: Path) -> Journal:
    """A journal whose payloads are in the table ordered by their hash."""
    journal = Journal(path)
    with journal.transaction() as db:
        db.execute("DROP TABLE payloads")
        db.execute(EARLIER)
    return journal


def batches(total: int) -> list[list[NewStep]]:
    """`total` steps of four splits, with payloads like a shop floor's (a serial number
    and a reading each), in batches of BATCH; signatures are random bytes (the journal
    stores what the ingest checked, it does not check again)."""
    signer = Signer(bytes(31) + b"\x07")
    domain = Domain(1, "0x" + "11" * 20)
    writers = [StepWriter(signer, domain, 1, s, signer.address) for s in range(4)]
    steps = []
    for i in range(total):
        event = object_event(
            "assembling",
            1_800_000_000 + i,
            epcs=[f"urn:epc:id:sgtin:0614141.107346.{i}"],
            read_point=f"urn:epc:id:sgln:0614141.00777.{i % 4}",
            sensors=[{"type": "Temperature", "value": 20 + i % 7, "uom": "CEL"}],
        )
        canonical = epcis.canonical(event)
        step, digest = writers[i % 4].next(event, canonical)
        steps.append(NewStep(step, digest, signer.address, os.urandom(65), canonical))
    return [steps[i : i + BATCH] for i in range(0, total, BATCH)]


def store(journal: Journal, batch: list[NewStep]) -> float:
    """CPU seconds of one durable transaction storing `batch`."""
    start = time.process_time()
    with journal.transaction() as db:
        Journal.insert_steps(db, batch)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--upgrade", type=int, default=100_000)
    args = parser.parse_args()
    todo = batches(args.steps)
    with tempfile.TemporaryDirectory(prefix="cofab-bench-journal-") as tmp:
        current = Journal(Path(tmp) / "current.sqlite")
        earlier = earlier_form(Path(tmp) / "earlier.sqlite")
        rows = []
        for n, batch in enumerate(todo, 1):
            turn = (earlier, current) if n % 2 else (current, earlier)  # who goes first
            spent = {journal: store(journal, batch) for journal in turn}
            rows.append((n * BATCH, spent[current], spent[earlier]))
        current.close()
        earlier.close()

        old = earlier_form(Path(tmp) / "upgrade.sqlite")
        payloads = ((os.urandom(32), os.urandom(250).hex().encode()) for _ in range(args.upgrade))
        with old.transaction() as db:
            db.executemany("INSERT INTO payloads (hash, data) VALUES (?, ?)", payloads)
        old.close()
        start = time.perf_counter()
        Journal(Path(tmp) / "upgrade.sqlite").close()
        upgrade = time.perf_counter() - start

    print(
        f"journal: CPU per durable transaction of {BATCH:,} steps as the journal grows, "
        f"payloads in arrival order against the earlier table ordered by hash ({load()})"
    )
    step = max(1, len(rows) // 5)
    for size, now, before in rows[step - 1 :: step]:
        print(
            f"  {size:>9,} steps   now {now * 1e3:6.1f} ms   earlier {before * 1e3:6.1f} ms   "
            f"{now / before:.2f}"
        )
    size, now, before = rows[-1]
    tail = rows[-max(1, len(rows) // 4) :]  # the last quarter: steadier than one transaction
    ratio = sum(r[1] for r in tail) / sum(r[2] for r in tail)
    print(
        f"  at {tail[0][0]:,}-{size:,} steps: {ratio:.2f} of the earlier table's CPU, target <= "
        f"{TARGET_RATIO:.2f}: {verdict(ratio <= TARGET_RATIO)}"
    )
    print(
        f"  moving an earlier journal of {args.upgrade:,} payloads to the current form "
        f"(once, when a node first opens it): {upgrade:.2f} s"
    )


if __name__ == "__main__":
    main()
