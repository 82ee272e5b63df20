"""Notifications derived from a real chain: what is told to whom, once, after a restart too."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from typing import Any

import pytest

from kit import DAY, Parties, admit, in_production, parties, split_order, time_travel
from ledger.core.settings import PROJECT_ROOT
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.notify.events import EventType, Notification
from ledger.notify.signing import SignatureError, sign, verify
from ledger.orders.jobs import SplitSpec
from ledger.steps.anchoring import AnchorService
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

EVIDENCE = "0x" + "e1" * 32


def told(node: Node, address: str) -> list[dict[str, Any]]:
    return [body for _, body in node.notify.outbox.for_member(address, 0, 100)]


def types_of(node: Node, address: str) -> list[tuple[str, Any, Any]]:
    return [(b["type"], b["job_id"], b["split_id"]) for b in told(node, address)]


def all_keys(node: Node) -> list[str]:
    with node.notify.outbox._lock:
        rows = node.notify.outbox._db.execute("SELECT key FROM notifications").fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def story(node: Node, monkeypatch: pytest.MonkeyPatch) -> tuple[Node, Parties, int]:
    """Four splits accepted (split 3 depends on split 0); split 0 delivered."""
    monkeypatch.setenv("COFAB_NOTIFY_LEAD", str(DAY))
    p = parties(node)
    job = in_production(node, p)
    node.jobs.deliver(p.factories[0], job, 0)
    return node, p, job


def test_the_order_story_is_told_to_the_members_it_concerns(story: Any) -> None:
    node, p, job = story
    node.notify.deriver.catch_up()
    f0, f1, f2 = (f.address for f in p.factories)
    assert types_of(node, f0) == [
        ("split.assigned", job, 0),
        ("split.assigned", job, 2),
        ("handover.pending", job, 0),
    ]
    # every split was accepted before the deriver read the chain: nothing awaits acceptance
    assert types_of(node, f1) == [("split.assigned", job, 1)]
    assert types_of(node, f2) == [("split.assigned", job, 3), ("handover.pending", job, 0)]
    [awaiting] = told(node, p.buyer.address)
    assert awaiting["type"] == "delivery.awaiting" and awaiting["split_id"] == 0
    assert awaiting["subject"] == f"/jobs/{job}/splits/0" and awaiting["link"] == f"#/orders/{job}"
    assert awaiting["recipient"] == p.buyer.address
    assert awaiting["data"]["review_ends"] == node.jobs.review_ends(job, 0)
    handover = told(node, f2)[-1]["data"]
    assert (handover["from_split"], handover["to_split"]) == (0, 3)
    assert told(node, p.designer.address) == []

    # a second read of the same chain tells nothing new
    before = all_keys(node)
    node.notify.outbox.set_meta("cursor", "0:0x00")  # as if the chain had to be read again
    node.notify.deriver.catch_up()
    assert all_keys(node) == before

    # the review window closes within the lead time: buyer and factory are told, once
    time_travel(node, 14 * DAY - DAY + 60)
    node.notify.deriver.tick()
    node.notify.deriver.tick()
    closing = [b for b in told(node, p.buyer.address) if b["type"] == "review.closing"]
    assert len(closing) == 1 and closing[0]["split_id"] == 0
    assert ("review.closing", job, 0) in types_of(node, f0)

    # the buyer accepts: the factory may withdraw its payment
    node.jobs.accept_delivery(p.buyer, job, 0)
    node.notify.deriver.catch_up()
    [funds] = [b for b in told(node, f0) if b["type"] == "funds.withdrawable"]
    assert funds["data"]["amount"] == node.jobs.view(job).splits[0].amount
    assert funds["data"]["token"] == node.settlement.token().address


def test_an_unaccepted_split_awaits_its_factorys_signature(node: Node) -> None:
    p = parties(node, factories=1)
    job = split_order(node, p, [SplitSpec(p.factories[0].address, "machining", 100, 930_000)])
    node.notify.deriver.catch_up()
    [assigned, pending] = told(node, p.factories[0].address)
    assert (assigned["type"], pending["type"]) == ("split.assigned", "acceptance.pending")
    assert pending["data"]["typed_data"] == f"/jobs/{job}/splits/0/acceptance"


def test_deadline_closing_is_told_to_the_buyer_and_factories_still_producing(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COFAB_NOTIFY_LEAD", str(2 * DAY))
    p = parties(node)
    job = in_production(node, p)
    node.notify.deriver.catch_up()
    assert not [b for b in told(node, p.buyer.address) if b["type"] == "deadline.closing"]
    deadline = node.jobs.view(job).deadline
    now = int(node.chain.w3.eth.get_block("latest")["timestamp"])
    time_travel(node, deadline - now - 2 * DAY + 10)
    node.notify.deriver.tick()
    [closing] = [b for b in told(node, p.buyer.address) if b["type"] == "deadline.closing"]
    assert closing["data"]["deadline"] == deadline
    for f in p.factories:
        assert "deadline.closing" in [b["type"] for b in told(node, f.address)]


def test_a_dispute_is_told_to_its_parties_and_the_auditors(node: Node) -> None:
    p = parties(node)
    job = in_production(node, p)
    node.jobs.deliver(p.factories[1], job, 1)
    auditors = [admit(node, int(Role.AUDITOR)) for _ in range(2)]
    dispute_id = node.disputes.open(p.buyer, job, 1, "paint flaking", EVIDENCE)
    node.disputes.add_evidence(p.factories[1], dispute_id, EVIDENCE)  # voting opens
    node.notify.deriver.catch_up()
    for who in (p.buyer, p.factories[1]):
        assert "dispute.opened" in [b["type"] for b in told(node, who.address)]
    for auditor in auditors:
        [due] = told(node, auditor.address)
        assert (due["type"], due["dispute_id"], due["subject"]) == (
            "vote.due",
            dispute_id,
            f"/disputes/{dispute_id}",
        )
    assert "vote.due" not in [b["type"] for b in told(node, p.buyer.address)]
    for auditor in auditors:
        node.disputes.vote(auditor, dispute_id, 400_000, "factory")
    node.notify.deriver.catch_up()
    [ruled] = [b for b in told(node, p.buyer.address) if b["type"] == "dispute.ruled"]
    assert ruled["data"]["outcome"] == "ruled" and ruled["data"]["payout_ppm"] == 400_000
    money = {
        b["data"]["why"] for b in told(node, p.buyer.address) if b["type"] == "funds.withdrawable"
    }
    assert "ruling refund" in money
    assert "funds.withdrawable" in [b["type"] for b in told(node, p.factories[1].address)]


def test_a_restarted_deriver_tells_what_it_missed_once(node: Node) -> None:
    p = parties(node)
    node.notify.deriver.catch_up()
    cursor = node.notify.outbox.cursor()
    node.notify.stop()  # the node goes down...
    node._notify = None
    job = in_production(node, p)  # ...while the chain moves on
    node.notify.deriver.catch_up()  # a new service over the same data directory
    assert node.notify.outbox.cursor()[0] > cursor[0]
    assert [t for t, _, _ in types_of(node, p.factories[1].address)] == ["split.assigned"]
    keys = all_keys(node)
    assert len(keys) == len(set(keys))
    assert f"split.assigned:{job}:1" in keys


def test_a_reorganised_chain_is_read_again_without_telling_twice(node: Node) -> None:
    p = parties(node)
    job = in_production(node, p)
    node.notify.deriver.catch_up()
    told_before = all_keys(node)
    number, _ = node.notify.outbox.cursor()
    # the block the deriver read last is no longer the chain's block at that height
    node.notify.outbox.set_meta("cursor", f"{number}:0x{'ab' * 32}")
    node.jobs.deliver(p.factories[1], job, 1)
    node.notify.deriver.catch_up()
    keys = all_keys(node)
    assert len(keys) == len(set(keys)), "a fact was told twice"
    assert set(told_before) < set(keys)
    assert f"delivery.awaiting:{job}:1" in keys
    number, block_hash = node.notify.outbox.cursor()
    assert block_hash == "0x" + bytes(node.chain.w3.eth.get_block(number)["hash"]).hex()


def test_notification_keys_name_the_fact() -> None:
    a = Notification.make(EventType.SPLIT_ASSIGNED, (3, 1), ["0x" + "11" * 20])
    assert a.key == "split.assigned:3:1"
    assert a.recipients == ("0x1111111111111111111111111111111111111111",)
    assert {e.value for e in EventType} >= {"vote.due", "anchor.stalled", "step.anchored"}
    assert all(e.description for e in EventType)


def test_the_signature_verifies_and_refuses_tampering_and_replay() -> None:
    secret, body = "whsec_test", b'{"id":1,"type":"vote.due"}'
    now = int(time.time())
    header = sign(secret, body, now)
    assert verify(secret, header, body, now=now) == now
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, header, body.replace(b"1", b"2"), now=now)  # tampered body
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_other", header, body, now=now)  # another webhook's secret
    old = sign(secret, body, now - 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(secret, old, body, now=now)  # a replay of an old request
    forged = header.replace(f"t={now}", f"t={now + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, forged, body, now=now)  # a fresh timestamp on an old signature
    with pytest.raises(SignatureError, match="no timestamp"):
        verify(secret, "v1=abc", body, now=now)


def test_a_stalled_split_is_told_once_then_its_anchors(node: Node) -> None:
    p = parties(node)
    job = in_production(node, p)
    factory = p.factories[1]
    writer = StepWriter(Signer(factory.account.key), node.steps.domain, job, 1, factory.address)
    created = node.steps.authority.job_created_at(job)
    node.steps.ingest([writer.step(object_event("assembling", created)) for _ in range(3)])
    held = node._senders.pop(factory.address)  # this node cannot anchor for the factory
    node.steps.service = AnchorService(node.steps.anchorer, max_steps=1, max_age=0)
    node.steps.service.tick()
    assert node.stalled()
    node.notify.deriver.tick()
    node.notify.deriver.tick()
    [stalled] = [b for b in told(node, factory.address) if b["type"] == "anchor.stalled"]
    assert stalled["data"]["next_seq"] == 0 and "key" in stalled["data"]["reason"]
    operator = node.signer_addresses[0]
    assert "anchor.stalled" in [b["type"] for b in told(node, operator)]

    node._senders[factory.address] = held  # the key is back: the split is anchored
    node.steps.service.tick()
    assert node.stalled() == []
    node.notify.deriver.catch_up()
    anchored = [b for b in told(node, factory.address) if b["type"] == "step.anchored"]
    # one step per anchor here (max_steps=1): three anchors, each told once
    assert [(b["data"]["index"], b["data"]["from_seq"]) for b in anchored] == [
        (0, 0),
        (1, 1),
        (2, 2),
    ]
    assert "step.anchored" in [b["type"] for b in told(node, p.buyer.address)]


def doc_block(language: str, marker: str) -> str:
    """The fenced `language` block of docs/integration.md that contains `marker`."""
    text = (PROJECT_ROOT / "docs" / "integration.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    return next(b for b in blocks if marker in b)


def test_the_documented_verify_functions_accept_only_fresh_untampered_deliveries() -> None:
    secret, body = "whsec_doc", b'{"id":7,"type":"funds.withdrawable"}'
    now = int(time.time())
    cases = {
        "good": (sign(secret, body, now), body),
        "tampered": (sign(secret, body, now), body + b" "),
        "replayed": (sign(secret, body, now - 600), body),
        "other secret": (sign("whsec_other", body, now), body),
    }
    python: dict[str, Any] = {}
    exec(doc_block("python", "def verify"), python)
    node_js = doc_block("js", "function verify") + (
        "const [h, b] = [process.argv[1], Buffer.from(process.argv[2], 'base64')];"
        "try { verify('whsec_doc', h, b); console.log('ok'); } catch (e) { console.log('no'); }"
    )
    for name, (header, raw) in cases.items():
        try:
            python["verify"](secret, header, raw)
            py_ok = True
        except ValueError:
            py_ok = False
        js = subprocess.run(
            ["node", "-e", node_js, header, base64.b64encode(raw).decode()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert (py_ok, js == "ok") == ((name == "good"),) * 2, name
