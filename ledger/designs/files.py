"""Design files: their SHA-256 (the design id) and their metadata document.

Hashing streams each file in 1 MiB chunks; hashlib releases the GIL on large updates, so
a small thread pool hashes several files on several cores. The metadata document (title,
file name, size, media type) stays off-chain; its SHA-256 over the RFC 8785 canonical JSON
is what the chain records.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from ledger.core.errors import InvalidInput

CHUNK = 1 << 20
METADATA_FORMAT = "cofab-design-metadata/1"
Progress = Callable[[int], None]


def sha256_file(path: Path, progress: Progress | None = None) -> bytes:
    """SHA-256 of the file's bytes (what `sha256sum` prints), reporting bytes as it goes."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            while n := handle.readinto(buffer):
                digest.update(view[:n])
                if progress is not None:
                    progress(n)
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return digest.digest()


def sha256_files(
    paths: Sequence[Path], progress: Progress | None = None, workers: int | None = None
) -> list[bytes]:
    """SHA-256 of each file, in order, hashed on up to `workers` threads."""
    lock = threading.Lock()

    def report(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    count = workers or min(4, os.cpu_count() or 1)
    if count <= 1 or len(paths) <= 1:
        return [sha256_file(p, report) for p in paths]
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda p: sha256_file(p, report), paths))


def metadata_document(
    *, title: str | None, file_name: str | None = None, size: int | None = None
) -> dict[str, Any]:
    """The off-chain description of a design; absent fields are left out."""
    doc: dict[str, Any] = {"format": METADATA_FORMAT}
    if title:
        doc["title"] = title
    if file_name:
        doc["file_name"] = file_name
        media_type, _ = mimetypes.guess_type(file_name)
        if media_type:
            doc["media_type"] = media_type
    if size is not None:
        doc["size"] = size
    return doc


def canonical(doc: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON: the same document always gives the same bytes and hash."""
    return bytes(rfc8785.dumps(doc))


def metadata_hash(doc: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(doc)).digest()


@dataclass(frozen=True)
class NewDesign:
    """One design about to be registered: its id, metadata and (if uploaded) its bytes."""

    design_id: bytes
    metadata: dict[str, Any]
    metadata_hash: bytes
    content: bytes | None = None
    label: str = ""
    path: Path | None = None

    def read(self) -> bytes | None:
        """The file's bytes, if the node has them (uploaded or on local disk)."""
        if self.content is not None:
            return self.content
        return self.path.read_bytes() if self.path is not None else None

    @classmethod
    def from_path(cls, path: Path, did: bytes, *, title: str | None) -> NewDesign:
        doc = metadata_document(title=title, file_name=path.name, size=path.stat().st_size)
        return cls(did, doc, metadata_hash(doc), None, str(path), path)

    @classmethod
    def from_bytes(cls, content: bytes, *, file_name: str, title: str | None) -> NewDesign:
        doc = metadata_document(title=title, file_name=file_name, size=len(content))
        did = hashlib.sha256(content).digest()
        return cls(did, doc, metadata_hash(doc), content, file_name)

    @classmethod
    def from_hash(
        cls, did: bytes, *, title: str | None, given_metadata_hash: bytes | None = None
    ) -> NewDesign:
        """A design registered by hash only: the node never sees the file."""
        doc = metadata_document(title=title)
        digest = given_metadata_hash or metadata_hash(doc)
        return cls(did, doc, digest, None, "0x" + did.hex())
