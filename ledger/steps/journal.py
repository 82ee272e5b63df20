"""The node's journal of accepted production steps: SQLite in WAL mode, fsync on commit.

A step is acknowledged only after the transaction that stores it (and its payload)
commits with `synchronous=FULL`: a crash, even `kill -9`, loses no acknowledged step.
Payloads (canonical EPCIS JSON, at most 64 KiB) are kept content-addressed by SHA-256 in
the same database, so a whole batch costs one fsync; large files (evidence, designs) go
to the blob store instead.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import Field

from ledger.core.sqlite import Database, move_aside
from ledger.core.types import Hex, Record
from ledger.steps.record import ZERO, Step

log = logging.getLogger("cofab.journal")

_PAYLOADS = "payloads (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL)"
"""Payloads in the order they arrive, found by their hash through an index."""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS steps (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    step_hash BLOB NOT NULL UNIQUE,
    prev_hash BLOB NOT NULL,
    biz_step TEXT NOT NULL,
    payload_hash BLOB NOT NULL,
    evidence_hash BLOB NOT NULL,
    time INTEGER NOT NULL,
    member TEXT NOT NULL,
    signer TEXT NOT NULL,
    signature BLOB NOT NULL,
    received_at REAL NOT NULL,
    anchor_index INTEGER,
    PRIMARY KEY (job_id, split_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {_PAYLOADS};
CREATE TABLE IF NOT EXISTS heads (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    head BLOB NOT NULL,
    PRIMARY KEY (job_id, split_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS equivocations (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    existing_hash BLOB NOT NULL,
    conflicting_hash BLOB NOT NULL,
    signer TEXT NOT NULL,
    signature BLOB NOT NULL,
    record TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (conflicting_hash)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anchors (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    root BLOB NOT NULL,
    prev_head BLOB NOT NULL,
    head BLOB NOT NULL,
    state TEXT NOT NULL,
    tx_hash TEXT,
    raw_tx BLOB,
    anchor_index INTEGER,
    block_number INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, split_id, from_seq)
) WITHOUT ROWID;
"""


class JournalStep(Record):
    """A stored step as the API and the CLI show it."""

    record: dict[str, Any] = Field(description="the ProductionStep message, as signed")
    step_hash: Hex
    signer: str
    signature: Hex
    received_at: float
    anchor_index: int | None

    @classmethod
    def of(cls, stored: StoredStep, **extra: Any) -> Self:
        """The view of a stored step (with the fields a subclass adds)."""
        return cls(
            record=stored.step.message(),
            step_hash=stored.step_hash,
            signer=stored.signer,
            signature=stored.signature,
            received_at=stored.received_at,
            anchor_index=stored.anchor_index,
            **extra,
        )


class TimelineStep(JournalStep):
    anchored: bool = Field(description="proven by an anchor on chain")


class StepWithPayload(JournalStep):
    payload: str | None = Field(description="the canonical EPCIS JSON, if this node holds it")


@dataclass(frozen=True)
class StoredStep:
    """A step as the journal holds it: read by the thousand (exports, audits), so a plain
    object; `JournalStep.of` is its form for the API and the CLI."""

    step: Step
    step_hash: bytes
    signer: str
    signature: bytes
    received_at: float
    anchor_index: int | None


@dataclass(frozen=True)
class NewStep:
    """A verified step ready to store."""

    step: Step
    step_hash: bytes
    signer: str
    signature: bytes
    payload: bytes


class Equivocation(Record):
    """A step refused because its split already holds another step with its sequence
    number: kept as evidence."""

    job_id: int
    split_id: int
    seq: int
    existing_hash: Hex
    conflicting_hash: Hex
    signer: str
    received_at: float


_COLUMNS = (
    "job_id, split_id, seq, step_hash, prev_hash, biz_step, payload_hash, evidence_hash, "
    "time, member, signer, signature, received_at, anchor_index"
)


