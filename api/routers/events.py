"""Notifications: the member's events, a Server-Sent Events stream, webhooks.

The stream authenticates like every other endpoint (`Authorization: Bearer`) or, for a
browser's EventSource which cannot send headers, with a ticket: `POST /events/ticket`
(with the bearer token) returns a random ticket that is good for one connection within
60 s. The ticket, not the session token, is what appears in the URL (and so in access
logs and browser history): it is single-use and short-lived, and the stream it opens
ends when the session behind it expires.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import NodeDep, SessionDep, active_member, get_sessions
from ledger.core.errors import Forbidden, LedgerError, Unauthorized
from ledger.core.settings import notify_settings
from ledger.notify.events import EventType
from ledger.notify.outbox import Outbox, Webhook, WebhookCreated
from ledger.notify.urls import MAX_URL_LENGTH

router = APIRouter(tags=["notifications"])

TICKET_TTL_SECONDS = 60
MAX_TICKETS = 10_000
BATCH = 100  # events read from the outbox at a time: what one connection holds in memory
POLL_SECONDS = 0.25
MAX_ID = 2**63 - 1  # outbox ids are SQLite integers


class TicketBook:
    """Single-use stream tickets: ticket -> (session token, expiry)."""

    def __init__(self) -> None:
        self._tickets: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, token: str) -> tuple[str, float]:
        ticket = secrets.token_urlsafe(24)
        expires = time.time() + TICKET_TTL_SECONDS
        with self._lock:
            while len(self._tickets) >= MAX_TICKETS:
                self._tickets.popitem(last=False)
            self._tickets[ticket] = (token, expires)
        return ticket, expires

    def redeem(self, ticket: str) -> str:
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or found[1] < time.time():
            raise Unauthorized("the stream ticket is unknown, used or expired: get a new one")
        return found[0]


def _tickets(request: Request) -> TicketBook:
    book = getattr(request.app.state, "event_tickets", None)
    if not isinstance(book, TicketBook):
        book = request.app.state.event_tickets = TicketBook()
    return book


class EventTypeOut(BaseModel):
    type: str
    description: str


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=MAX_URL_LENGTH, description="http(s) URL the node POSTs to")
    events: list[str] = Field(
        min_length=1, max_length=len(EventType) + 1, description="event types, or ['*']"
    )


class TicketOut(BaseModel):
    ticket: str
    expires_at: int


@router.get("/events/types", response_model=list[EventTypeOut], summary="Event types")
def event_types() -> list[dict[str, str]]:
    return [{"type": e.value, "description": e.description} for e in EventType]


@router.get("/events", summary="The signed-in member's notifications, oldest first")
def my_events(
    node: NodeDep,
    session: SessionDep,
    after: int = Query(default=0, ge=0, le=MAX_ID, description="only events with a larger id"),
    limit: int = Query(default=100, ge=1, le=BATCH),
) -> list[dict[str, Any]]:
    return [body for _, body in node.notify.outbox.for_member(session.address, after, limit)]


@router.post("/events/ticket", response_model=TicketOut, summary="A ticket for one event stream")
def ticket(request: Request, session: SessionDep) -> dict[str, Any]:
    token = request.headers["authorization"].partition(" ")[2]
    issued, expires = _tickets(request).issue(token)
    return {"ticket": issued, "expires_at": int(expires)}


@router.get(
    "/events/stream",
    summary="Server-Sent Events of the member's notifications (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    include_in_schema=False,  # an endless text/event-stream: described in docs/api.md
)
def stream(
    request: Request,
    node: NodeDep,
    ticket: str | None = Query(default=None, max_length=100),
    last_event_id: int | None = Query(default=None, ge=0, le=MAX_ID),
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    sessions = get_sessions(request)
    if ticket is not None:
        token = _tickets(request).redeem(ticket)
    else:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the event stream needs a bearer token or a ticket")
    address = sessions.resolve(token).address
    active_member(node, address)
    resume = last_event_id_header if last_event_id is None else str(last_event_id)
    if resume is not None and not (re.fullmatch(r"[0-9]{1,19}", resume) and int(resume) <= MAX_ID):
        resume = None  # not an id this node gave: start from now
    after = int(resume) if resume is not None else node.notify.outbox.last_id()
    return StreamingResponse(
        _events(
            node.notify.outbox,
            lambda: (sessions.resolve(token), active_member(node, address)),
            address,
            after,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    outbox: Outbox, still_allowed: Callable[[], object], address: str, after: int
) -> AsyncIterator[str]:
    """The stream: events as they come, a heartbeat comment every so often, and the end
    (`event: expired`) once the session has expired or its member is no longer active."""
    heartbeat = notify_settings().heartbeat
    yield "retry: 3000\n\n"
    beat = time.monotonic()
    while True:
        rows = outbox.for_member(address, after, BATCH)
        for nid, body in rows:
            after = nid
            data = json.dumps(body, separators=(",", ":"))
            yield f"id: {nid}\nevent: {body['type']}\ndata: {data}\n\n"
        if len(rows) == BATCH:
            continue
        if time.monotonic() - beat >= heartbeat:
            beat = time.monotonic()
            try:
                await asyncio.to_thread(still_allowed)
            except (Unauthorized, Forbidden):
                yield "event: expired\ndata: {}\n\n"
                return
            except LedgerError:
                pass  # the chain does not answer now: the session is judged at the next beat
            yield ": heartbeat\n\n"
        await asyncio.sleep(POLL_SECONDS)


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook for the signed-in member's events (the secret is shown once)",
)
def add_webhook(
    body: WebhookIn, request: Request, node: NodeDep, session: SessionDep
) -> WebhookCreated:
    origin = request.app.state.origin
    node.notify.own.add((origin.host, origin.port))
    hook, secret = node.notify.add_webhook(session.address, body.url, body.events)
    return hook.with_secret(secret)


@router.get("/webhooks", response_model=list[Webhook], summary="The member's webhooks")
def list_webhooks(node: NodeDep, session: SessionDep) -> list[Webhook]:
    return node.notify.webhooks(session.address)


@router.delete(
    "/webhooks/{hook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a webhook (its pending deliveries are dropped)",
)
def remove_webhook(hook_id: str, node: NodeDep, session: SessionDep) -> Response:
    node.notify.remove_webhook(session.address, hook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
