"""The durable outbox: notifications, webhooks, their deliveries and timers, in SQLite.

One database per deployment beside the step journal (WAL, `synchronous=FULL`): what is
committed survives `kill -9`. A notification, the deliveries it fans out to webhooks and
the cursor of the chain read that produced it are written in one transaction, so a
restart neither loses a notification nor makes it twice (its `key` is unique). Outbox
ids are monotonic: they are the ids of the Server-Sent Events stream.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, computed_field

from ledger.core.sqlite import Database, move_aside
from ledger.core.types import Record
from ledger.notify.events import EventType, Notification

log = logging.getLogger("cofab.notify")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    address TEXT NOT NULL,
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    PRIMARY KEY (address, notification_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at REAL NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_owner ON webhooks(owner);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    recipient TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    done_at REAL,
    UNIQUE (webhook_id, notification_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at);
CREATE TABLE IF NOT EXISTS timers (
    key TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS timers_due ON timers(fired, due_at);
"""


_MEMBER_EVENTS = frozenset(e.value for e in EventType)


@dataclass(frozen=True)
class Timer:
    """A check to make once chain time reaches `due_at` (a window or deadline closing)."""

    key: str
    due_at: int
    payload: dict[str, Any]


class Webhook(Record):
    """A member's webhook and how its deliveries went."""

    id: str
    owner: str
    url: str
    events: tuple[EventType, ...]
    created_at: Annotated[float, PlainSerializer(int, return_type=int)]
    pending: int = Field(default=0, exclude=True)
    delivered: int = Field(default=0, exclude=True)
    failed: int = Field(default=0, exclude=True)
    error: str | None = Field(default=None, exclude=True)

    @computed_field
    @property
    def deliveries(self) -> dict[str, int]:
        return {"pending": self.pending, "delivered": self.delivered, "failed": self.failed}

    @computed_field
    @property
    def status(self) -> str:
        """active | failing (a delivery has failed)."""
        return "failing" if self.failed else "active"

    @computed_field
    @property
    def last_error(self) -> str | None:
        return self.error

    def with_secret(self, secret: str) -> WebhookCreated:
        """The webhook as its owner sees it once, when it is made."""
        return WebhookCreated(**dict(self), secret=secret)


class WebhookCreated(Webhook):
    secret: str = Field(description="signs every delivery; shown only now")


@dataclass(frozen=True)
class Delivery:
    """A notification owed to one webhook: what to POST, where, signed with what."""

    id: str
    webhook_id: str
    url: str
    secret: str
    attempts: int
    event: str
    body: bytes
    report: bool = False  # an EPCIS query subscription's report (signed as GS1 names it too)


def _notification(payload: str) -> Notification:
    raw = json.loads(payload)
    return Notification(
        type=EventType(raw["type"]),
        key=raw["key"],
        recipients=tuple(raw["recipients"]),
        job_id=raw.get("job_id"),
        split_id=raw.get("split_id"),
        dispute_id=raw.get("dispute_id"),
        block=raw.get("block"),
        time=raw.get("time"),
        data=raw.get("data") or {},
    )


