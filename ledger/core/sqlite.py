"""The node's SQLite files: private, write-ahead logged, durable when a transaction returns.

The journal, the notification outbox and the EPCIS index each keep one connection shared
between threads, one writer at a time; they differ only in their schema.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.core.private import private_file, tighten


def move_aside(path: Path, why: str) -> Path:
    """Rename a database file and its -wal and -shm to `<stem>.<why>-<now><suffix>`, so
    a new one starts at `path` and the old one is kept; the new name."""
    aside = path.with_name(f"{path.stem}.{why}-{int(time.time())}{path.suffix}")
    for suffix in ("", "-wal", "-shm"):
        old = Path(str(path) + suffix)
        if old.exists():
            os.replace(old, Path(str(aside) + suffix))
    return aside


class Database:
    """One SQLite file, opened private (0600, its -wal and -shm too), in WAL mode with
    `synchronous=FULL` so a committed transaction survives a crash or power loss."""

    def __init__(self, path: Path, schema: str) -> None:
        # SQLite creates the -wal and -shm files with the database file's mode
        private_file(path)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for suffix in ("-wal", "-shm"):
            tighten(path.with_name(path.name + suffix))
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(schema)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (durable on return), ROLLBACK on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                    self._db.execute("ROLLBACK")
                raise

    # --- for a schema with a `meta (key TEXT PRIMARY KEY, value TEXT)` table -----------
    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )
