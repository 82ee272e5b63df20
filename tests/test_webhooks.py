"""Webhooks over HTTP: registered by a member for its own events only, delivered signed to a
real local receiver that checks the HMAC, retried with backoff and marked failed at last."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in, sign_text, siwe_text

from api.app import create_app
from kit import in_production, parties, split_order
from ledger.eth.toolchain import free_port
from ledger.node import Node
from ledger.notify.signing import SignatureError, verify
from ledger.orders.jobs import SplitSpec


@dataclass
class Receiver:
    """A member's webhook endpoint: stdlib http.server on 127.0.0.1 that verifies each
    request's signature (refusing what does not verify) and drops repeated delivery ids."""

    secret: str = ""
    statuses: list[int] = field(default_factory=list)  # answers to give first, then 200
    hold: threading.Event | None = None  # set: requests wait for it before answering
    seen: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request received
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # delivery id -> body
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.seen.set()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                receiver.requests.append({"headers": dict(self.headers), "body": raw})
                try:
                    verify(receiver.secret, self.headers.get("Cofab-Signature", ""), raw)
                except SignatureError as exc:
                    receiver.refused.append(str(exc))
                    return self._answer(400)
                if receiver.statuses:
                    return self._answer(receiver.statuses.pop(0))
                delivery = self.headers["Cofab-Delivery"]
                receiver.processed.setdefault(delivery, json.loads(raw))  # dedupe by id
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cofab"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def client(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("COFAB_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on 127.0.0.1
    monkeypatch.setenv("COFAB_WEBHOOK_RETRY_BASE", "0.01")
    monkeypatch.setenv("COFAB_WEBHOOK_MAX_ATTEMPTS", "3")
    with TestClient(create_app(node)) as c:
        yield c


def register(client: TestClient, headers: dict[str, str], url: str, events: list[str]) -> Any:
    resp = client.post("/webhooks", json={"url": url, "events": events}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def deliver_all(node: Node) -> None:
    node.notify.deriver.catch_up()
    for _ in range(10):
        if not node.notify.dispatcher.run_due():
            break


def test_a_member_registers_a_webhook_and_receives_signed_deliveries(
    client: TestClient, node: Node, receiver: Receiver
) -> None:
    p = parties(node)
    factory = p.factories[0]
    headers = sign_in(client, node, factory.account)
    hook = register(client, headers, receiver.url, ["split.assigned", "handover.pending"])
    assert hook["secret"].startswith("whsec_") and hook["owner"] == factory.address
    receiver.secret = hook["secret"]
    listed = client.get("/webhooks", headers=headers).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]  # shown once, at creation

    job = in_production(node, p)
    node.jobs.deliver(factory, job, 0)
    deliver_all(node)
    bodies = sorted(receiver.processed.values(), key=lambda b: b["id"])
    assert [(b["type"], b["split_id"]) for b in bodies] == [
        ("split.assigned", 0),
        ("split.assigned", 2),
        ("handover.pending", 0),
    ]
    assert all(b["recipient"] == factory.address for b in bodies)
    assert "recipients" not in bodies[0]  # no other member is named
    first = receiver.requests[0]["headers"]
    assert first["Cofab-Event"] == "split.assigned" and first["Cofab-Delivery"].startswith("dlv_")
    assert receiver.refused == []
    [row] = client.get("/webhooks", headers=headers).json()
    assert row["deliveries"] == {"pending": 0, "delivered": 3, "failed": 0}

    # a tampered body (or a signature from another secret) fails the receiver's check
    original = receiver.requests[0]
    tampered = original["body"].replace(b"split.assigned", b"split.assigneX")
    answer = httpx.post(receiver.url, content=tampered, headers=original["headers"])
    assert answer.status_code == 400 and "does not match" in receiver.refused[-1]
    assert len(receiver.processed) == 3

    # removed: nothing more is delivered to it
    assert client.delete(f"/webhooks/{hook['id']}", headers=headers).status_code == 204
    assert client.get("/webhooks", headers=headers).json() == []
    node.jobs.deliver(p.factories[0], job, 2)
    deliver_all(node)
    assert len(receiver.processed) == 3


