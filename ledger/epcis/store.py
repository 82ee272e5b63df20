"""The EPCIS side of the journal: API keys, mappings, capture jobs and the query index.

Its own SQLite database beside the step journal (WAL, `synchronous=FULL`), with the journal
attached read-only. The query index is derived from the journal alone — every journaled
step is an EPCIS event — and caught up from it (`sync`) when a capture has committed and
before each query (a constant-time check when the journal has not changed), so a crash
between a step's commit and its indexing loses nothing: the next sync indexes it, and a
retried capture finds its eventID there.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.core.sqlite import Database
from ledger.epcis.eventhash import event_id as hash_event_id
from ledger.epcis.vocabulary import bare, epc_roles, millis
from ledger.steps.anchoring import anchor_tree

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash BLOB PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    factory TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mappings (
    factory TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (factory, field, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS captures (
    capture_id TEXT PRIMARY KEY,
    factory TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    result TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    record_time INTEGER NOT NULL,
    biz_step TEXT,
    biz_location TEXT,
    read_point TEXT,
    action TEXT,
    disposition TEXT
);
DROP INDEX IF EXISTS events_type;
DROP INDEX IF EXISTS events_biz_step;
DROP INDEX IF EXISTS events_biz_location;
DROP INDEX IF EXISTS events_read_point;
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE INDEX IF NOT EXISTS events_type_time ON events (event_type, event_time, id);
CREATE INDEX IF NOT EXISTS events_biz_step_time ON events (biz_step, event_time, id);
CREATE INDEX IF NOT EXISTS events_biz_location_time ON events (biz_location, event_time, id);
CREATE INDEX IF NOT EXISTS events_read_point_time ON events (read_point, event_time, id);
CREATE INDEX IF NOT EXISTS events_event_time ON events (event_time, id);
CREATE INDEX IF NOT EXISTS events_record_time ON events (record_time, id);
CREATE TABLE IF NOT EXISTS epcs (
    epc TEXT NOT NULL,
    role TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (epc, role, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proven (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    anchor_index INTEGER NOT NULL,
    root BLOB NOT NULL,
    head BLOB NOT NULL,
    tx_hash TEXT,
    block_number INTEGER,
    PRIMARY KEY (job_id, split_id, from_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS proven_anchor ON proven (job_id, split_id, anchor_index);
CREATE TABLE IF NOT EXISTS proofs (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    anchor_index INTEGER NOT NULL,
    proof BLOB NOT NULL,
    PRIMARY KEY (job_id, split_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queries (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    query_name TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    dest TEXT NOT NULL,
    stream INTEGER NOT NULL,
    schedule TEXT,
    report_if_empty INTEGER NOT NULL,
    initial_record_time INTEGER NOT NULL,
    start_id INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (
    job_id TEXT NOT NULL,
    split_id TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    PRIMARY KEY (job_id, split_id)
) WITHOUT ROWID;
"""
SYNC_CHUNK = 5000
MMAP_BYTES = 2**31 - 2**16  # SQLite's default ceiling on memory-mapped I/O
CACHE_KIB = 64 * 1024  # page cache per database


def key_hash(secret: str) -> bytes:
    """What is stored of an API key: its SHA-256 (the key is 256 random bits)."""
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class StoredEvent:
    """An indexed event with what its proof needs from the journal."""

    id: int
    job_id: int
    split_id: int
    seq: int
    step_hash: bytes
    signer: str
    signature: bytes
    member: str
    anchor_index: int | None
    received_at: float
    payload: bytes
    record: tuple[Any, ...]  # prev_hash, biz_step, payload_hash, evidence_hash, time
    event_id: str
    anchor: dict[str, Any] | None = None  # the mined anchor covering the step, if proven
    merkle_proof: tuple[str, ...] = ()  # the step's proof in that anchor's tree