def _payloads_by_hash(db: sqlite3.Connection) -> bool:
    """Whether the journal keeps its payloads in the old table ordered by their hash."""
    row = db.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='payloads'"
    ).fetchone()
    return row is not None and "WITHOUT ROWID" in str(row[0]).upper()


def _row_to_stored(row: tuple[Any, ...]) -> StoredStep:
    step = Step(
        job_id=int(row[0]),
        split_id=int(row[1]),
        seq=row[2],
        prev_hash=row[4],
        biz_step=row[5],
        payload_hash=row[6],
        evidence_hash=row[7],
        time=row[8],
        member=row[9],
    )
    return StoredStep(step, row[3], row[10], row[11], row[12], row[13])


class Journal(Database):
    """One SQLite database per node; safe to share between threads (one writer at a time)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)
        self._upgrade_payloads()

    def _upgrade_payloads(self) -> None:
        """Payloads were once kept in a table ordered by their hash. A hash is random, so
        each new payload landed on another page and a commit of 1,000 steps rewrote about
        as many 4 KiB pages; in insertion order, with the hash in an index of small
        entries, it writes a few. A journal of the old form is copied into the new one,
        once, in one transaction (another process that opened it meanwhile finds it
        done)."""
        with self._lock:
            if not _payloads_by_hash(self._db):
                return  # the current form: no write transaction on every open
        with self.transaction() as db:
            if not _payloads_by_hash(db):
                return  # another process moved them meanwhile
            db.execute("ALTER TABLE payloads RENAME TO payloads_by_hash")
            db.execute(f"CREATE TABLE {_PAYLOADS}")
            db.execute("INSERT INTO payloads (hash, data) SELECT hash, data FROM payloads_by_hash")
            db.execute("DROP TABLE payloads_by_hash")
        log.info("journal %s: payloads moved to the insertion-ordered table", self.path)

    @classmethod
    def for_chain(cls, path: Path, chain: str) -> Journal:
        """The journal at `path` if it belongs to `chain` (an identity string a reset
        chain does not reproduce); an older chain's journal is moved aside, loudly, and a
        new one started, so steps of a chain that no longer exists are never mixed in."""
        journal = cls(path)
        recorded = journal.meta("chain")
        if recorded is None:
            journal.set_meta("chain", chain)
            return journal
        if recorded == chain:
            return journal
        if recorded.split()[-1] == chain:  # recorded with the genesis hash, no identity
            journal.set_meta("chain", chain)
            return journal
        journal.close()
        aside = move_aside(path, "old-chain")
        log.warning(
            "the journal %s belongs to a chain that is no longer there (%s; now %s): moved "
            "to %s, starting a new journal",
            path,
            recorded,
            chain,
            aside,
        )
        fresh = cls(path)
        fresh.set_meta("chain", chain)
        return fresh

    # --- reads -----------------------------------------------------------------------
    def head(self, job_id: int, split_id: int) -> tuple[int, bytes]:
        """(next sequence number, hash of the last step) of a split's chain."""
        with self._lock:
            return self.read_head(self._db, job_id, split_id)

    def hash_at(self, job_id: int, split_id: int, seq: int) -> bytes | None:
        with self._lock:
            return self.read_hash(self._db, job_id, split_id, seq)

    def steps(
        self, job_id: int, split_id: int | None = None, from_seq: int = 0, to_seq: int | None = None
    ) -> list[StoredStep]:
        query = f"SELECT {_COLUMNS} FROM steps WHERE job_id=?"
        args: list[Any] = [str(job_id)]
        if split_id is not None:
            query += " AND split_id=? AND seq>=?"
            args += [str(split_id), from_seq]
            if to_seq is not None:
                query += " AND seq<=?"
                args.append(to_seq)
        query += " ORDER BY CAST(split_id AS INTEGER), seq"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [_row_to_stored(r) for r in rows]

    def step(self, step_hash: bytes) -> StoredStep | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM steps WHERE step_hash=?", (step_hash,)
            ).fetchone()
        return _row_to_stored(row) if row else None

    def payload(self, payload_hash: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM payloads WHERE hash=?", (payload_hash,)
            ).fetchone()
        return row[0] if row else None

    def splits(self) -> list[tuple[int, int, int, bytes]]:
        """Every split with steps: (job, split, next seq, head)."""
        with self._lock:
            rows = self._db.execute("SELECT job_id, split_id, next_seq, head FROM heads").fetchall()
        return [(int(j), int(s), n, h) for j, s, n, h in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM steps").fetchone()[0])

    def equivocations(self) -> list[Equivocation]:
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, split_id, seq, existing_hash, conflicting_hash, signer, "
                "received_at FROM equivocations ORDER BY id"
            ).fetchall()
        return [
            Equivocation(
                job_id=int(r[0]),
                split_id=int(r[1]),
                seq=r[2],
                existing_hash=r[3],
                conflicting_hash=r[4],
                signer=r[5],
                received_at=r[6],
            )
            for r in rows
        ]

    # --- writes (call inside `transaction()`) ------------------------------------------
    @staticmethod
    def insert_steps(db: sqlite3.Connection, steps: list[NewStep]) -> None:
        now = time.time()
        db.executemany(
            "INSERT OR IGNORE INTO payloads (hash, data) VALUES (?, ?)",
            [(n.step.payload_hash, n.payload) for n in steps],
        )
        db.executemany(
            f"INSERT INTO steps ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
            [
                (
                    str(n.step.job_id),
                    str(n.step.split_id),
                    n.step.seq,
                    n.step_hash,
                    n.step.prev_hash,
                    n.step.biz_step,
                    n.step.payload_hash,
                    n.step.evidence_hash,
                    n.step.time,
                    n.step.member,
                    n.signer,
                    n.signature,
                    now,
                )
                for n in steps
            ],
        )

    @staticmethod
    def read_head(db: sqlite3.Connection, job_id: int, split_id: int) -> tuple[int, bytes]:
        row = db.execute(
            "SELECT next_seq, head FROM heads WHERE job_id=? AND split_id=?",
            (str(job_id), str(split_id)),
        ).fetchone()
        return (row[0], row[1]) if row else (0, ZERO)

    @staticmethod
    def read_hash(db: sqlite3.Connection, job_id: int, split_id: int, seq: int) -> bytes | None:
        row = db.execute(
            "SELECT step_hash FROM steps WHERE job_id=? AND split_id=? AND seq=?",
            (str(job_id), str(split_id), seq),
        ).fetchone()
        return row[0] if row else None

    @staticmethod
    def set_head(
        db: sqlite3.Connection, job_id: int, split_id: int, next_seq: int, head: bytes
    ) -> None:
        db.execute(
            "INSERT INTO heads (job_id, split_id, next_seq, head) VALUES (?,?,?,?) "
            "ON CONFLICT(job_id, split_id) DO UPDATE SET next_seq=excluded.next_seq, "
            "head=excluded.head",
            (str(job_id), str(split_id), next_seq, head),
        )

    def record_equivocation(
        self, step: Step, existing: bytes, conflicting: bytes, signer: str, signature: bytes
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO equivocations (job_id, split_id, seq, existing_hash, "
                "conflicting_hash, signer, signature, record, received_at) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    str(step.job_id),
                    str(step.split_id),
                    step.seq,
                    existing,
                    conflicting,
                    signer,
                    signature,
                    json.dumps(step.message()),
                    time.time(),
                ),
            )

    # --- anchors ---------------------------------------------------------------------
    def anchor_rows(self, state: str | None = None) -> list[dict[str, Any]]:
        query = (
            "SELECT job_id, split_id, from_seq, to_seq, root, prev_head, head, state, tx_hash, "
            "raw_tx, anchor_index, block_number FROM anchors"
        )
        args: tuple[Any, ...] = ()
        if state:
            query += " WHERE state=?"
            args = (state,)
        keys = (
            "job_id",
            "split_id",
            "from_seq",
            "to_seq",
            "root",
            "prev_head",
            "head",
            "state",
            "tx_hash",
            "raw_tx",
            "anchor_index",
            "block_number",
        )
        with self._lock:
            rows = self._db.execute(query + " ORDER BY job_id, split_id, from_seq", args).fetchall()
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["job_id"], d["split_id"] = int(d["job_id"]), int(d["split_id"])
            out.append(d)
        return out

    def mined_anchor(
        self, job_id: int, split_id: int, index: int, to_seq: int
    ) -> tuple[bytes, bytes] | None:
        """(root, head) of anchor `index` ending at `to_seq` if this node anchored it."""
        with self._lock:
            row = self._db.execute(
                "SELECT root, head FROM anchors WHERE job_id=? AND split_id=? AND "
                "anchor_index=? AND to_seq=? AND state='mined'",
                (str(job_id), str(split_id), index, to_seq),
            ).fetchone()
        return (bytes(row[0]), bytes(row[1])) if row else None

    def forget_anchors(self, job_id: int, split_id: int, next_seq: int, count: int) -> int:
        """Drop the mined anchors the chain no longer has: those reaching step `next_seq`
        or numbered `count` or later (the chain lost blocks). Their steps become
        unanchored again; returns how many anchors were dropped."""
        with self.transaction() as db:
            key = (str(job_id), str(split_id))
            lost = db.execute(
                "SELECT MIN(from_seq), COUNT(*) FROM anchors WHERE job_id=? AND split_id=? "
                "AND state='mined' AND (to_seq>=? OR anchor_index>=?)",
                (*key, next_seq, count),
            ).fetchone()
            if not lost[1]:
                return 0
            db.execute(
                "DELETE FROM anchors WHERE job_id=? AND split_id=? AND state='mined' AND "
                "(to_seq>=? OR anchor_index>=?)",
                (*key, next_seq, count),
            )
            db.execute(
                "UPDATE steps SET anchor_index=NULL WHERE job_id=? AND split_id=? AND seq>=?",
                (*key, min(int(lost[0]), next_seq)),
            )
            return int(lost[1])

    def put_anchor(
        self,
        job_id: int,
        split_id: int,
        from_seq: int,
        to_seq: int,
        root: bytes,
        prev_head: bytes,
        head: bytes,
        state: str,
        tx_hash: str | None = None,
        raw_tx: bytes | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO anchors (job_id, split_id, from_seq, to_seq, root, prev_head, head, "
                "state, tx_hash, raw_tx, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(job_id, split_id, from_seq) DO UPDATE SET to_seq=excluded.to_seq, "
                "root=excluded.root, prev_head=excluded.prev_head, head=excluded.head, "
                "state=excluded.state, tx_hash=excluded.tx_hash, raw_tx=excluded.raw_tx, "
                "updated_at=excluded.updated_at",
                (
                    str(job_id),
                    str(split_id),
                    from_seq,
                    to_seq,
                    root,
                    prev_head,
                    head,
                    state,
                    tx_hash,
                    raw_tx,
                    time.time(),
                ),
            )

    def mark_anchored(
        self,
        job_id: int,
        split_id: int,
        from_seq: int,
        to_seq: int,
        anchor_index: int,
        block_number: int,
        tx_hash: str,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE anchors SET state='mined', anchor_index=?, block_number=?, tx_hash=?, "
                "raw_tx=NULL, updated_at=? WHERE job_id=? AND split_id=? AND from_seq=?",
                (
                    anchor_index,
                    block_number,
                    tx_hash,
                    time.time(),
                    str(job_id),
                    str(split_id),
                    from_seq,
                ),
            )
            db.execute(
                "UPDATE steps SET anchor_index=? WHERE job_id=? AND split_id=? AND seq BETWEEN ? "
                "AND ?",
                (anchor_index, str(job_id), str(split_id), from_seq, to_seq),
            )

    def drop_anchor(self, job_id: int, split_id: int, from_seq: int) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM anchors WHERE job_id=? AND split_id=? AND from_seq=? AND "
                "state!='mined'",
                (str(job_id), str(split_id), from_seq),
            )
