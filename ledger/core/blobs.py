"""A content-addressed blob directory: every blob is stored under its SHA-256.

The name is the proof: `get` re-hashes what it reads, so a blob altered on disk is refused
instead of served. Writes go to a temporary file that is fsynced, then renamed into place
(and the directory fsynced), so a blob is either absent or complete, even after a crash.
Used for encrypted design files and their key envelopes, and for any other payload a node
keeps by hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import ClassVar

from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.core.private import private_dir

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BlobCorrupt(LedgerError):
    """A stored blob no longer hashes to its name (altered or damaged on disk)."""

    status: ClassVar[int] = 409
    title: ClassVar[str] = "Integrity check failed"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalise(digest: str | bytes) -> str:
    """A SHA-256 as 64 lower-case hex digits (accepts bytes, hex, or 0x-hex)."""
    text = digest.hex() if isinstance(digest, bytes) else digest.lower().removeprefix("0x")
    if not _HEX64.match(text):
        raise InvalidInput(f"{digest!r} is not a SHA-256 hash (64 hex digits)")
    return text


class BlobStore:
    """Blobs under `root/ab/cdef…` (first two hex digits as a fan-out directory)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str | bytes) -> Path:
        name = normalise(digest)
        return self.root / name[:2] / name[2:]

    def has(self, digest: str | bytes) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its SHA-256 hex."""
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.is_file():
            return digest
        private_dir(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return digest

    def get(self, digest: str | bytes) -> bytes:
        """The blob named `digest`; NotFound if absent, BlobCorrupt if it no longer matches."""
        name = normalise(digest)
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no blob {name} in {self.root}") from None
        if sha256_hex(data) != name:
            raise BlobCorrupt(f"blob {name} in {self.root} is corrupt: its content changed")
        return data


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