def _payload(n: Notification) -> str:
    return json.dumps(
        {
            "type": n.type.value,
            "key": n.key,
            "recipients": list(n.recipients),
            "job_id": n.job_id,
            "split_id": n.split_id,
            "dispute_id": n.dispute_id,
            "block": n.block,
            "time": n.time,
            "data": n.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def body_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Outbox(Database):
    """Safe to share between threads: one connection, one writer at a time."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    @classmethod
    def for_chain(cls, path: Path, identity: str) -> Outbox:
        """The outbox at `path` if it belongs to the deployment `identity`; a reset
        chain's outbox is moved aside and a new one started (its cursor means nothing)."""
        box = cls(path)
        recorded = box.meta("chain")
        if recorded is None or recorded == identity:
            box.set_meta("chain", identity)
            return box
        box.close()
        aside = move_aside(path, "old-chain")
        log.warning("the outbox %s belonged to another chain: moved to %s", path, aside)
        fresh = cls(path)
        fresh.set_meta("chain", identity)
        return fresh

    # --- meta: the chain cursor ------------------------------------------------------
    def cursor(self) -> tuple[int, str] | None:
        """(last block read, its hash), or None before the first read."""
        raw = self.meta("cursor")
        if raw is None:
            return None
        number, _, block_hash = raw.partition(":")
        return int(number), block_hash

    # --- notifications ---------------------------------------------------------------
    def record(
        self,
        notes: list[Notification],
        *,
        timers: Sequence[Timer] = (),
        fired: Sequence[str] = (),
        cursor: tuple[int, str] | None = None,
    ) -> list[int]:
        """Store new notifications (a key seen before is skipped), fan each out to the
        webhooks of its recipients that want its type, add timers, mark timers fired and
        move the cursor: all or nothing. Returns the ids of the notifications added."""
        added: list[int] = []
        now = time.time()
        with self.transaction() as db:
            hooks = db.execute(
                "SELECT id, owner, events FROM webhooks WHERE removed = 0"
            ).fetchall()
            for n in notes:
                cur = db.execute(
                    "INSERT OR IGNORE INTO notifications (key, type, created_at, payload) "
                    "VALUES (?, ?, ?, ?)",
                    (n.key, n.type.value, now, _payload(n)),
                )
                if not cur.rowcount:
                    continue
                nid = int(cur.lastrowid or 0)
                added.append(nid)
                db.executemany(
                    "INSERT OR IGNORE INTO recipients VALUES (?, ?)",
                    [(r.lower(), nid) for r in n.recipients],
                )
                people = {r.lower() for r in n.recipients}
                for hook_id, owner, events in hooks:
                    if owner in people and n.type.value in json.loads(events):
                        db.execute(
                            "INSERT OR IGNORE INTO deliveries "
                            "(id, webhook_id, notification_id, recipient, next_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (f"dlv_{secrets.token_hex(12)}", hook_id, nid, owner, now),
                        )
            for t in timers:
                db.execute(
                    "INSERT OR IGNORE INTO timers (key, due_at, payload) VALUES (?, ?, ?)",
                    (t.key, t.due_at, json.dumps(t.payload, sort_keys=True)),
                )
            db.executemany("UPDATE timers SET fired = 1 WHERE key = ?", [(k,) for k in fired])
            if cursor is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('cursor', ?)",
                    (f"{cursor[0]}:{cursor[1]}",),
                )
        return added

    def due_timers(self, chain_time: int) -> list[Timer]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, due_at, payload FROM timers WHERE fired = 0 AND due_at <= ? "
                "ORDER BY due_at",
                (chain_time,),
            ).fetchall()
        return [Timer(k, int(d), json.loads(p)) for k, d, p in rows]

    def has(self, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM notifications WHERE key = ?", (key,)).fetchone()
        return row is not None

    def for_member(
        self, address: str, after: int = 0, limit: int = 100
    ) -> list[tuple[int, dict[str, Any]]]:
        """The member's notifications with an id above `after`, oldest first."""
        who = address.lower()
        with self._lock:
            rows = self._db.execute(
                "SELECT n.id, n.created_at, n.payload FROM recipients r "
                "JOIN notifications n ON n.id = r.notification_id "
                "WHERE r.address = ? AND r.notification_id > ? "
                "ORDER BY r.notification_id LIMIT ?",
                (who, after, limit),
            ).fetchall()
        out = []
        for nid, created, payload in rows:
            n = _notification(payload)
            recipient = next((r for r in n.recipients if r.lower() == who), address)
            out.append((int(nid), n.body(int(nid), created, recipient)))
        return out

    def last_id(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM notifications").fetchone()
        return int(row[0])

    def record_report(
        self, webhook_id: str, key: str, kind: str, body: bytes, cursor: tuple[str, str]
    ) -> bool:
        """A report addressed to one webhook (an EPCIS query subscription's), delivered as
        `body` with the same retries as any notification, and the meta `cursor` of its
        source moved: all or nothing. False if `key` was recorded before."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO notifications (key, type, created_at, payload) "
                "VALUES (?, ?, ?, ?)",
                (key, kind, now, body.decode()),
            )
            if cur.rowcount:
                db.execute(
                    "INSERT INTO deliveries (id, webhook_id, notification_id, recipient, "
                    "next_at) SELECT ?, id, ?, owner, ? FROM webhooks WHERE id = ? AND removed = 0",
                    (f"dlv_{secrets.token_hex(12)}", cur.lastrowid, now, webhook_id),
                )
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", cursor)
        return bool(cur.rowcount)

    # --- webhooks --------------------------------------------------------------------
    def add_webhook(
        self, owner: str, url: str, events: list[EventType], secret: str | None = None
    ) -> tuple[Webhook, str]:
        """A new webhook of `owner` and its secret (stored to sign; shown to the owner once).
        A webhook for no event type receives only reports addressed to it (`record_report`)
        and is not listed among the member's webhooks."""
        hook_id = f"wh_{secrets.token_hex(8)}"
        secret = secret or f"whsec_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO webhooks (id, owner, url, events, secret, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (hook_id, owner.lower(), url, json.dumps([e.value for e in events]), secret, now),
            )
        return Webhook(
            id=hook_id, owner=owner, url=url, events=tuple(events), created_at=now
        ), secret

    def webhooks(self, owner: str) -> list[Webhook]:
        with self._lock:
            rows = self._db.execute(
                "SELECT w.id, w.url, w.events, w.created_at, "
                "SUM(d.state = 'pending'), SUM(d.state = 'delivered'), SUM(d.state = 'failed'), "
                "(SELECT last_error FROM deliveries x WHERE x.webhook_id = w.id "
                " AND x.last_error IS NOT NULL ORDER BY x.next_at DESC LIMIT 1) "
                "FROM webhooks w LEFT JOIN deliveries d ON d.webhook_id = w.id "
                "WHERE w.owner = ? AND w.removed = 0 AND w.events != '[]' GROUP BY w.id "
                "ORDER BY w.created_at",
                (owner.lower(),),
            ).fetchall()
        return [
            Webhook(
                id=i,
                owner=owner,
                url=url,
                events=tuple(EventType(e) for e in json.loads(ev)),
                created_at=created,
                pending=int(p or 0),
                delivered=int(d or 0),
                failed=int(f or 0),
                error=err,
            )
            for i, url, ev, created, p, d, f, err in rows
        ]

    def remove_webhook(self, owner: str, hook_id: str) -> bool:
        """Remove `owner`'s webhook (its pending deliveries are dropped); False if it has none
        by that id (another member's webhook is as absent as an unknown one)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE webhooks SET removed = 1 WHERE id = ? AND owner = ? AND removed = 0",
                (hook_id, owner.lower()),
            )
            if cur.rowcount:
                db.execute(
                    "UPDATE deliveries SET state = 'cancelled' WHERE webhook_id = ? "
                    "AND state = 'pending'",
                    (hook_id,),
                )
        return bool(cur.rowcount)

    # --- deliveries ------------------------------------------------------------------
    def due_deliveries(self, now: float, limit: int = 32) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.webhook_id, w.url, w.secret, d.attempts, d.recipient, "
                "n.id, n.created_at, n.payload, n.type FROM deliveries d "
                "JOIN webhooks w ON w.id = d.webhook_id "
                "JOIN notifications n ON n.id = d.notification_id "
                "WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?",
                (now, limit),
            ).fetchall()
        out = []
        for did, hook, url, secret, attempts, recipient, nid, created, payload, kind in rows:
            if kind not in _MEMBER_EVENTS:  # a report: delivered as recorded
                out.append(
                    Delivery(did, hook, url, secret, int(attempts), kind, payload.encode(), True)
                )
                continue
            n = _notification(payload)
            who = next((r for r in n.recipients if r.lower() == recipient), recipient)
            body = body_bytes(n.body(int(nid), created, who))
            out.append(Delivery(did, hook, url, secret, int(attempts), n.type.value, body))
        return out

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def delivered(self, delivery_id: str, status: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, "
                "last_status = ?, done_at = ? WHERE id = ? AND state = 'pending'",
                (status, time.time(), delivery_id),
            )

    def attempt_failed(
        self, delivery_id: str, status: int | None, error: str, retry_at: float | None
    ) -> None:
        """Record a failed attempt: retry at `retry_at`, or give up (state `failed`)."""
        with self.transaction() as db:
            if retry_at is None:
                db.execute(
                    "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, "
                    "last_status = ?, last_error = ?, done_at = ? WHERE id = ? "
                    "AND state = 'pending'",
                    (status, error[:500], time.time(), delivery_id),
                )
            else:
                db.execute(
                    "UPDATE deliveries SET attempts = attempts + 1, last_status = ?, "
                    "last_error = ?, next_at = ? WHERE id = ? AND state = 'pending'",
                    (status, error[:500], retry_at, delivery_id),
                )

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, notification_id, state, attempts, last_status, last_error "
                "FROM deliveries WHERE webhook_id = ? ORDER BY notification_id",
                (webhook_id,),
            ).fetchall()
        keys = ("id", "notification_id", "state", "attempts", "last_status", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]
