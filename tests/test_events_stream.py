"""The Server-Sent Events stream over a real HTTP server: tickets and tokens, heartbeats,
resuming from Last-Event-ID without gaps or duplicates, the end of an expired session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from test_webhooks import sign_in_at

from api.app import create_app
from kit import admit, in_production, parties
from ledger.eth.toolchain import free_port
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.notify.events import EventType, Notification


@dataclass
class Served:
    url: str
    app: Any


@pytest.fixture
def served(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("COFAB_SSE_HEARTBEAT", "0.2")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(node, url)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield Served(url, app)
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Event:
    id: int | None
    type: str | None
    data: str


def read(lines: Iterator[str], count: int, beats: list[str] | None = None) -> list[Event]:
    """The next `count` events of an open stream's lines (comment lines go to `beats`;
    with `count` 0, read up to the next comment line)."""
    out: list[Event] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            if beats is not None:
                beats.append(line)
                if count == 0:
                    return out
            continue
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "data" in fields:
            event_id = int(fields["id"]) if "id" in fields else None
            out.append(Event(event_id, fields.get("event"), fields["data"]))
            if len(out) == count:
                return out
        fields = {}
    return out


def ticket(client: httpx.Client, headers: dict[str, str]) -> str:
    resp = client.post("/events/ticket", headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["ticket"])


def test_the_stream_needs_a_valid_token_or_ticket(served: Served, node: Node) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        headers = sign_in_at(c, node.sender().account)
        assert c.get("/events/stream").status_code == 401
        assert c.get("/events/stream", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/events/stream?ticket=nope").status_code == 401
        assert c.post("/events/ticket").status_code == 401
        # a ticket works once
        t = ticket(c, headers)
        with c.stream("GET", f"/events/stream?ticket={t}") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
        assert c.get(f"/events/stream?ticket={t}").status_code == 401
        # an expired ticket does not
        t = ticket(c, headers)
        book = served.app.state.event_tickets
        token, _ = book._tickets[t]
        book._tickets[t] = (token, time.time() - 1)
        assert c.get(f"/events/stream?ticket={t}").status_code == 401
        # nor does an expired session's token, or a ticket issued for it
        t = ticket(c, headers)
        sessions = served.app.state.sessions
        session = sessions._tokens[token]
        sessions._tokens[token] = type(session)(session.address, time.time() - 1)
        assert c.get("/events/stream", headers=headers).status_code == 401
        assert c.get(f"/events/stream?ticket={t}").status_code == 401


def test_a_stream_resumes_from_last_event_id_without_gaps_or_duplicates(
    served: Served, node: Node
) -> None:
    p = parties(node)
    factory = p.factories[0]
    with httpx.Client(base_url=served.url, timeout=30) as c:
        headers = sign_in_at(c, factory.account)
        job = in_production(node, p)
        node.notify.deriver.catch_up()
        beats: list[str] = []
        with c.stream("GET", f"/events/stream?ticket={ticket(c, headers)}&last_event_id=0") as r:
            lines = r.iter_lines()
            first = read(lines, 2, beats)
            read(lines, 0, beats)  # the stream keeps itself alive with comment lines
        assert [e.type for e in first] == ["split.assigned", "split.assigned"]
        # while disconnected: two more events for this member, one for another
        node.jobs.deliver(factory, job, 0)
        node.jobs.deliver(p.factories[1], job, 1)
        node.notify.deriver.catch_up()
        resume = {**headers, "Last-Event-ID": str(first[-1].id)}
        with c.stream("GET", "/events/stream", headers=resume) as r:
            second = read(r.iter_lines(), 1)
        assert [e.type for e in second] == ["handover.pending"]
        streamed = [e.id for e in first + second]
        listed = [e["id"] for e in c.get("/events", headers=headers).json()]
        assert streamed == listed, "the stream and the list agree: no gap, no duplicate"
        assert beats and beats[0] == ": heartbeat"

        # a stream opened without Last-Event-ID starts from now
        with c.stream("GET", "/events/stream", headers=headers) as r:
            note = Notification.make(
                EventType.ANCHOR_STALLED,
                (job, 0, 7),
                [factory.address],
                job_id=job,
                split_id=0,
                data={"reason": "test"},
            )
            node.notify.outbox.record([note])
            [fresh] = read(r.iter_lines(), 1)
        assert fresh.type == "anchor.stalled" and fresh.id > listed[-1]


def test_a_long_backlog_streams_in_order_in_bounded_reads(served: Served, node: Node) -> None:
    account = node.sender().account
    notes = [
        Notification.make(
            EventType.STEP_ANCHORED,
            (1, 0, i),
            [account.address],
            job_id=1,
            split_id=0,
            data={"index": i},
        )
        for i in range(250)
    ]
    node.notify.outbox.record(notes)
    with httpx.Client(base_url=served.url, timeout=30) as c:
        headers = sign_in_at(c, account)
        with c.stream("GET", "/events/stream", headers={**headers, "Last-Event-ID": "0"}) as r:
            got = read(r.iter_lines(), 250)
    assert [e.id for e in got] == sorted({e.id for e in got})
    assert [int(e.data.split('"index":')[1].split("}")[0]) for e in got] == list(range(250))


def test_the_stream_ends_when_its_session_expires(served: Served, node: Node) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        headers = sign_in_at(c, node.sender().account)
        token = headers["Authorization"].split()[1]
        with c.stream("GET", "/events/stream", headers=headers) as r:
            sessions = served.app.state.sessions
            session = sessions._tokens[token]
            sessions._tokens[token] = type(session)(session.address, time.time() - 1)
            lines = r.iter_lines()
            [end] = read(lines, 1)
            assert end.type == "expired"
            assert list(lines) == []  # the server closed the stream


def test_the_stream_of_a_suspended_member_ends(served: Served, node: Node) -> None:
    member = admit(node, int(Role.FACTORY))
    with httpx.Client(base_url=served.url, timeout=30) as c:
        headers = sign_in_at(c, member.account)
        with c.stream("GET", "/events/stream", headers=headers) as r:
            lines = r.iter_lines()
            read(lines, 0, [])  # open: a heartbeat came
            node.consortium.propose_suspend(node.sender(), member.address)
            [end] = read(lines, 1)
            assert end.type == "expired"
        assert c.get("/events/stream", headers=headers).status_code == 403
