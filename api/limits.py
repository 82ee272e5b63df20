"""Bounds on what one request may make the node read, enforced before the app sees it.

A body larger than its bound is refused with 413 as soon as its declared length (or the
bytes streamed so far) exceed it, so nothing past the bound is read. JSON bodies are also
checked for nesting depth before any parser runs: deeply nested JSON overflows the C
stack of `json.loads` once a library has raised Python's recursion limit, killing the
process instead of failing one request.

A request to an endpoint that needs a sign-in is refused (401) on its headers, before any
of its body is read. File uploads are not buffered here: the endpoint streams them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from api.deps import refuse_anonymous
from ledger.core.json_limits import json_depth
from ledger.core.settings import MAX_JSON_BYTES, MAX_JSON_DEPTH, max_upload_bytes
from ledger.steps.compact import MAGIC as COMPACT_MAGIC

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _json_problem(body: bytes) -> str | None:
    """Why a JSON body is refused before any parser sees it, or None: it must be UTF-8
    (json.loads also reads UTF-16 and UTF-32, whose brackets the depth count would miss)
    and nest at most MAX_JSON_DEPTH levels."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the JSON body is not UTF-8 text: {exc.reason} at byte {exc.start}"
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        return f"the JSON body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted"
    return None


async def _problem(send: Send, status: int, title: str, detail: str, path: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: 413 past the size bound, 401 without a needed token, 422 past the
    JSON depth bound; in that order, each before the body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        upload = ctype == b"multipart/form-data"
        limit = max_upload_bytes() if upload else MAX_JSON_BYTES
        what = "a file upload" if upload else "a JSON body"
        path = scope.get("path", "")
        declared = headers.get(b"content-length")
        too_big = (
            f"{what} may be at most {limit:,} bytes; this request is larger: send less "
            f"(split a batch of steps into several requests)"
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _problem(send, 413, "Request too large", too_big, path)
            return
        refusal = refuse_anonymous(scope)
        if refusal is not None:
            await _problem(send, refusal.status, refusal.title, refusal.message, path)
            return
        if upload:
            await self.app(scope, _counting(receive, limit), send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _problem(send, 413, "Request too large", too_big, path)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # a body a JSON parser may read (FastAPI reads one with no content type as JSON);
        # a compact bundle is binary and bounds its own JSON
        maybe_json = body[:1] in (b"[", b"{") or b"json" in ctype or not ctype
        if body and maybe_json and not body.startswith(COMPACT_MAGIC):
            problem = _json_problem(body)
            if problem is not None:
                await _problem(send, 422, "Invalid input", problem, path)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect, when the client goes away
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _counting(receive: Receive, limit: int) -> Receive:
    """`receive` that fails the request with 413 once more than `limit` bytes arrived
    (an upload with no declared length, or one that lied about it)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(413, f"a file upload may be at most {limit:,} bytes")
        return message

    return counted
