"""A content-addressed blob directory: every blob is stored under its SHA-256.

The name is the proof: `get` re-hashes what it reads, so a blob altered on disk is refused
instead of served. Writes go to a temporary file that is fsynced, then renamed into place
(and the directory fsynced), so a blob is either absent or complete, even after a crash.
Used for encrypted design files and their key envelopes, and for any other payload a node
keeps by hash.

A file too large to hold in memory (an uploaded CAD file of a gigabyte) goes through a
`BlobWriter`: written and hashed chunk by chunk into a temporary file in the store's own
directory (same file system, so the final rename is atomic), and moved into place only
once it is complete and its caller has accepted it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, ClassVar

from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.core.private import private_dir

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
STAGING_PREFIX = ".upload-"


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

    def writer(self) -> BlobWriter:
        """A blob to be written as it arrives (see `BlobWriter`)."""
        return BlobWriter(self)

    def put_file(self, path: Path) -> str:
        """Store the file at `path` (idempotent) without reading it into memory."""
        with self.writer() as blob, open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                blob.write(chunk)
            return blob.commit()

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


class BlobWriter:
    """One blob written chunk by chunk: hashed as it is written to a private temporary
    file in the store's root, then `commit`ted into place under its hash, or `discard`ed.

    Memory stays constant whatever the size. Used as a context manager, a writer not
    committed when the block ends is discarded: a refused or interrupted upload leaves no
    file behind.
    """

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        private_dir(store.root)
        fd, name = tempfile.mkstemp(dir=store.root, prefix=STAGING_PREFIX)  # mode 0600
        self.temp = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None  # set by finish()
        self.committed = False

    def write(self, chunk: bytes | memoryview) -> None:
        if self._file is None:
            raise ValueError("this blob is finished: nothing more can be written to it")
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Flush and fsync the temporary file; its SHA-256 hex (the blob's name)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self.digest = self._hash.hexdigest()
        assert self.digest is not None
        return self.digest

    def commit(self) -> str:
        """Move the complete blob into place under its hash (atomic; idempotent if the
        store already holds it) and return the hash."""
        digest = self.finish()
        if self.committed:
            return digest
        target = self.store.path(digest)
        private_dir(target.parent)
        if target.is_file():
            self.temp.unlink(missing_ok=True)
        else:
            os.replace(self.temp, target)
            _fsync_dir(target.parent)
        self.committed = True
        return digest

    def discard(self) -> None:
        """Drop the temporary file (nothing if committed)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self.committed:
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
