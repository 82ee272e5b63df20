"""The node's SQLite files: private, write-ahead logged, durable when a transaction returns.

The journal, the notification outbox and the EPCIS index each keep one connection shared
between threads, one writer at a time; they differ only in their schema.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.core.private import private_file, tighten


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