def test_a_webhook_gets_only_its_owners_events(
    client: TestClient, node: Node, receiver: Receiver
) -> None:
    p = parties(node)
    victim, snoop = p.factories[0], p.factories[1]
    victim_headers = sign_in(client, node, victim.account)
    snoop_headers = sign_in(client, node, snoop.account)
    # the owner is the signed-in member: a body naming another owner is refused
    resp = client.post(
        "/webhooks",
        json={"url": receiver.url, "events": ["*"], "owner": victim.address},
        headers=snoop_headers,
    )
    assert_problem(resp, 422)
    hook = register(client, snoop_headers, receiver.url, ["*"])
    receiver.secret = hook["secret"]
    victims_receiver = Receiver()
    try:
        victims_hook = register(client, victim_headers, victims_receiver.url, ["*"])
        victims_receiver.secret = victims_hook["secret"]
        # nor can it remove (or see) the victim's webhook
        resp = client.delete(f"/webhooks/{victims_hook['id']}", headers=snoop_headers)
        assert_problem(resp, 404)
        listed = client.get("/webhooks", headers=snoop_headers).json()
        assert [h["id"] for h in listed] == [hook["id"]]
        assert len(client.get("/webhooks", headers=victim_headers).json()) == 1

        job = in_production(node, p)
        node.jobs.deliver(victim, job, 0)
        deliver_all(node)
        mine = list(receiver.processed.values())
        assert {(b["recipient"], b["type"], b["split_id"]) for b in mine} == {
            (snoop.address, "split.assigned", 1)
        }
        theirs = list(victims_receiver.processed.values())
        assert {b["recipient"] for b in theirs} == {victim.address} and len(theirs) == 3
        assert receiver.refused == victims_receiver.refused == []
    finally:
        victims_receiver.close()
    # the snoop reads only its own events through the API too
    events = client.get("/events", headers=snoop_headers).json()
    assert {e["recipient"] for e in events} == {snoop.address}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://user:pw@127.0.0.1:9/hook", "user name or password"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
        ("http://[::1/hook", "is not a URL"),
        ("http://bad\x00host/hook", "does not resolve"),
        ("http://127.0.0.1:{node_port}/jobs", "this node itself"),
        ("http://localhost:{node_port}/", "this node itself"),
        ("http://[::1]:{node_port}/", "this node itself"),
    ],
)
def test_refused_webhook_urls(
    node: Node, monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("COFAB_WEBHOOK_ALLOW_PRIVATE", "1")
    port = free_port()
    with TestClient(
        create_app(node, f"http://127.0.0.1:{port}"), base_url=f"http://127.0.0.1:{port}"
    ) as c:
        headers = sign_in_at(c, node.sender().account)
        resp = c.post(
            "/webhooks", json={"url": url.format(node_port=port), "events": ["*"]}, headers=headers
        )
        problem = assert_problem(resp, 422)
        assert says in problem["detail"], problem
        assert c.get("/webhooks", headers=headers).json() == []


def sign_in_at(client: httpx.Client, account: LocalAccount) -> dict[str, str]:
    """Sign in over HTTP with the origin, domain and chain the node names."""
    n = client.get("/auth/nonce").json()
    text = siwe_text(
        account.address, n["nonce"], n["chain_id"], domain=n["domain"], uri=n["uri"] + "/"
    )
    resp = client.post("/auth/login", json={"message": text, "signature": sign_text(account, text)})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def test_private_addresses_are_refused_unless_the_consortium_allows_them(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COFAB_WEBHOOK_ALLOW_PRIVATE", raising=False)
    with TestClient(create_app(node)) as c:
        headers = sign_in(c, node, node.sender().account)
        for url in ("http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://169.254.169.254/"):
            resp = c.post("/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
            assert "private or reserved" in assert_problem(resp, 422)["detail"]
        resp = c.post(
            "/webhooks", json={"url": "http://10.0.0.8/", "events": ["nope"]}, headers=headers
        )
        assert "unknown event type" in assert_problem(resp, 422)["detail"]
        assert c.get("/webhooks", headers=headers).json() == []
        assert_problem(c.get("/webhooks"), 401)
        assert_problem(c.get(f"/events?after={2**64}", headers=headers), 422)
        assert_problem(c.post("/webhooks", json={"url": "http://x", "events": ["*"]}), 401)


def until(node: Node, done: Callable[[], Any]) -> None:
    """Run the dispatcher until `done()` (retries wait a few milliseconds here)."""
    deadline = time.monotonic() + 60
    while not done() and time.monotonic() < deadline:
        node.notify.dispatcher.run_due()
        time.sleep(0.01)


def test_failed_deliveries_are_retried_then_marked_failed(
    client: TestClient, node: Node, receiver: Receiver
) -> None:
    p = parties(node, factories=1)
    factory = p.factories[0]
    headers = sign_in(client, node, factory.account)
    receiver.secret = register(client, headers, receiver.url, ["split.assigned"])["secret"]
    receiver.statuses = [500, 503]  # two failures, then the receiver recovers

    split_order(node, p, [SplitSpec(factory.address, "machining", 100, 930_000)])
    node.notify.deriver.catch_up()
    until(node, lambda: bool(receiver.processed))
    ids = [r["headers"]["Cofab-Delivery"] for r in receiver.requests]
    assert len(ids) == 3 and len(set(ids)) == 1, "every attempt carries the same delivery id"
    [row] = client.get("/webhooks", headers=headers).json()
    assert row["deliveries"]["delivered"] == 1 and row["status"] == "active"

    # a receiver that never recovers: after 3 attempts the delivery is marked failed
    receiver.statuses = [500] * 10
    split_order(node, p, [SplitSpec(factory.address, "painting", 100, 930_000)])
    node.notify.deriver.catch_up()
    until(node, lambda: client.get("/webhooks", headers=headers).json()[0]["deliveries"]["failed"])
    [row] = client.get("/webhooks", headers=headers).json()
    assert row["deliveries"] == {"pending": 0, "delivered": 1, "failed": 1}
    assert row["status"] == "failing" and "HTTP 500" in row["last_error"]
    assert len(receiver.requests) == 3 + 3