class EpcisStore(Database):
    def __init__(self, path: Path, journal_path: Path, chain: str) -> None:
        super().__init__(path, SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='chain'").fetchone()
        if row is not None and row[0] != chain:
            # the journal was started anew for another chain: nothing here applies to it
            for table in ("api_keys", "mappings", "captures", "events", "epcs", "watermarks",
                          "proven", "proofs", "queries", "subscriptions"):  # fmt: skip
                self._db.execute(f"DELETE FROM {table}")
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('chain', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (chain,),
        )
        self._db.execute("ATTACH DATABASE ? AS j", (f"file:{journal_path}?mode=ro",))
        for schema in ("main", "j"):  # a page of events reads ~300 pages scattered over
            # the journal: mapped, and cached, they cost no read() call each
            self._db.execute(f"PRAGMA {schema}.mmap_size={MMAP_BYTES}")
            self._db.execute(f"PRAGMA {schema}.cache_size=-{CACHE_KIB}")
        self._sync_lock = threading.Lock()  # one catch-up at a time: each row indexed once
        self._synced: tuple[int, int] | None = None  # (journal version, own changes) synced

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # --- API keys ----------------------------------------------------------------------
    def add_key(self, secret: str, key_id: str, factory: str, name: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO api_keys (key_hash, key_id, factory, name, created_at) "
                "VALUES (?,?,?,?,?)",
                (key_hash(secret), key_id, factory, name, time.time()),
            )

    def key_owner(self, secret: str) -> str | None:
        rows = self.read(
            "SELECT factory FROM api_keys WHERE key_hash=? AND revoked_at IS NULL",
            (key_hash(secret),),
        )
        return str(rows[0][0]) if rows else None

    def keys(self, factory: str) -> list[dict[str, Any]]:
        rows = self.read(
            "SELECT key_id, name, created_at, revoked_at FROM api_keys WHERE factory=? "
            "ORDER BY created_at",
            (factory,),
        )
        return [
            {"key_id": r[0], "name": r[1], "created_at": r[2], "revoked_at": r[3]} for r in rows
        ]

    def revoke_key(self, factory: str, key_id: str) -> bool:
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at=? WHERE key_id=? AND factory=? AND "
                "revoked_at IS NULL",
                (time.time(), key_id, factory),
            )
            return cur.rowcount == 1

    # --- mappings ----------------------------------------------------------------------
    def put_mapping(self, factory: str, field: str, value: str, job_id: int, split_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO mappings (factory, field, value, job_id, split_id, created_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(factory, field, value) DO UPDATE SET "
                "job_id=excluded.job_id, split_id=excluded.split_id",
                (factory, field, value, str(job_id), str(split_id), time.time()),
            )

    def mappings(self, factory: str) -> dict[tuple[str, str], tuple[int, int]]:
        rows = self.read(
            "SELECT field, value, job_id, split_id FROM mappings WHERE factory=?", (factory,)
        )
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}

    def delete_mapping(self, factory: str, field: str, value: str) -> bool:
        with self.transaction() as db:
            cur = db.execute(
                "DELETE FROM mappings WHERE factory=? AND field=? AND value=?",
                (factory, field, value),
            )
            return cur.rowcount == 1

    # --- capture jobs ------------------------------------------------------------------
    def put_capture(
        self, capture_id: str, factory: str, created: float, result: dict[str, Any]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO captures (capture_id, factory, created_at, finished_at, result) "
                "VALUES (?,?,?,?,?)",
                (capture_id, factory, created, time.time(), json.dumps(result)),
            )

    def capture(self, capture_id: str) -> tuple[str, float, float, dict[str, Any]] | None:
        rows = self.read(
            "SELECT factory, created_at, finished_at, result FROM captures WHERE capture_id=?",
            (capture_id,),
        )
        if not rows:
            return None
        factory, created, finished, result = rows[0]
        return str(factory), float(created), float(finished), json.loads(result)

    # --- the index ---------------------------------------------------------------------
    def known(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.read(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})",
                    chunk,
                )
            )
        return found

    def sync(self, parsed: Mapping[bytes, dict[str, Any]] | None = None) -> int:
        """Index the journal's steps this index lacks; returns how many.

        O(1) when nothing changed since the last sync: SQLite's `data_version` of the
        attached journal moves whenever another connection commits to it (a step, an
        anchor), and this connection's own change count whenever the index was written;
        both unchanged, there is nothing new to index. Read before indexing, so a commit
        made meanwhile is seen by the next call. `parsed` holds events the caller has just
        journaled, by payload hash, so they are not parsed again."""
        with self._sync_lock:
            with self._lock:
                version = self._db.execute("PRAGMA j.data_version").fetchone()[0]
                mark = (version, self._db.total_changes)
            if mark == self._synced:
                return 0
            done = self._catch_up(parsed or {})
            with self._lock:
                self._synced = (version, self._db.total_changes)
            return done

    def _catch_up(self, parsed: Mapping[bytes, dict[str, Any]]) -> int:
        behind = self.read(
            "SELECT h.job_id, h.split_id, COALESCE(w.next_seq, 0), h.next_seq FROM j.heads h "
            "LEFT JOIN watermarks w ON w.job_id=h.job_id AND w.split_id=h.split_id "
            "WHERE COALESCE(w.next_seq, 0) < h.next_seq"
        )
        done = 0
        batch: list[tuple[str, str, list[tuple[Any, ...]]]] = []
        size = 0
        for job, split, start, end in behind:
            while start < end:
                rows = self._journaled(job, split, start, parsed)
                if not rows:
                    break
                batch.append((job, split, rows))
                size += len(rows)
                if size >= SYNC_CHUNK:  # a transaction per chunk, whatever the splits
                    self._index(batch, parsed)
                    batch, size = [], 0
                start = rows[-1][0] + 1
                done += len(rows)
        if batch:
            self._index(batch, parsed)
        self._prove()
        return done

    def _journaled(
        self, job: str, split: str, start: int, parsed: Mapping[bytes, dict[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """The split's steps from `start` on (seq, received_at, payload hash, payload), a
        chunk; the payloads of events in `parsed` are not read (None)."""
        if not parsed:
            return self.read(
                "SELECT s.seq, s.received_at, s.payload_hash, p.data FROM j.steps s JOIN "
                "j.payloads p ON p.hash=s.payload_hash WHERE s.job_id=? AND s.split_id=? "
                "AND s.seq>=? ORDER BY s.seq LIMIT ?",
                (job, split, start, SYNC_CHUNK),
            )
        rows = self.read(
            "SELECT seq, received_at, payload_hash FROM j.steps WHERE job_id=? AND split_id=? "
            "AND seq>=? ORDER BY seq LIMIT ?",
            (job, split, start, SYNC_CHUNK),
        )
        missing = [bytes(r[2]) for r in rows if bytes(r[2]) not in parsed]
        data: dict[bytes, Any] = {}
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found = self.read(f"SELECT hash, data FROM j.payloads WHERE hash IN ({marks})", chunk)
            data.update((bytes(h), d) for h, d in found)
        return [(seq, at, h, data.get(bytes(h))) for seq, at, h in rows]

    def _prove(self) -> None:
        """Keep each mined anchor's Merkle proofs, one per step, so a query reads a step's
        proof instead of rebuilding its anchor's tree."""
        fresh = self.read(
            "SELECT a.job_id, a.split_id, a.from_seq, a.to_seq, a.anchor_index, a.root, a.head, "
            "a.tx_hash, a.block_number FROM j.anchors a LEFT JOIN proven p ON "
            "p.job_id=a.job_id AND p.split_id=a.split_id AND p.from_seq=a.from_seq AND "
            "p.anchor_index=a.anchor_index AND p.root=a.root AND p.tx_hash IS a.tx_hash AND "
            "p.block_number IS a.block_number WHERE a.state='mined' AND p.job_id IS NULL"
        )
        for job, split, from_seq, to_seq, index, root, head, tx_hash, block in fresh:
            leaves = self.read(
                "SELECT seq, step_hash FROM j.steps WHERE job_id=? AND split_id=? AND seq "
                "BETWEEN ? AND ? ORDER BY seq",
                (job, split, from_seq, to_seq),
            )
            if len(leaves) != to_seq - from_seq + 1:
                continue  # this node lacks part of the range: its steps stay unproven here
            tree = anchor_tree([(seq, bytes(h)) for seq, h in leaves])
            with self.transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO proven (job_id, split_id, from_seq, to_seq, "
                    "anchor_index, root, head, tx_hash, block_number) VALUES (?,?,?,?,?,?,?,?,?)",
                    (job, split, from_seq, to_seq, index, root, head, tx_hash, block),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO proofs (job_id, split_id, seq, anchor_index, proof) "
                    "VALUES (?,?,?,?,?)",
                    [
                        (job, split, seq, index, b"".join(tree.proof(i)))
                        for i, (seq, _) in enumerate(leaves)
                    ],
                )

    def _index(
        self,
        splits: list[tuple[str, str, list[tuple[Any, ...]]]],
        parsed: Mapping[bytes, dict[str, Any]],
    ) -> None:
        """Index splits' journaled steps (job, split, rows of seq, received_at, payload hash,
        payload) in one transaction: each table written with one executemany, the
        watermarks with them. Committed without waiting for the disk (the index is
        rebuilt from the journal up to its watermarks, which a power loss rolls back
        with it); the next durable commit of this file (a capture job's) makes it durable."""
        with self._lock, self._relaxed(), self.transaction() as db:
            next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
            events: list[tuple[Any, ...]] = []
            epcs: list[tuple[str, str, int]] = []
            marks: list[tuple[str, str, int]] = []
            for job, split, rows in splits:
                for seq, received_at, payload_hash, data in rows:
                    event = parsed.get(bytes(payload_hash))
                    if event is None:
                        event = json.loads(data)
                    eid = event.get("eventID") or hash_event_id(event, event.get("@context"))
                    next_id += 1
                    events.append(
                        (
                            next_id,
                            str(eid),
                            job,
                            split,
                            seq,
                            str(event.get("type", "")),
                            millis(str(event.get("eventTime", ""))),
                            int(received_at * 1000),
                            bare(event.get("bizStep")),
                            _location(event.get("bizLocation")),
                            _location(event.get("readPoint")),
                            event.get("action"),
                            bare(event.get("disposition")),
                        )
                    )
                    epcs += [(epc, role, next_id) for epc, role in epc_roles(event)]
                marks.append((job, split, rows[-1][0] + 1))
            db.executemany(
                "INSERT INTO events (id, event_id, job_id, split_id, seq, event_type, "
                "event_time, record_time, biz_step, biz_location, read_point, action, "
                "disposition) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                events,
            )
            db.executemany("INSERT OR IGNORE INTO epcs (epc, role, id) VALUES (?,?,?)", epcs)
            db.executemany(
                "INSERT INTO watermarks (job_id, split_id, next_seq) VALUES (?,?,?) "
                "ON CONFLICT(job_id, split_id) DO UPDATE SET next_seq=excluded.next_seq",
                marks,
            )

    @contextmanager
    def _relaxed(self) -> Iterator[None]:
        """`synchronous=NORMAL` for what is done inside (WAL: no fsync at commit), then
        `FULL` again; the caller holds the lock, so no other transaction commits relaxed."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def load(self, ids: list[int]) -> list[StoredEvent]:
        """The events `ids`, in that order, with their steps, payloads and (once their
        anchor is mined and proven here) anchor and Merkle proof: one query for a page."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.read(
            "SELECT e.id, e.job_id, e.split_id, e.seq, s.step_hash, s.signer, s.signature, "
            "s.member, s.anchor_index, s.received_at, p.data, s.prev_hash, s.biz_step, "
            "s.payload_hash, s.evidence_hash, s.time, e.event_id, pf.proof, pv.from_seq, "
            "pv.to_seq, pv.root, pv.head, pv.tx_hash, pv.block_number FROM events e "
            "JOIN j.steps s ON s.job_id=e.job_id AND s.split_id=e.split_id AND s.seq=e.seq "
            "JOIN j.payloads p ON p.hash=s.payload_hash "
            "LEFT JOIN proofs pf ON pf.job_id=e.job_id AND pf.split_id=e.split_id AND "
            "pf.seq=e.seq AND pf.anchor_index=s.anchor_index "
            "LEFT JOIN proven pv ON pv.job_id=e.job_id AND pv.split_id=e.split_id AND "
            "pv.anchor_index=s.anchor_index AND pv.from_seq<=e.seq AND pv.to_seq>=e.seq "
            f"WHERE e.id IN ({marks})",
            ids,
        )
        by_id: dict[int, StoredEvent] = {}
        for r in rows:
            anchor: dict[str, Any] | None = None
            proof: tuple[str, ...] = ()
            if r[17] is not None and r[18] is not None:
                blob = bytes(r[17])
                anchor = {"index": r[8], "fromSeq": r[18], "toSeq": r[19],
                          "root": "0x" + bytes(r[20]).hex(), "head": "0x" + bytes(r[21]).hex(),
                          "txHash": r[22], "blockNumber": r[23]}  # fmt: skip
                proof = tuple("0x" + blob[i : i + 32].hex() for i in range(0, len(blob), 32))
            by_id[r[0]] = StoredEvent(
                r[0], int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                tuple(r[11:16]), r[16], anchor, proof,
            )  # fmt: skip
        return [by_id[i] for i in ids if i in by_id]

    def count(self) -> int:
        """The events indexed, once every journaled step is (as any reader, it syncs
        first: captured events are indexed just after their capture is answered)."""
        self.sync()
        return int(self.read("SELECT COUNT(*) FROM events")[0][0])

    def analyze(self) -> None:
        """Give the planner the index statistics (after a large load)."""
        with self._lock:
            self._db.execute("ANALYZE main")


def _location(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and "id" in value else None
