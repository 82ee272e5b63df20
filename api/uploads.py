"""Multipart uploads read as they arrive, so a file of any size costs constant memory.

FastAPI's own form handling reads a whole request before the endpoint runs (files spooled
to the system's temporary directory, then read back into memory by the endpoint). Here
each file part goes straight to a sink as the request streams in: a `BlobWriter` (hashed
and written into the blob store's directory, moved into place later), a hash only, or a
small bounded buffer. Work on each chunk runs off the event loop, in batches of up to
1 MiB. The request's total size is bounded by `api.limits.RequestLimits`.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from anyio import to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ledger.core.errors import InvalidInput, TooLarge

FLUSH_BYTES = 1 << 20  # file data handed to a sink at once, off the event loop
MAX_TEXT_BYTES = 64 * 1024  # one text field of a form
MAX_PARTS = 1000


class Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...


class Hasher:
    """A file part the node only needs the SHA-256 of."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def digest(self) -> bytes:
        return self._hash.digest()


class Buffer:
    """A small file part kept in memory, refused past `limit` bytes."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise TooLarge(f"the file {self.name!r} may be at most {self.limit:,} bytes")
        self.data.extend(chunk)


@dataclass
class FilePart:
    field: str
    filename: str
    sink: Any


@dataclass
class Form:
    """The text fields (one value each) and file parts of a multipart request."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)

    def file(self, name: str) -> FilePart | None:
        return next((f for f in self.files if f.field == name), None)


@dataclass(eq=False)
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    sink: Any = None
    text: bytearray = field(default_factory=bytearray)
    pending: bytearray = field(default_factory=bytearray)


async def read_form(
    request: Request,
    files: dict[str, Callable[[str], Any]],
    text: frozenset[str] = frozenset(),
) -> Form:
    """Stream a multipart/form-data body: each file part of a field named in `files` goes
    to the sink that field's factory makes (called with the file name), text fields named
    in `text` are kept (at most 64 KiB each). Any other part is refused (422)."""
    content_type = request.headers.get("content-type", "")
    kind, options = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":  # text fields only, no file
        return _urlencoded(await request.body(), text)
    if kind != b"multipart/form-data":
        raise InvalidInput(
            f"this endpoint takes multipart/form-data (a file upload, as `curl -F` sends), "
            f"not {kind.decode('latin-1') or 'a body without a content type'}",
            field="body",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body has no boundary", field="body")
    charset = _charset(options.get(b"charset"))
    form = Form()
    parts: list[_Part] = []
    ready: list[_Part] = []  # parts with file data to hand to their sink

    def begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise InvalidInput(f"at most {MAX_PARTS} parts in one upload", field="body")
        parts.append(_Part())

    header: list[bytes] = [b"", b""]

    def header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        parts[-1].headers.append((header[0].lower(), header[1]))
        header[:] = [b"", b""]

    def headers_finished() -> None:
        part = parts[-1]
        disposition = dict(part.headers).get(b"content-disposition", b"")
        _, opts = parse_options_header(disposition)
        if b"name" not in opts:
            raise InvalidInput("a part of the upload has no name", field="body")
        part.name = opts[b"name"].decode(charset, "replace")
        if b"filename" in opts:
            part.filename = opts[b"filename"].decode(charset, "replace")
            if part.name not in files:
                raise InvalidInput(_unknown(part.name, files, text), field=part.name)
            part.sink = files[part.name](part.filename)
            form.files.append(FilePart(part.name, part.filename, part.sink))
        elif part.name not in text:
            raise InvalidInput(_unknown(part.name, files, text), field=part.name)

    def data(chunk: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if part.sink is not None:
            part.pending += chunk[start:end]
            if part not in ready:
                ready.append(part)
            return
        if len(part.text) + end - start > MAX_TEXT_BYTES:
            raise TooLarge(f"the field {part.name!r} may be at most {MAX_TEXT_BYTES:,} bytes")
        part.text += chunk[start:end]

    def part_end() -> None:
        part = parts[-1]
        if part.sink is None:
            if part.name in form.fields:
                raise InvalidInput(f"give {part.name!r} once", field=part.name)
            form.fields[part.name] = part.text.decode(charset, "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_part_data": data,
            "on_part_end": part_end,
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            for part in list(ready):
                if len(part.pending) >= FLUSH_BYTES or part is not parts[-1]:
                    await _flush(part)
                    ready.remove(part)
        parser.finalize()
        for part in ready:
            await _flush(part)
    except FormParserError as exc:
        raise InvalidInput(f"the multipart body is malformed: {exc}", field="body") from None
    return form


async def _flush(part: _Part) -> None:
    if part.pending:
        data, part.pending = bytes(part.pending), bytearray()
        await to_thread.run_sync(part.sink.write, data)


def _urlencoded(body: bytes, text: frozenset[str]) -> Form:
    """A form of text fields only (bounded like any JSON body by `RequestLimits`)."""
    form = Form()
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if name not in text:
            raise InvalidInput(_unknown(name, {}, text), field=name)
        if name in form.fields:
            raise InvalidInput(f"give {name!r} once", field=name)
        form.fields[name] = value
    return form


def _charset(value: bytes | None) -> str:
    try:
        return codecs.lookup((value or b"utf-8").decode("latin-1")).name
    except LookupError:
        return "latin-1"


def _unknown(name: str, files: dict[str, Any], text: frozenset[str]) -> str:
    known = ", ".join(sorted([*(f"{f} (file)" for f in files), *text]))
    return f"unexpected part {name!r} in the upload; this endpoint takes {known}"
